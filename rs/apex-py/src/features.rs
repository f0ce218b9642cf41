//! Bindings of `apex-features`: NumPy columns in, a dict of NumPy columns out, the work done without the GIL.

use std::collections::BTreeMap;

use apex_book::BookColumns;
use apex_features::FeatureError;
use apex_features::bars::{BarParams, BarSource, BarTable, KlineColumns, UpdateSeries, bar_features};
use apex_features::trades::{TradeColumns, trade_features};
use apex_features::update::{UPDATE_FLOAT_COLUMNS, UpdateParams, update_features};
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::book::scales_for;
use crate::errors::{DataError, IntoPyErr, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(features_update, m)?)?;
    m.add_function(wrap_pyfunction!(features_trade, m)?)?;
    m.add_function(wrap_pyfunction!(features_bars_from_trades, m)?)?;
    m.add_function(wrap_pyfunction!(features_bars_from_klines, m)?)?;
    Ok(())
}

impl IntoPyErr for FeatureError {
    fn into_py_err(self) -> PyErr {
        DataError::new_err(self.to_string())
    }
}

/// Per-update features of a `book` table: one row per message; keys `ts`, `symbol`, `update_id` and the float
/// columns, plus `incident_row`: the first table row of every message the book refused or found crossed (gaps,
/// deltas while stale), whose feature rows are NaN. `tick_units` maps a symbol code to its tick size in units of
/// the price scale.
#[pyfunction]
#[pyo3(signature = (ts, symbol, kind, side, price, size, update_id, seq, *, price_decimals=None, qty_decimals=None, tick_units=None))]
#[allow(clippy::too_many_arguments)]
fn features_update<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    symbol: PyReadonlyArray1<'py, u32>,
    kind: PyReadonlyArray1<'py, u8>,
    side: PyReadonlyArray1<'py, i8>,
    price: PyReadonlyArray1<'py, f64>,
    size: PyReadonlyArray1<'py, f64>,
    update_id: PyReadonlyArray1<'py, i64>,
    seq: PyReadonlyArray1<'py, i64>,
    price_decimals: Option<u32>,
    qty_decimals: Option<u32>,
    tick_units: Option<BTreeMap<u32, i64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cols = BookColumns {
        ts: ts.as_slice()?,
        symbol: symbol.as_slice()?,
        kind: kind.as_slice()?,
        side: side.as_slice()?,
        price: price.as_slice()?,
        size: size.as_slice()?,
        update_id: update_id.as_slice()?,
        seq: seq.as_slice()?,
    };
    let params = UpdateParams { tick_units: tick_units.unwrap_or_default() };
    let result = run_detached(py, || {
        let scales =
            scales_for(&cols, price_decimals, qty_decimals).map_err(|e| FeatureError::Params(e.to_string()))?;
        update_features(&cols, scales, &params)
    })?;
    let out = PyDict::new(py);
    out.set_item("ts", result.ts.into_pyarray(py))?;
    out.set_item("symbol", result.symbol.into_pyarray(py))?;
    out.set_item("update_id", result.update_id.into_pyarray(py))?;
    for (name, values) in UPDATE_FLOAT_COLUMNS.iter().zip(result.values) {
        out.set_item(*name, values.into_pyarray(py))?;
    }
    let incident_rows: Vec<u64> = result.incidents.iter().map(|(row, _)| *row as u64).collect();
    out.set_item("incident_row", incident_rows.into_pyarray(py))?;
    Ok(out)
}

/// Per-trade signed volume and trade flow imbalance over each window (nanoseconds): keys `ts`, `symbol`,
/// `signed_volume`, `tfi_<window>`.
#[pyfunction]
#[pyo3(signature = (ts, symbol, side, price, size, *, windows_ns))]
fn features_trade<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    symbol: PyReadonlyArray1<'py, u32>,
    side: PyReadonlyArray1<'py, i8>,
    price: PyReadonlyArray1<'py, f64>,
    size: PyReadonlyArray1<'py, f64>,
    windows_ns: Vec<i64>,
) -> PyResult<Bound<'py, PyDict>> {
    let cols = TradeColumns {
        ts: ts.as_slice()?,
        symbol: symbol.as_slice()?,
        side: side.as_slice()?,
        price: price.as_slice()?,
        size: size.as_slice()?,
    };
    let result = run_detached(py, || trade_features(&cols, &windows_ns))?;
    let out = PyDict::new(py);
    out.set_item("ts", result.ts.into_pyarray(py))?;
    out.set_item("symbol", result.symbol.into_pyarray(py))?;
    out.set_item("signed_volume", result.signed_volume.into_pyarray(py))?;
    for (name, values) in result.tfi {
        out.set_item(name, values.into_pyarray(py))?;
    }
    Ok(out)
}

/// The update-feature columns bar aggregation reads, borrowed from a dict of NumPy arrays.
struct UpdateArrays<'py> {
    ts: PyReadonlyArray1<'py, i64>,
    symbol: PyReadonlyArray1<'py, u32>,
    floats: [PyReadonlyArray1<'py, f64>; 4],
}

