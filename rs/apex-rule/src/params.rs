//! The rule's parameters and the instrument limits it sizes within, with their defaults and validation.

use apex_core::Bounds;
use serde::{Deserialize, Serialize};

use crate::RuleError;

apex_core::param_table! {
    /// Every knob of the trading rule. The defaults are the ones the backtester, the simulator and the live engine
    /// share. Its serde form (one key per field, absent keys keep their defaults) is what Python reads through
    /// `_core`; `PARAMS` holds each knob's bounds and doc (the committed `backtest_params.schema.json` is made from it).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct RuleParams {
        entry_threshold: f64 = 0.05, Bounds::closed(0.0, 1.0),
            "Minimum |signal| for a position; below it the rule wants to be flat.";
        stop_atr_mult: f64 = 2.0, Bounds::at_least(0.0),
            "Stop distance in multiples of the average true range of the bars up to the decision.";
        atr_window: usize = 14, Bounds::at_least(1.0),
            "Bars in the average true range window.";
        stop_min_bps: f64 = 10.0, Bounds::open(0.0, 10_000.0),
            "Floor of the stop distance in basis points of the reference price (keeps it positive on flat bars).";
        reward_risk: f64 = 3.0, Bounds::above(0.0),
            "`b`: take-profit distance over stop distance (3 = the 3:1 bracket), also the payoff the Kelly fraction uses.";
        kelly_scale: f64 = 0.5, Bounds::above(0.0),
            "Multiplier of the Kelly fraction (0.5 = half-Kelly).";
        kelly_window: usize = 20, Bounds::at_least(1.0),
            "Number of most recent closed trades the win rate is estimated from.";
        prior_win_rate: f64 = 0.3, Bounds::closed(0.0, 1.0),
            "Prior win rate `p0` of the record-based estimate (its weight is `prior_trades`).";
        prior_trades: f64 = 10.0, Bounds::above(0.0),
            "Weight of the prior, in trades: `p = (wins + p0 * prior_trades) / (trades + prior_trades)`.";
        min_fraction: f64 = 0.005, Bounds::closed(0.0, 1.0),
            "Floor of the risk fraction, so a strategy with a bad record keeps probing (and its record keeps updating).";
        max_fraction: f64 = 0.25, Bounds::closed(0.0, 1.0),
            "Cap of the risk fraction (share of equity lost if the stop is hit).";
        max_leverage: f64 = 10.0, Bounds::above(0.0),
            "Cap of position notional over equity (the slot's leverage).";
    }
}

fn check(name: &'static str, value: f64, ok: bool, why: &str) -> Result<(), RuleError> {
    if ok && value.is_finite() { Ok(()) } else { Err(RuleError::BadParam { name, value, why: why.to_owned() }) }
}

impl RuleParams {
    /// Checks every parameter against its bounds (`PARAMS`), and the fraction floor against its cap.
    ///
    /// # Errors
    /// [`RuleError::BadParam`] naming the first parameter out of range.
    pub fn validate(&self) -> Result<(), RuleError> {
        if let Some((name, value, why)) = self.out_of_bounds() {
            return Err(RuleError::BadParam { name, value, why });
        }
        check("max_fraction", self.max_fraction, self.min_fraction <= self.max_fraction, "must be >= min_fraction")
    }
}

/// What the instrument allows an order to be (Bybit's `priceFilter` and `lotSizeFilter`), in quote and base units.
/// Zero means "no such limit": [`Instrument::CONTINUOUS`] sizes and prices exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Instrument {
    /// Price step; bracket levels are rounded to it.
    pub tick: f64,
    /// Quantity step; sizes are rounded down to it.
    pub qty_step: f64,
    /// Smallest order quantity; a smaller size is no entry.
    pub min_qty: f64,
    /// Largest order quantity; a larger size is capped to it.
    pub max_qty: f64,
    /// Smallest order notional in quote units; a smaller entry is no entry.
    pub min_notional: f64,
}

impl Instrument {
    /// No limits: exact sizes and levels (the backtester's default).
    pub const CONTINUOUS: Instrument =
        Instrument { tick: 0.0, qty_step: 0.0, min_qty: 0.0, max_qty: 0.0, min_notional: 0.0 };

    /// Checks every limit is finite and not negative.
    ///
    /// # Errors
    /// [`RuleError::BadParam`] naming the first limit out of range.
    pub fn validate(&self) -> Result<(), RuleError> {
        for (name, value) in [
            ("tick", self.tick),
            ("qty_step", self.qty_step),
            ("min_qty", self.min_qty),
            ("max_qty", self.max_qty),
            ("min_notional", self.min_notional),
        ] {
            check(name, value, value >= 0.0, "must be >= 0 (0: no limit)")?;
        }
        check(
            "max_qty",
            self.max_qty,
            self.max_qty == 0.0 || self.max_qty >= self.min_qty,
            "must be >= min_qty (or 0: no limit)",
        )?;
        Ok(())
    }

    /// `qty` rounded down to the quantity step and capped to the largest order; 0 when below the smallest.
    #[must_use]
    pub fn round_qty(&self, qty: f64) -> f64 {
        if !(qty.is_finite() && qty > 0.0) {
            return 0.0;
        }
        let capped = if self.max_qty > 0.0 { qty.min(self.max_qty) } else { qty };
        // The relative nudge keeps a quantity that is a whole number of steps in decimal (0.3 / 0.1) whole here.
        let stepped =
            if self.qty_step > 0.0 { (capped / self.qty_step * (1.0 + 1e-12)).floor() * self.qty_step } else { capped };
        if stepped < self.min_qty || stepped <= 0.0 { 0.0 } else { stepped }
    }

    /// `price` rounded to the nearest tick.
    #[must_use]
    pub fn round_price(&self, price: f64) -> f64 {
        if self.tick > 0.0 { (price / self.tick).round() * self.tick } else { price }
    }
}

impl Default for Instrument {
    fn default() -> Self {
        Instrument::CONTINUOUS
    }
}
