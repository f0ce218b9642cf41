//! Tables handed over from Python: a mapping of NumPy columns by name (a dict, or anything indexable by column name),
//! borrowed as the crates' column structs without copying.

use std::borrow::Cow;

use apex_book::BookColumns;
use apex_features::bars::KlineColumns;
use apex_features::trades::TradeColumns;
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;

/// Borrows a contiguous array, copies a strided one (e.g. `close[::2]`).
pub fn values<'a, T: numpy::Element + Copy>(array: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    array.as_slice().map_or_else(|_| Cow::Owned(array.as_array().to_vec()), Cow::Borrowed)
}

/// Declares a mapping of named NumPy columns (extracted from a dict of arrays; `optional` columns may be absent) and,
/// given a crate's column struct with the same field names (plus `with` arguments), `columns()`: its borrow, where a
/// non-contiguous array is an error.
macro_rules! column_mapping {
    ($(#[$meta:meta])* $name:ident { $($field:ident: $ty:ty),* $(,)? } $(optional { $($opt:ident: $oty:ty),* })?) => {
        $(#[$meta])*
        #[derive(FromPyObject)]
        #[pyo3(from_item_all)]
        pub struct $name<'py> {
            $(pub $field: PyReadonlyArray1<'py, $ty>,)*
            $($(#[pyo3(default)] pub $opt: Option<PyReadonlyArray1<'py, $oty>>,)*)?
        }
    };
    ($(#[$meta:meta])* $name:ident -> $columns:ident { $($field:ident: $ty:ty),* $(,)? } $(with $($extra:ident: $xty:ty),*)?) => {
        column_mapping!($(#[$meta])* $name { $($field: $ty),* });

        impl $name<'_> {
            /// The columns, borrowed (a non-contiguous array is an error).
            pub fn columns(&self $($(, $extra: $xty)*)?) -> PyResult<$columns<'_>> {
                Ok($columns { $($field: self.$field.as_slice()?,)* $($($extra,)*)? })
            }
        }
    };
}

column_mapping! {
    /// The columns of a `book` table (kind 0 snapshot, 1 delta; side +1 bid, -1 ask).
    BookArrays -> BookColumns {
        ts: i64, symbol: u32, kind: u8, side: i8, price: f64, size: f64, update_id: i64, seq: i64,
    }
}

column_mapping! {
    /// The columns of a `trades` table (side +1 buy, -1 sell).
    TradeArrays -> TradeColumns { ts: i64, symbol: u32, side: i8, price: f64, size: f64 }
}

column_mapping! {
    /// The columns of a klines (`bars`) table of klines `interval` ns long.
    KlineArrays -> KlineColumns {
        ts: i64, symbol: u32, open: f64, high: f64, low: f64, close: f64, volume: f64, turnover: f64,
    } with interval: i64
}

column_mapping! {
    /// The bar columns a backtest reads (it copies strided ones, see [`values`]); the per-bar costs `spread_bps` and
    /// `depth` (quote currency), where present, replace the parameters' constants bar by bar.
    BarArrays { ts: i64, open: f64, high: f64, low: f64, close: f64, volume: f64 } optional { spread_bps: f64, depth: f64 }
}
