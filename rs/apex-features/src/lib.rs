//! Microstructure features computed once in Rust for the backtester, the simulator and the live engine.

pub mod vmd;

mod bar_stream;
pub mod bars;
pub mod engine;
mod error;
pub mod execution;
pub mod options;
pub mod trades;
pub mod update;

pub use error::FeatureError;
pub use options::FeatureOptions;

/// Nanoseconds per second, minute, hour and day: every time in the feature tables is UTC nanoseconds.
pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// A short label for a duration in nanoseconds, in its largest whole unit, used in column names: `1s`, `500ms`,
/// `5m`, `1h`, `1d`.
#[must_use]
pub fn duration_label(ns: i64) -> String {
    if ns != 0 && ns % DAY == 0 {
        format!("{}d", ns / DAY)
    } else if ns != 0 && ns % HOUR == 0 {
        format!("{}h", ns / HOUR)
    } else if ns != 0 && ns % MINUTE == 0 {
        format!("{}m", ns / MINUTE)
    } else if ns != 0 && ns % SECOND == 0 {
        format!("{}s", ns / SECOND)
    } else if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{ns}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(duration_label(SECOND), "1s");
        assert_eq!(duration_label(60 * SECOND), "1m");
        assert_eq!(duration_label(15 * MINUTE), "15m");
        assert_eq!(duration_label(HOUR), "1h");
        assert_eq!(duration_label(90 * MINUTE), "90m");
        assert_eq!(duration_label(DAY), "1d");
        assert_eq!(duration_label(36 * HOUR), "36h");
        assert_eq!(duration_label(500_000_000), "500ms");
        assert_eq!(duration_label(1_500), "1500ns");
    }
}
