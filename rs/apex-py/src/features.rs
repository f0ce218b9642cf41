//! Bindings of `apex-features`: NumPy columns in, a dict of NumPy columns out, the work done without the GIL.

use std::collections::BTreeMap;

use apex_book::columns::level_scales;
use apex_book::{Level, MessageHeader, UpdateKind};
use apex_core::Scale;
use apex_features::FeatureError;
use apex_features::bars::{BarParams, BarSource, BarTable, BarTableStream, UpdateSeries, bar_features};
use apex_features::engine::{BarFeatureEngine, EngineConfig, Trade};
use apex_features::trades::{TradeFeatureStream, size_decimals};
use apex_features::update::{UPDATE_FLOAT_COLUMNS, UpdateColumns, UpdateParams, UpdateReplay, update_features};
use apex_features::vmd::VmdParams;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::book::scales_for;
use crate::columns::{BookArrays, KlineArrays, TradeArrays};
use crate::errors::{DataError, IntoPyErr, config_error, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, features_update, features_bars, book_decimals, trade_size_decimals);
    m.add_class::<PyBarFeatureEngine>()?;
    m.add_class::<PyUpdateReplay>()?;
    m.add_class::<PyTradeFeatureStream>()?;
    m.add_class::<PyBarTableStream>()?;
    Ok(())
}

impl IntoPyErr for FeatureError {
    fn into_py_err(self) -> PyErr {
        match self {
            FeatureError::Book(error) => error.into_py_err(),
            FeatureError::Vmd(error) => error.into_py_err(),
            FeatureError::Params(_) => config_error(self.to_string()),
            FeatureError::Length { .. }
            | FeatureError::Value { .. }
            | FeatureError::Scale { .. }
            | FeatureError::Unsorted { .. }
            | FeatureError::Unaligned { .. }
            | FeatureError::Late { .. } => DataError::new_err(self.to_string()),
        }
    }
}

/// Per-update features of a `book` table: one row per message; keys `ts`, `symbol`, `update_id` and the float
/// columns, plus `incident_row`: the first table row of every message the book refused or found crossed (gaps,
/// deltas while stale), whose feature rows are NaN. `tick_units` maps a symbol code to its tick size in units of
/// the price scale.
#[pyfunction]
#[pyo3(signature = (book, *, price_decimals=None, qty_decimals=None, tick_units=None))]
fn features_update<'py>(
    py: Python<'py>,
    book: BookArrays<'py>,
    price_decimals: Option<u32>,
    qty_decimals: Option<u32>,
    tick_units: Option<BTreeMap<u32, i64>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cols = book.columns()?;
    let params = UpdateParams { tick_units: tick_units.unwrap_or_default() };
    let result = run_detached(py, || {
        let scales =
            scales_for(&cols, price_decimals, qty_decimals).map_err(|e| FeatureError::Params(e.to_string()))?;
        update_features(&cols, scales, &params)
    })?;
    update_columns_to_py(py, result)
}

