//! The one error type of the crate: malformed input columns and parameters, each naming the row or the option.

use apex_book::ColumnError;
use apex_core::ScaleError;
use thiserror::Error;

use crate::vmd::VmdError;

/// Why features could not be computed. Rows are 0-based indices into the input table.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FeatureError {
    /// A `book` table row that cannot become a book update.
    #[error(transparent)]
    Book(#[from] ColumnError),
    #[error("{table} table: column '{column}' has {got} rows, expected {expected}")]
    Length { table: &'static str, column: &'static str, expected: usize, got: usize },
    #[error("{table} table, row {row}: column '{column}' holds {value}, expected {expected}")]
    Value { table: &'static str, row: usize, column: &'static str, value: f64, expected: &'static str },
    #[error("{table} table, row {row}: column '{column}': {source}")]
    Scale { table: &'static str, row: usize, column: &'static str, source: ScaleError },
    #[error(
        "{table} table, row {row}: ts {ts} is earlier than the previous row of the same symbol ({previous}); \
         sort the table by time"
    )]
    Unsorted { table: &'static str, row: usize, ts: i64, previous: i64 },
    #[error("{table} table, row {row}: ts {ts} is not a multiple of the bar interval {interval} ns")]
    Unaligned { table: &'static str, row: usize, ts: i64, interval: i64 },
    /// A parameter outside what the computation accepts (e.g. a window of 0, an interval that does not divide).
    #[error("{0}")]
    Params(String),
    #[error(transparent)]
    Vmd(#[from] VmdError),
    /// A streamed event for a bar that was already emitted (events must come in exchange-time order).
    #[error(
        "{what} at ts {ts} is earlier than the bar in progress (open at {open}): that bar's row was already emitted"
    )]
    Late { what: &'static str, ts: i64, open: i64 },
}
