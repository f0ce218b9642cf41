//! Bindings of `apex-book`: replay a `book` table held as NumPy columns.

use apex_book::{BookColumns, ColumnError, replay};
use apex_core::Scale;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::columns::BookArrays;
use crate::errors::{IntoPyErr, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, book_replay);
    Ok(())
}

/// Either an explicit scale or the decimals inferred from the data.
pub fn scales_for(
    cols: &BookColumns<'_>,
    price_decimals: Option<u32>,
    qty_decimals: Option<u32>,
) -> Result<(Scale, Scale), apex_core::ScaleError> {
    if let (Some(price), Some(qty)) = (price_decimals, qty_decimals) {
        return Ok((Scale::new(price)?, Scale::new(qty)?)); // nothing to infer
    }
    let (inferred_price, inferred_qty) = cols.infer_scales();
    let price = price_decimals.map_or(Ok(inferred_price), Scale::new)?;
    let qty = qty_decimals.map_or(Ok(inferred_qty), Scale::new)?;
    Ok((price, qty))
}

enum ReplayError {
    Column(ColumnError),
    Scale(apex_core::ScaleError),
}

impl IntoPyErr for ReplayError {
    fn into_py_err(self) -> PyErr {
        match self {
            ReplayError::Column(e) => e.into_py_err(),
            ReplayError::Scale(e) => e.into_py_err(),
        }
    }
}

/// Replays a `book` table through one L2 book per symbol code and returns, per symbol code, the counters, best
/// bid/ask and the top-`checksum_depth` checksum of the final book; plus the incidents (row, message).
#[pyfunction]
#[pyo3(signature = (book, *, price_decimals=None, qty_decimals=None, checksum_depth=25))]
fn book_replay<'py>(
    py: Python<'py>,
    book: BookArrays<'py>,
    price_decimals: Option<u32>,
    qty_decimals: Option<u32>,
    checksum_depth: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let cols = book.columns()?;
    let result = run_detached(py, || {
        let scales = scales_for(&cols, price_decimals, qty_decimals).map_err(ReplayError::Scale)?;
        replay(&cols, scales, |_, _, _| {}).map_err(ReplayError::Column)
    })?;
    let out = PyDict::new(py);
    out.set_item("messages", result.messages)?;
    let books = PyDict::new(py);
    for (code, book) in &result.books {
        let entry = PyDict::new(py);
        let stats = book.stats();
        set_fields!(
            entry, stats;
            snapshots, deltas, rebases, dropped_before_snapshot, gaps, refused_while_stale, crossed
        );
        entry.set_item("synced", book.is_synced())?;
        let ps = book.price_scale();
        let qs = book.qty_scale();
        entry.set_item("best_bid", book.best_bid().map(|l| (ps.to_f64(l.price), qs.to_f64(l.qty))))?;
        entry.set_item("best_ask", book.best_ask().map(|l| (ps.to_f64(l.price), qs.to_f64(l.qty))))?;
        entry.set_item("bid_levels", book.len(apex_core::Side::Buy))?;
        entry.set_item("ask_levels", book.len(apex_core::Side::Sell))?;
        entry.set_item("checksum", book.checksum(checksum_depth))?;
        books.set_item(code, entry)?;
    }
    out.set_item("books", books)?;
    let incidents: Vec<(usize, String)> = result.incidents.iter().map(|(row, e)| (*row, e.to_string())).collect();
    out.set_item("incidents", incidents)?;
    Ok(out)
}