impl<'py> UpdateArrays<'py> {
    fn from_dict(dict: &Bound<'py, PyDict>) -> PyResult<UpdateArrays<'py>> {
        let item = |name: &str| -> PyResult<Bound<'py, PyAny>> {
            dict.get_item(name)?.ok_or_else(|| DataError::new_err(format!("update features lack column '{name}'")))
        };
        let float = |name: &str| -> PyResult<PyReadonlyArray1<'py, f64>> { item(name)?.extract() };
        Ok(UpdateArrays {
            ts: item("ts")?.extract()?,
            symbol: item("symbol")?.extract()?,
            floats: [float("ofi_l1")?, float("ofi_l5")?, float("pressure_5")?, float("spread_bps")?],
        })
    }

    fn series(&self) -> PyResult<UpdateSeries<'_>> {
        let [ofi_l1, ofi_l5, pressure_5, spread_bps] = &self.floats;
        Ok(UpdateSeries {
            ts: self.ts.as_slice()?,
            symbol: self.symbol.as_slice()?,
            ofi_l1: ofi_l1.as_slice()?,
            ofi_l5: ofi_l5.as_slice()?,
            pressure_5: pressure_5.as_slice()?,
            spread_bps: spread_bps.as_slice()?,
        })
    }
}

fn bar_table_to_dict<'py>(py: Python<'py>, table: BarTable) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("ts", table.ts.into_pyarray(py))?;
    out.set_item("symbol", table.symbol.into_pyarray(py))?;
    for (name, values) in table.columns {
        out.set_item(name, values.into_pyarray(py))?;
    }
    Ok(out)
}

/// Bars of `interval_ns` from a `trades` table with CLV, returns, realized volatility over `rv_window` returns,
/// the last closed bar of each `higher_ns` interval, and the per-bar aggregates of `updates` (the dict returned by
/// `features_update`) when given.
#[pyfunction]
#[pyo3(signature = (ts, symbol, side, price, size, *, interval_ns, rv_window=30, higher_ns=Vec::new(), updates=None))]
#[allow(clippy::too_many_arguments)]
fn features_bars_from_trades<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    symbol: PyReadonlyArray1<'py, u32>,
    side: PyReadonlyArray1<'py, i8>,
    price: PyReadonlyArray1<'py, f64>,
    size: PyReadonlyArray1<'py, f64>,
    interval_ns: i64,
    rv_window: usize,
    higher_ns: Vec<i64>,
    updates: Option<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let source = BarSource::Trades(TradeColumns {
        ts: ts.as_slice()?,
        symbol: symbol.as_slice()?,
        side: side.as_slice()?,
        price: price.as_slice()?,
        size: size.as_slice()?,
    });
    let arrays = updates.as_ref().map(UpdateArrays::from_dict).transpose()?;
    let series = arrays.as_ref().map(UpdateArrays::series).transpose()?;
    let params = BarParams { interval: interval_ns, rv_window, higher: higher_ns };
    let table = run_detached(py, || bar_features(&source, series.as_ref(), &params))?;
    bar_table_to_dict(py, table)
}

/// Bars of `interval_ns` from a klines (`bars`) table of `kline_interval_ns`, otherwise as
/// `features_bars_from_trades` (`n_trades` and `buy_volume` are NaN: klines do not carry them).
#[pyfunction]
#[pyo3(signature = (ts, symbol, open, high, low, close, volume, turnover, *, kline_interval_ns, interval_ns, rv_window=30, higher_ns=Vec::new(), updates=None))]
#[allow(clippy::too_many_arguments)]
fn features_bars_from_klines<'py>(
    py: Python<'py>,
    ts: PyReadonlyArray1<'py, i64>,
    symbol: PyReadonlyArray1<'py, u32>,
    open: PyReadonlyArray1<'py, f64>,
    high: PyReadonlyArray1<'py, f64>,
    low: PyReadonlyArray1<'py, f64>,
    close: PyReadonlyArray1<'py, f64>,
    volume: PyReadonlyArray1<'py, f64>,
    turnover: PyReadonlyArray1<'py, f64>,
    kline_interval_ns: i64,
    interval_ns: i64,
    rv_window: usize,
    higher_ns: Vec<i64>,
    updates: Option<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let source = BarSource::Klines(KlineColumns {
        ts: ts.as_slice()?,
        symbol: symbol.as_slice()?,
        open: open.as_slice()?,
        high: high.as_slice()?,
        low: low.as_slice()?,
        close: close.as_slice()?,
        volume: volume.as_slice()?,
        turnover: turnover.as_slice()?,
        interval: kline_interval_ns,
    });
    let arrays = updates.as_ref().map(UpdateArrays::from_dict).transpose()?;
    let series = arrays.as_ref().map(UpdateArrays::series).transpose()?;
    let params = BarParams { interval: interval_ns, rv_window, higher: higher_ns };
    let table = run_detached(py, || bar_features(&source, series.as_ref(), &params))?;
    bar_table_to_dict(py, table)
}
