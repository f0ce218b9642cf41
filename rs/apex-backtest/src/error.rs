//! The one error type of the backtester: every way its inputs can be unusable.

use thiserror::Error;

/// Why a backtest could not run; each message names the column, row or parameter at fault.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BacktestError {
    /// A bar column or the signal matrix does not have the length the others imply.
    #[error("column `{column}` has {len} values, expected {expected}")]
    LengthMismatch { column: &'static str, len: usize, expected: usize },
    /// The signal matrix length is not a whole number of strategies of `rows` bars each.
    #[error("signals have {len} values, not a multiple of the {rows} bars (expected strategies x rows, row-major)")]
    SignalShape { len: usize, rows: usize },
    /// A price, spread or depth is NaN, infinite, or out of its allowed range.
    #[error("column `{column}` row {row}: value {value} is not usable ({why})")]
    BadValue { column: &'static str, row: usize, value: f64, why: &'static str },
    /// A bar whose high is below its low or which does not contain its open and close.
    #[error("bar {row}: high {high} / low {low} do not contain open and close")]
    BadBar { row: usize, high: f64, low: f64 },
    /// Timestamps must strictly increase so bar lengths and time-to-target are meaningful.
    #[error("column `ts` row {row}: timestamps must strictly increase")]
    NotIncreasing { row: usize },
    /// The requested row range is empty or runs past the data.
    #[error("span [{start}, {end}) is not a non-empty range inside the {rows} bars")]
    BadSpan { start: usize, end: usize, rows: usize },
    /// A parameter outside its documented domain.
    #[error("parameter `{name}` = {value} is invalid: {why}")]
    BadParam { name: &'static str, value: f64, why: String },
}

impl From<apex_rule::RuleError> for BacktestError {
    fn from(error: apex_rule::RuleError) -> Self {
        match error {
            apex_rule::RuleError::BadParam { name, value, why } => BacktestError::BadParam { name, value, why },
        }
    }
}