fn update_columns_to_py(py: Python<'_>, result: UpdateColumns) -> PyResult<Bound<'_, PyDict>> {
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

/// The (price, size) decimals `features_update` infers from the `side`, `price` and `size` columns of a `book`
/// table: the fewest that hold every level's price and size, so those of a table are the largest of its pieces'.
#[pyfunction]
fn book_decimals(
    py: Python<'_>,
    side: PyReadonlyArray1<'_, i8>,
    price: PyReadonlyArray1<'_, f64>,
    size: PyReadonlyArray1<'_, f64>,
) -> PyResult<(u32, u32)> {
    let (side, price, size) = (side.as_slice()?, price.as_slice()?, size.as_slice()?);
    if price.len() != side.len() || size.len() != side.len() {
        let lengths = (side.len(), price.len(), size.len());
        return Err(DataError::new_err(format!("book columns side, price, size differ in length: {lengths:?}")));
    }
    let (price, size) = run_detached(py, || Ok::<_, FeatureError>(level_scales(side, price, size)))?;
    Ok((price.decimals(), size.decimals()))
}

/// `features_update` of a `book` table given in consecutive pieces, each ending at a message's end: `push(piece)`
/// returns the rows of the piece's messages (as `features_update` does, `incident_row` counting from the piece's
/// first row), the book state carried from piece to piece.
#[pyclass(module = "apexctl._core", name = "UpdateReplay")]
pub struct PyUpdateReplay {
    replay: UpdateReplay,
}

#[pymethods]
impl PyUpdateReplay {
    #[new]
    #[pyo3(signature = (*, price_decimals, qty_decimals, tick_units=None))]
    fn new(price_decimals: u32, qty_decimals: u32, tick_units: Option<BTreeMap<u32, i64>>) -> PyResult<Self> {
        let scale = |d| Scale::new(d).map_err(|e| FeatureError::Params(e.to_string()).into_py_err());
        let params = UpdateParams { tick_units: tick_units.unwrap_or_default() };
        let replay = UpdateReplay::new((scale(price_decimals)?, scale(qty_decimals)?), params)
            .map_err(IntoPyErr::into_py_err)?;
        Ok(PyUpdateReplay { replay })
    }

    fn push<'py>(&mut self, py: Python<'py>, book: BookArrays<'py>) -> PyResult<Bound<'py, PyDict>> {
        let cols = book.columns()?;
        let replay = &mut self.replay;
        let result = run_detached(py, || replay.push(&cols))?;
        update_columns_to_py(py, result)
    }
}

/// Per-trade signed volume and trade flow imbalance over each window (nanoseconds) of a `trades` table given in
/// consecutive pieces in table order: `push(piece)` returns keys `ts`, `symbol`, `signed_volume`, `tfi_<window>` of
/// the piece's rows (rows of errors counted from its first), each symbol's flow carried from piece to piece.
#[pyclass(module = "apexctl._core", name = "TradeFeatureStream")]
pub struct PyTradeFeatureStream {
    stream: TradeFeatureStream,
}

#[pymethods]
impl PyTradeFeatureStream {
    #[new]
    #[pyo3(signature = (*, windows_ns, size_decimals))]
    fn new(windows_ns: Vec<i64>, size_decimals: u32) -> PyResult<Self> {
        let scale = Scale::new(size_decimals).map_err(|e| FeatureError::Params(e.to_string()).into_py_err())?;
        let stream = TradeFeatureStream::new(scale, &windows_ns).map_err(IntoPyErr::into_py_err)?;
        Ok(PyTradeFeatureStream { stream })
    }

    fn push<'py>(&mut self, py: Python<'py>, trades: TradeArrays<'py>) -> PyResult<Bound<'py, PyDict>> {
        let cols = trades.columns()?;
        let stream = &mut self.stream;
        let result = run_detached(py, || stream.push(&cols))?;
        let out = PyDict::new(py);
        out.set_item("ts", result.ts.into_pyarray(py))?;
        out.set_item("symbol", result.symbol.into_pyarray(py))?;
        out.set_item("signed_volume", result.signed_volume.into_pyarray(py))?;
        for (name, values) in result.tfi {
            out.set_item(name, values.into_pyarray(py))?;
        }
        Ok(out)
    }
}

/// The size decimals of a `trades` table's `size` column: the fewest that hold every finite size, so those of a
/// table are the largest of its pieces'.
#[pyfunction]
fn trade_size_decimals(py: Python<'_>, size: PyReadonlyArray1<'_, f64>) -> PyResult<u32> {
    let size = size.as_slice()?;
    run_detached(py, || Ok::<_, FeatureError>(size_decimals(size)))
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

/// The bar parameters of the bindings' options (`vmd_modes` 0: no VMD columns).
fn bar_params(interval: i64, rv_window: usize, higher: Vec<i64>, vmd_modes: usize, vmd_window: usize) -> BarParams {
    let vmd = (vmd_modes > 0).then(|| VmdParams { modes: vmd_modes, window: vmd_window, ..VmdParams::default() });
    BarParams { interval, rv_window, higher, vmd }
}

/// Bars of `interval_ns` with CLV, returns, realized volatility over `rv_window` returns, the last closed bar of each
/// `higher_ns` interval, the per-bar aggregates of `updates` (the dict returned by `features_update`) when given, and
/// `vmd_1..vmd_modes`: the rolling VMD of each symbol's closes over `vmd_window` bars (none when `vmd_modes` is 0).
/// `table` is a `trades` table, or a klines (`bars`) table of `kline_interval_ns` when that is given (then
/// `n_trades` and `buy_volume` are NaN: klines do not carry them).
#[pyfunction]
#[pyo3(signature = (table, *, interval_ns, kline_interval_ns=None, rv_window=30, higher_ns=Vec::new(), updates=None, vmd_modes=0, vmd_window=64))]
#[allow(clippy::too_many_arguments)]
fn features_bars<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
    interval_ns: i64,
    kline_interval_ns: Option<i64>,
    rv_window: usize,
    higher_ns: Vec<i64>,
    updates: Option<Bound<'py, PyDict>>,
    vmd_modes: usize,
    vmd_window: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let (klines, trades): (KlineArrays<'py>, TradeArrays<'py>);
    let source = match kline_interval_ns {
        Some(kline_interval) => {
            klines = table.extract()?;
            BarSource::Klines(klines.columns(kline_interval)?)
        }
        None => {
            trades = table.extract()?;
            BarSource::Trades(trades.columns()?)
        }
    };
    let arrays = updates.as_ref().map(UpdateArrays::from_dict).transpose()?;
    let series = arrays.as_ref().map(UpdateArrays::series).transpose()?;
    let params = bar_params(interval_ns, rv_window, higher_ns, vmd_modes, vmd_window);
    let table = run_detached(py, || bar_features(&source, series.as_ref(), &params))?;
    bar_table_to_dict(py, table)
}

/// `features_bars` of a `trades` (or klines) table and its update features given in consecutive pieces in time order
/// (a piece's rows at or after the latest of its input's earlier pieces), so neither is held whole: `push_trades`
/// (or `push_klines`) and `push_updates` in any interleaving, `close_source` / `close_updates` when an input has no
/// more, then `finish` for the table. `last_ts` maps each symbol code to its last trade's (kline's) time. Errors
/// name rows of the piece pushed.
#[pyclass(module = "apexctl._core", name = "BarTableStream")]
pub struct PyBarTableStream {
    stream: Option<BarTableStream>,
}

impl PyBarTableStream {
    fn stream(&mut self) -> PyResult<&mut BarTableStream> {
        self.stream.as_mut().ok_or_else(|| config_error("the bar table stream is finished"))
    }
}

#[pymethods]
impl PyBarTableStream {
    #[new]
    #[pyo3(signature = (*, interval_ns, last_ts, with_book, rv_window=30, higher_ns=Vec::new(), vmd_modes=0, vmd_window=64))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        interval_ns: i64,
        last_ts: BTreeMap<u32, i64>,
        with_book: bool,
        rv_window: usize,
        higher_ns: Vec<i64>,
        vmd_modes: usize,
        vmd_window: usize,
    ) -> PyResult<Self> {
        let params = bar_params(interval_ns, rv_window, higher_ns, vmd_modes, vmd_window);
        let stream = BarTableStream::new(params, with_book, &last_ts).map_err(IntoPyErr::into_py_err)?;
        Ok(PyBarTableStream { stream: Some(stream) })
    }

    fn push_trades(&mut self, py: Python<'_>, trades: TradeArrays<'_>) -> PyResult<()> {
        let cols = trades.columns()?;
        let stream = self.stream()?;
        run_detached(py, || stream.push_source(&BarSource::Trades(cols)))
    }

    #[pyo3(signature = (klines, *, interval_ns))]
    fn push_klines(&mut self, py: Python<'_>, klines: KlineArrays<'_>, interval_ns: i64) -> PyResult<()> {
        let cols = klines.columns(interval_ns)?;
        let stream = self.stream()?;
        run_detached(py, || stream.push_source(&BarSource::Klines(cols)))
    }

    fn push_updates(&mut self, py: Python<'_>, updates: Bound<'_, PyDict>) -> PyResult<()> {
        let arrays = UpdateArrays::from_dict(&updates)?;
        let series = arrays.series()?;
        let stream = self.stream()?;
        run_detached(py, || stream.push_updates(&series))
    }

    fn close_source(&mut self) -> PyResult<()> {
        self.stream()?.close_source();
        Ok(())
    }

    fn close_updates(&mut self) -> PyResult<()> {
        self.stream()?.close_updates();
        Ok(())
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stream = self.stream.take().ok_or_else(|| config_error("the bar table stream is finished"))?;
        let table = run_detached(py, || stream.finish())?;
        bar_table_to_dict(py, table)
    }
}

/// Rows a streaming call completed: `(bar open ts, values in `names` order)`, oldest first.
type Rows = Vec<(i64, Vec<f64>)>;

/// The streaming feature engine of one symbol (`apex_features::engine::BarFeatureEngine`): book messages, trades and
/// the exchange clock in, the rows of `features --grain <bar>` out as bars close. Book levels are given in quote and
/// base units and kept in integer units of `price_decimals` / `qty_decimals`.
#[pyclass(module = "apexctl._core", name = "BarFeatureEngine")]
pub struct PyBarFeatureEngine {
    engine: BarFeatureEngine,
}

impl PyBarFeatureEngine {
    fn levels(&self, levels: &[(f64, f64)], out: &mut Vec<Level>) -> Result<(), FeatureError> {
        let config = self.engine.config();
        for &(price, size) in levels {
            let scale = |column, value, scale: Scale| {
                scale.from_f64(value).map_err(|source| FeatureError::Scale { table: "book", row: 0, column, source })
            };
            out.push(Level::new(scale("price", price, config.price_scale)?, scale("size", size, config.qty_scale)?));
        }
        Ok(())
    }
}

#[pymethods]
impl PyBarFeatureEngine {
    #[new]
    #[pyo3(signature = (interval_ns, *, price_decimals, qty_decimals, rv_window=30, higher_ns=Vec::new(), vmd_modes=0, vmd_window=64, book_columns=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        interval_ns: i64,
        price_decimals: u32,
        qty_decimals: u32,
        rv_window: usize,
        higher_ns: Vec<i64>,
        vmd_modes: usize,
        vmd_window: usize,
        book_columns: bool,
    ) -> PyResult<PyBarFeatureEngine> {
        let engine = run_detached(py, || {
            let scale = |d| Scale::new(d).map_err(|e| FeatureError::Params(e.to_string()));
            let bars = bar_params(interval_ns, rv_window, higher_ns, vmd_modes, vmd_window);
            let config = EngineConfig {
                bars,
                price_scale: scale(price_decimals)?,
                qty_scale: scale(qty_decimals)?,
                book_columns,
            };
            BarFeatureEngine::new(config)
        })?;
        Ok(PyBarFeatureEngine { engine })
    }

    /// The names of a row's values, in order.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.engine.names().to_vec()
    }

    /// Rows emitted so far.
    #[getter]
    fn rows(&self) -> u64 {
        self.engine.rows()
    }

    /// Events that came after their bar was emitted.
    #[getter]
    fn late_events(&self) -> u64 {
        self.engine.late_events()
    }

    /// One trade (taker `side` +1/-1); returns the rows its time closed.
    fn on_trade(&mut self, py: Python<'_>, ts: i64, side: i8, price: f64, size: f64) -> PyResult<Rows> {
        let engine = &mut self.engine;
        run_detached(py, || {
            let mut rows = Rows::new();
            engine.on_trade(&Trade { ts, side, price, size }, |open, row| rows.push((open, row.to_vec())))?;
            Ok::<_, FeatureError>(rows)
        })
    }

    /// One book message (`kind` 'snapshot' or 'delta'; levels as (price, size), size 0 deleting a level); returns the
    /// rows its time closed. Gaps and crossed books are not errors: the message's update features are NaN.
    #[pyo3(signature = (ts, kind, update_id, seq, bids, asks))]
    #[allow(clippy::too_many_arguments)]
    fn on_book(
        &mut self,
        py: Python<'_>,
        ts: i64,
        kind: &str,
        update_id: u64,
        seq: i64,
        bids: Vec<(f64, f64)>,
        asks: Vec<(f64, f64)>,
    ) -> PyResult<Rows> {
        let kind = match kind {
            "snapshot" => UpdateKind::Snapshot,
            "delta" => UpdateKind::Delta,
            other => return Err(DataError::new_err(format!("book kind '{other}' is neither 'snapshot' nor 'delta'"))),
        };
        let this = &mut *self;
        run_detached(py, || {
            let (mut b, mut a) = (Vec::with_capacity(bids.len()), Vec::with_capacity(asks.len()));
            this.levels(&bids, &mut b)?;
            this.levels(&asks, &mut a)?;
            let header = MessageHeader { first_row: 0, symbol: 0, kind, update_id, seq, ts };
            let mut rows = Rows::new();
            let _verdict = this.engine.on_book(&header, &b, &a, |open, row| rows.push((open, row.to_vec())));
            Ok::<_, FeatureError>(rows)
        })
    }

    /// Exchange time is now `ts`; returns the rows of the bars that closed at or before it.
    fn on_clock(&mut self, ts: i64) -> Rows {
        let mut rows = Rows::new();
        self.engine.on_clock(ts, |open, row| rows.push((open, row.to_vec())));
        rows
    }

    /// The update features after the last book message (names as at grain `update`), `None` before the first.
    fn update<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(row) = self.engine.update() else { return Ok(None) };
        let out = PyDict::new(py);
        for (name, value) in UPDATE_FLOAT_COLUMNS.iter().zip(row.values()) {
            out.set_item(*name, value)?;
        }
        Ok(Some(out))
    }
}
