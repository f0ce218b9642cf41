//! The one error type of the trading rule: a parameter outside its domain.

use thiserror::Error;

/// Why a rule could not be built; the message names the parameter at fault.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RuleError {
    /// A parameter outside its documented domain.
    #[error("parameter `{name}` = {value} is invalid: {why}")]
    BadParam { name: &'static str, value: f64, why: String },
}
