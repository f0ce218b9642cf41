//! Backtest parameters with their defaults, and their validation.

use crate::BacktestError;

/// Every knob of the backtest. Defaults model a $200 Bybit VIP0 taker account.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestParams {
    /// Starting equity in quote currency.
    pub capital: f64,
    /// Target equity as a multiple of `capital`; time-to-target measures when equity first reaches it.
    pub target_multiple: f64,
    /// Taker fee rate charged on the notional of every fill (Bybit VIP0 perpetuals: 0.055%).
    pub fee: f64,
    /// Bid-ask spread in basis points, used when the bars carry no per-bar spread column.
    pub spread_bps: f64,
    /// Book depth in quote currency that absorbs an order, used when the bars carry no per-bar depth column.
    pub depth: f64,
    /// Impact coefficient: slippage fraction added per unit of order notional over depth.
    pub impact: f64,
    /// Minimum |signal| for a position; below it the strategy wants to be flat.
    pub entry_threshold: f64,
    /// Stop distance in multiples of the average true range of the bars before the entry.
    pub stop_atr_mult: f64,
    /// Bars in the average true range window.
    pub atr_window: usize,
    /// Floor of the stop distance in basis points of the entry bar's open (keeps it positive on flat bars).
    pub stop_min_bps: f64,
    /// Take-profit distance over stop distance (3 = the 3:1 reward-to-risk rule).
    pub reward_risk: f64,
    /// Multiplier of the Kelly fraction (0.5 = half-Kelly).
    pub kelly_scale: f64,
    /// Number of most recent closed trades the win rate and payoff ratio are estimated from.
    pub kelly_window: usize,
    /// Closed trades needed before the Kelly estimate replaces `prior_fraction`.
    pub kelly_min_trades: usize,
    /// Risk fraction used until `kelly_min_trades` trades have closed.
    pub prior_fraction: f64,
    /// Floor of the risk fraction, so a strategy with a bad record keeps probing instead of freezing.
    pub min_fraction: f64,
    /// Cap of the risk fraction (share of equity lost if the stop is hit).
    pub max_fraction: f64,
    /// Cap of position notional over equity; also the margin rule (initial margin = notional / max_leverage).
    pub max_leverage: f64,
}

impl Default for BacktestParams {
    fn default() -> Self {
        Self {
            capital: 200.0,
            target_multiple: 2.0,
            fee: 0.00055,
            spread_bps: 1.0,
            depth: 1_000_000.0,
            impact: 1.0,
            entry_threshold: 0.05,
            stop_atr_mult: 2.0,
            atr_window: 14,
            stop_min_bps: 10.0,
            reward_risk: 3.0,
            kelly_scale: 0.5,
            kelly_window: 20,
            kelly_min_trades: 5,
            prior_fraction: 0.02,
            min_fraction: 0.005,
            max_fraction: 0.25,
            max_leverage: 10.0,
        }
    }
}

fn check(name: &'static str, value: f64, ok: bool, why: &'static str) -> Result<(), BacktestError> {
    if ok && value.is_finite() { Ok(()) } else { Err(BacktestError::BadParam { name, value, why }) }
}

impl BacktestParams {
    /// Checks every parameter against its domain.
    ///
    /// # Errors
    /// [`BacktestError::BadParam`] naming the first parameter out of range.
    pub fn validate(&self) -> Result<(), BacktestError> {
        check("capital", self.capital, self.capital > 0.0, "must be positive")?;
        check("target_multiple", self.target_multiple, self.target_multiple > 1.0, "must exceed 1")?;
        check("fee", self.fee, (0.0..0.1).contains(&self.fee), "must be in [0, 0.1)")?;
        check("spread_bps", self.spread_bps, self.spread_bps >= 0.0, "must be >= 0")?;
        check("depth", self.depth, self.depth > 0.0, "must be positive")?;
        check("impact", self.impact, self.impact >= 0.0, "must be >= 0")?;
        check(
            "entry_threshold",
            self.entry_threshold,
            (0.0..=1.0).contains(&self.entry_threshold),
            "must be in [0, 1]",
        )?;
        check("stop_atr_mult", self.stop_atr_mult, self.stop_atr_mult >= 0.0, "must be >= 0")?;
        check("atr_window", self.atr_window as f64, self.atr_window >= 1, "must be >= 1")?;
        check(
            "stop_min_bps",
            self.stop_min_bps,
            self.stop_min_bps > 0.0 && self.stop_min_bps < 10_000.0,
            "must be in (0, 10000)",
        )?;
        check("reward_risk", self.reward_risk, self.reward_risk > 0.0, "must be positive")?;
        check("kelly_scale", self.kelly_scale, self.kelly_scale > 0.0, "must be positive")?;
        check("kelly_window", self.kelly_window as f64, self.kelly_window >= 1, "must be >= 1")?;
        check(
            "kelly_min_trades",
            self.kelly_min_trades as f64,
            (1..=self.kelly_window).contains(&self.kelly_min_trades),
            "must be in [1, kelly_window]",
        )?;
        for (name, value) in [
            ("prior_fraction", self.prior_fraction),
            ("min_fraction", self.min_fraction),
            ("max_fraction", self.max_fraction),
        ] {
            check(name, value, (0.0..=1.0).contains(&value), "must be in [0, 1]")?;
        }
        check("max_fraction", self.max_fraction, self.min_fraction <= self.max_fraction, "must be >= min_fraction")?;
        check("max_leverage", self.max_leverage, self.max_leverage > 0.0, "must be positive")?;
        Ok(())
    }
}
