//! Backtest parameters with their defaults, and their validation.

use apex_rule::{Instrument, RuleParams};
use serde::{Deserialize, Serialize};

use crate::BacktestError;

/// Every knob of the backtest. Defaults model a $200 Bybit VIP0 taker account trading the shared rule.
///
/// This struct is the one definition of the parameters: its serde form is flat (the rule's keys beside the cost
/// model's; absent keys keep their defaults), and `_core.backtest_defaults()` hands it to Python, whose
/// `forge.backtest.BacktestParams` and keyword arguments are built from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// The trading rule: direction threshold, ATR stop, 3:1 bracket, half-Kelly sizing, leverage cap.
    #[serde(flatten)]
    pub rule: RuleParams,
    /// Order limits the rule sizes within (continuous by default; not a keyword of the Python binding).
    #[serde(skip, default = "continuous")]
    pub instrument: Instrument,
}

impl Default for BacktestParams {
    fn default() -> Self {
        Self {
            capital: 200.0,
            target_multiple: 2.0,
            fee: apex_core::BYBIT_VIP0_TAKER_FEE,
            spread_bps: 1.0,
            depth: 1_000_000.0,
            impact: 1.0,
            rule: RuleParams::default(),
            instrument: Instrument::CONTINUOUS,
        }
    }
}

fn continuous() -> Instrument {
    Instrument::CONTINUOUS
}

fn check(name: &'static str, value: f64, ok: bool, why: &'static str) -> Result<(), BacktestError> {
    if ok && value.is_finite() { Ok(()) } else { Err(BacktestError::BadParam { name, value, why }) }
}

impl BacktestParams {
    /// Checks every parameter against its domain.
    ///
    /// # Errors
    /// [`BacktestError::BadParam`] naming the first parameter out of range (the rule's included).
    pub fn validate(&self) -> Result<(), BacktestError> {
        check("capital", self.capital, self.capital > 0.0, "must be positive")?;
        check("target_multiple", self.target_multiple, self.target_multiple > 1.0, "must exceed 1")?;
        check("fee", self.fee, (0.0..0.1).contains(&self.fee), "must be in [0, 0.1)")?;
        check("spread_bps", self.spread_bps, self.spread_bps >= 0.0, "must be >= 0")?;
        check("depth", self.depth, self.depth > 0.0, "must be positive")?;
        check("impact", self.impact, self.impact >= 0.0, "must be >= 0")?;
        self.rule.validate()?;
        self.instrument.validate()?;
        Ok(())
    }
}
