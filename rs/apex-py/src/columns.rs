//! Tables handed over from Python: a mapping of NumPy columns by name (a dict, or anything indexable by column name),
//! borrowed as the crates' column structs without copying.

use apex_book::BookColumns;
use apex_features::bars::KlineColumns;
use apex_features::trades::TradeColumns;
use numpy::PyReadonlyArray1;
use pyo3::prelude::*;

/// The columns of a `book` table (kind 0 snapshot, 1 delta; side +1 bid, -1 ask).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct BookArrays<'py> {
    ts: PyReadonlyArray1<'py, i64>,
    symbol: PyReadonlyArray1<'py, u32>,
    kind: PyReadonlyArray1<'py, u8>,
    side: PyReadonlyArray1<'py, i8>,
    price: PyReadonlyArray1<'py, f64>,
    size: PyReadonlyArray1<'py, f64>,
    update_id: PyReadonlyArray1<'py, i64>,
    seq: PyReadonlyArray1<'py, i64>,
}

impl BookArrays<'_> {
    /// The columns, borrowed (a non-contiguous array is an error).
    pub fn columns(&self) -> PyResult<BookColumns<'_>> {
        Ok(BookColumns {
            ts: self.ts.as_slice()?,
            symbol: self.symbol.as_slice()?,
            kind: self.kind.as_slice()?,
            side: self.side.as_slice()?,
            price: self.price.as_slice()?,
            size: self.size.as_slice()?,
            update_id: self.update_id.as_slice()?,
            seq: self.seq.as_slice()?,
        })
    }
}

/// The columns of a `trades` table (side +1 buy, -1 sell).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct TradeArrays<'py> {
    ts: PyReadonlyArray1<'py, i64>,
    symbol: PyReadonlyArray1<'py, u32>,
    side: PyReadonlyArray1<'py, i8>,
    price: PyReadonlyArray1<'py, f64>,
    size: PyReadonlyArray1<'py, f64>,
}

impl TradeArrays<'_> {
    /// The columns, borrowed (a non-contiguous array is an error).
    pub fn columns(&self) -> PyResult<TradeColumns<'_>> {
        Ok(TradeColumns {
            ts: self.ts.as_slice()?,
            symbol: self.symbol.as_slice()?,
            side: self.side.as_slice()?,
            price: self.price.as_slice()?,
            size: self.size.as_slice()?,
        })
    }
}

/// The columns of a klines (`bars`) table.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct KlineArrays<'py> {
    ts: PyReadonlyArray1<'py, i64>,
    symbol: PyReadonlyArray1<'py, u32>,
    open: PyReadonlyArray1<'py, f64>,
    high: PyReadonlyArray1<'py, f64>,
    low: PyReadonlyArray1<'py, f64>,
    close: PyReadonlyArray1<'py, f64>,
    volume: PyReadonlyArray1<'py, f64>,
    turnover: PyReadonlyArray1<'py, f64>,
}

impl KlineArrays<'_> {
    /// The columns of klines `interval_ns` long, borrowed (a non-contiguous array is an error).
    pub fn columns(&self, interval_ns: i64) -> PyResult<KlineColumns<'_>> {
        Ok(KlineColumns {
            ts: self.ts.as_slice()?,
            symbol: self.symbol.as_slice()?,
            open: self.open.as_slice()?,
            high: self.high.as_slice()?,
            low: self.low.as_slice()?,
            close: self.close.as_slice()?,
            volume: self.volume.as_slice()?,
            turnover: self.turnover.as_slice()?,
            interval: interval_ns,
        })
    }
}
