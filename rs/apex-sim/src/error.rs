//! The crate's error type: what makes an instrument spec or an engine configuration unusable.

use apex_core::ScaleError;
use thiserror::Error;

/// Configuration errors. Order-level problems are not errors but `Rejected` events, since they are normal flow.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimError {
    #[error("instrument {symbol}: {field} '{text}' is not a positive decimal: {source}")]
    BadDecimal { symbol: String, field: &'static str, text: String, source: ScaleError },
    #[error("instrument {symbol}: {field} must be positive, got {value}")]
    NotPositive { symbol: String, field: &'static str, value: String },
    #[error("instrument {symbol}: {field} = {value} is not a multiple of {step} units")]
    OffStep { symbol: String, field: &'static str, value: i64, step: i64 },
    #[error("instrument {symbol}: max_qty {value} must lie between min_qty and {}", crate::spec::DEFAULT_MAX_QTY_UNITS)]
    MaxQty { symbol: String, value: i64 },
    #[error(
        "instrument {symbol}: fee rate {field} = {value} must be finite, within (-0.01, 0.01) and a multiple of 1e-8"
    )]
    BadFeeRate { symbol: String, field: &'static str, value: f64 },
    #[error("instrument {symbol}: market price band {value} must be a fraction in (0, 1) with at most 6 decimals")]
    BadBand { symbol: String, value: f64 },
    #[error("book publisher depth must be at least 1")]
    ZeroDepth,
    #[error("simulation config: {0}")]
    Config(String),
    #[error("account {0} is not an outside account of this market")]
    UnknownAccount(apex_core::AccountId),
    #[error(transparent)]
    Dsg(#[from] crate::dsg::DsgError),
    /// A GP tree that cannot run in the simulator (bad document, or a feature the simulator does not compute).
    #[error(transparent)]
    Gp(#[from] apex_gp::GpError),
    #[error(transparent)]
    Features(#[from] apex_features::FeatureError),
}

/// A bad strategy name is a configuration error of the run that names it.
impl From<crate::strategy::StrategyError> for SimError {
    fn from(error: crate::strategy::StrategyError) -> SimError {
        SimError::Config(error.to_string())
    }
}
