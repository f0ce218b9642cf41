//! Backtest parameters with their defaults, and their validation.

use apex_core::{Bounds, ParamSpec};
use apex_rule::{Instrument, RuleParams};
use serde::{Deserialize, Serialize};

use crate::BacktestError;

apex_core::param_table! {
    /// Every knob of the backtest. Defaults model a $200 Bybit VIP0 taker account trading the shared rule.
    ///
    /// This struct is the one definition of the parameters: its serde form is flat (the rule's keys beside the cost
    /// model's; absent keys keep their defaults), `_core.backtest_defaults()` hands it to Python, whose
    /// `forge.backtest.BacktestParams` and keyword arguments are built from it, and [`BacktestParams::specs`] (the
    /// cost model's rows, then the rule's) is what the committed `backtest_params.schema.json` is made from.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    pub struct BacktestParams {
        capital: f64 = 200.0, Bounds::above(0.0),
            "Starting equity in quote currency.";
        target_multiple: f64 = 2.0, Bounds::above(1.0),
            "Target equity as a multiple of `capital`; time-to-target measures when equity first reaches it.";
        fee: f64 = apex_core::BYBIT_VIP0_TAKER_FEE, Bounds::closed_open(0.0, 0.1),
            "Taker fee rate charged on the notional of every fill (Bybit VIP0 perpetuals: 0.055%).";
        spread_bps: f64 = 1.0, Bounds::at_least(0.0),
            "Bid-ask spread in basis points, used when the bars carry no per-bar spread column.";
        depth: f64 = 1_000_000.0, Bounds::above(0.0),
            "Book depth in quote currency that absorbs an order, used when the bars carry no per-bar depth column.";
        impact: f64 = 1.0, Bounds::at_least(0.0),
            "Impact coefficient: slippage fraction added per unit of order notional over depth.";
    }
    extra {
        #[serde(flatten)]
        rule: RuleParams = RuleParams::default(),
            "The trading rule: direction threshold, ATR stop, 3:1 bracket, half-Kelly sizing, leverage cap.";
        #[serde(skip, default = "continuous")]
        instrument: Instrument = Instrument::CONTINUOUS,
            "Order limits the rule sizes within (continuous by default; not a keyword of the Python binding).";
    }
}

fn continuous() -> Instrument {
    Instrument::CONTINUOUS
}

impl BacktestParams {
    /// Checks every parameter against its bounds (`PARAMS`, then the rule's and the instrument's).
    ///
    /// # Errors
    /// [`BacktestError::BadParam`] naming the first parameter out of range (the rule's included).
    pub fn validate(&self) -> Result<(), BacktestError> {
        if let Some((name, value, why)) = self.out_of_bounds() {
            return Err(BacktestError::BadParam { name, value, why });
        }
        self.rule.validate()?;
        self.instrument.validate()?;
        Ok(())
    }

    /// Every scalar parameter of the flat serde form: the cost model's rows, then the rule's.
    #[must_use]
    pub fn specs() -> Vec<ParamSpec> {
        Self::PARAMS.iter().chain(RuleParams::PARAMS).copied().collect()
    }

    /// The JSON Schema of the flat parameter object, as committed in `apexctl/schemas/backtest_params.schema.json`.
    #[must_use]
    pub fn json_schema() -> serde_json::Value {
        apex_core::params::json_schema(
            "https://apexctl.dev/schemas/backtest_params.schema.json",
            "Backtest parameters",
            "The backtester's cost model and the shared trading rule (apex-backtest BacktestParams, flat); absent keys \
             keep their defaults.",
            &Self::specs(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_is_generated_from_the_table() {
        apex_core::params::assert_schema_committed("backtest_params", &BacktestParams::json_schema());
    }

    #[test]
    fn defaults_lie_inside_their_bounds_and_every_serde_key_has_a_row() {
        assert!(BacktestParams::default().validate().is_ok());
        let keys: Vec<String> = match serde_json::to_value(BacktestParams::default()).unwrap() {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        };
        let mut rows: Vec<String> = BacktestParams::specs().iter().map(|s| s.name.to_owned()).collect();
        let mut keys = keys;
        keys.sort();
        rows.sort();
        assert_eq!(keys, rows);
    }

    #[test]
    fn a_value_outside_its_bounds_is_named() {
        let params = BacktestParams { fee: 0.1, ..BacktestParams::default() };
        let error = params.validate().unwrap_err().to_string();
        assert!(error.contains("`fee`") && error.contains("must be in [0, 0.1)"), "{error}");
        let rule = RuleParams { stop_min_bps: 0.0, ..RuleParams::default() };
        let error = BacktestParams { rule, ..BacktestParams::default() }.validate().unwrap_err().to_string();
        assert!(error.contains("`stop_min_bps`") && error.contains("must be in (0, 10000)"), "{error}");
    }
}
