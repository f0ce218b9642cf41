//! Bindings of `apex-sim`: one simulation with its tables, a parallel batch of summaries, the built-in strategies and
//! the DSG's contract.

use apex_core::{BookRows, TradeRows};
use apex_sim::SimError;
use apex_sim::batch::{Job, RunOptions, config_for as sim_config_for, run_batch};
use apex_sim::dsg::{Dsg, DsgError, PARAMS};
use apex_sim::market::{Market, SimOutput, run, run_us, utc_ns};
use apex_sim::strategy::{self, StrategyError};
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{DataError, IntoPyErr, config_error, run_detached};
use crate::params::merged;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(
        m,
        sim_run,
        sim_batch,
        dsg_params,
        dsg_json_schema,
        dsg_normalize,
        sim_presets,
        sim_strategies,
        sim_strategy_check
    );
    m.add_class::<SimMarket>()?;
    m.add("SIM_BOOK_DEPTH", apex_sim::market::DEFAULT_BOOK_DEPTH)?;
    m.add("SIM_BOOK_CADENCE_MS", apex_sim::market::DEFAULT_BOOK_CADENCE_MS)?;
    m.add("SIM_EPOCH_NS", apex_sim::market::DEFAULT_EPOCH_NS)?;
    m.add("SIM_MA_MAX_BARS", strategy::MA_MAX_BARS)?;
    Ok(())
}

/// The built-in strategies (apex-sim's `BUILTINS`): `(name, what it does)`.
#[pyfunction]
fn sim_strategies() -> Vec<(&'static str, &'static str)> {
    strategy::BUILTINS.to_vec()
}

/// `name` if it names a built-in strategy, else a `ConfigError` saying what is wrong with it.
#[pyfunction]
fn sim_strategy_check(name: &str) -> PyResult<&str> {
    strategy::parse(name).map(|_| name).map_err(IntoPyErr::into_py_err)
}

/// The simulator's instrument presets (apex-sim's `PRESETS`): `(symbol, tick size, qty step, start price)`.
#[pyfunction]
fn sim_presets() -> Vec<(&'static str, &'static str, &'static str, f64)> {
    apex_sim::batch::PRESETS.to_vec()
}

impl IntoPyErr for SimError {
    fn into_py_err(self) -> PyErr {
        match self {
            SimError::Gp(error) => error.into_py_err(),
            SimError::Features(error) => error.into_py_err(),
            SimError::BadDecimal { .. }
            | SimError::NotPositive { .. }
            | SimError::OffStep { .. }
            | SimError::MaxQty { .. }
            | SimError::BadFeeRate { .. }
            | SimError::BadBand { .. }
            | SimError::ZeroDepth
            | SimError::Config(_)
            | SimError::UnknownAccount(_)
            | SimError::Dsg(_) => config_error(self.to_string()),
        }
    }
}

impl IntoPyErr for DsgError {
    fn into_py_err(self) -> PyErr {
        config_error(self.to_string())
    }
}

impl IntoPyErr for StrategyError {
    fn into_py_err(self) -> PyErr {
        config_error(self.to_string())
    }
}

/// The DSG of an optional document (apex-sim decides; the default DSG when there is none).
pub(crate) fn dsg_from(text: Option<&str>) -> Result<Dsg, SimError> {
    Ok(Dsg::from_json_or_default(text)?)
}

fn columns<'py>(py: Python<'py>, items: Vec<(&str, Bound<'py, PyAny>)>) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, value) in items {
        out.set_item(name, value)?;
    }
    Ok(out)
}

/// The `trades` and `book` columns as `bybit_parse_lines` gives them (trade ids as Arrow-style `trade_id_data`
/// bytes plus `trade_id_offsets`), each with `ts_us` (µs since the run's start) beside `ts`.
fn market_tables_to_py<'py>(
    py: Python<'py>,
    trades: TradeRows,
    book: BookRows,
    epoch_ns: i64,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let run_time = |ts: &[i64]| PyArray1::from_vec(py, ts.iter().map(|&t| run_us(epoch_ns, t)).collect());
    macro_rules! market_columns {
        ($table:ident; $($column:ident),+) => {
            columns(
                py,
                vec![
                    ("ts_us", run_time(&$table.ts).into_any()),
                    $((stringify!($column), PyArray1::from_vec(py, $table.$column).into_any()),)+
                ],
            )?
        };
    }
    let trade_columns = market_columns!(trades; ts, symbol, side, price, size, trade_id_offsets);
    trade_columns.set_item("trade_id_data", PyArray1::from_vec(py, trades.trade_id_data.into_bytes()))?;
    Ok((trade_columns, market_columns!(book; ts, symbol, kind, side, price, size, update_id, seq)))
}

pub(crate) fn output_to_py<'py>(py: Python<'py>, out: SimOutput) -> PyResult<Bound<'py, PyDict>> {
    let SimOutput {
        trades,
        book,
        bars,
        fills,
        fair_value,
        populations,
        strategy,
        events,
        trade_count,
        truncated,
        epoch_ns,
    } = out;
    // Every table has `ts` (UTC ns) and `ts_us` (µs since the run's start), each from the other by apex-sim's
    // conversion: the market tables are recorded in table time, the others in run time.
    let utc = |ts_us: &[i64]| PyArray1::from_vec(py, ts_us.iter().map(|&t| utc_ns(epoch_ns, t)).collect());
    let result = PyDict::new(py);
    macro_rules! timed_columns {
        ($table:ident; $($column:ident),+) => {
            columns(
                py,
                vec![
                    ("ts", utc(&$table.ts_us).into_any()),
                    ("ts_us", PyArray1::from_vec(py, $table.ts_us).into_any()),
                    $((stringify!($column), PyArray1::from_vec(py, $table.$column).into_any()),)+
                ],
            )?
        };
    }
    let (trade_columns, book_columns) = market_tables_to_py(py, trades, book, epoch_ns)?;
    result.set_item("trades", trade_columns)?;
    result.set_item("book", book_columns)?;
    let bar_column = |f: fn(&apex_sim::strategy::Bar) -> f64| PyArray1::from_vec(py, bars.iter().map(f).collect());
    result.set_item(
        "bars",
        columns(
            py,
            vec![
                ("ts", utc(&bars.iter().map(|b| b.ts_us).collect::<Vec<_>>()).into_any()),
                ("ts_us", PyArray1::from_vec(py, bars.iter().map(|b| b.ts_us).collect()).into_any()),
                ("open", bar_column(|b| b.open).into_any()),
                ("high", bar_column(|b| b.high).into_any()),
                ("low", bar_column(|b| b.low).into_any()),
                ("close", bar_column(|b| b.close).into_any()),
                ("volume", bar_column(|b| b.volume).into_any()),
                ("turnover", bar_column(|b| b.turnover).into_any()),
            ],
        )?,
    )?;
    result.set_item("fills", timed_columns!(fills; account, side, price, size, fee, order_id, maker))?;
    result.set_item("fair_value", timed_columns!(fair_value; value, jump))?;
    let pops = PyDict::new(py);
    for p in &populations {
        pops.set_item(
            p.population.name(),
            columns(
                py,
                vec![
                    ("agents", p.agents.into_pyobject(py)?.into_any()),
                    ("pnl", p.pnl.into_pyobject(py)?.into_any()),
                    ("fees", p.fees.into_pyobject(py)?.into_any()),
                    ("volume", p.volume.into_pyobject(py)?.into_any()),
                ],
            )?,
        )?;
    }
    result.set_item("populations", pops)?;
    match strategy {
        None => result.set_item("strategy", py.None())?,
        Some(r) => {
            let report = PyDict::new(py);
            set_fields!(report, r; name, pnl, fees, max_drawdown, time_to_target_s, ruined, n_fills);
            report.set_item("equity_ts", utc(&r.equity_ts_us))?;
            report.set_item("equity_ts_us", PyArray1::from_vec(py, r.equity_ts_us))?;
            report.set_item("equity", PyArray1::from_vec(py, r.equity))?;
            result.set_item("strategy", report)?;
        }
    }
    result.set_item("events", events)?;
    result.set_item("trade_count", trade_count)?;
    result.set_item("truncated", truncated)?;
    Ok(result)
}

/// Runs one simulation of `symbol` (a preset instrument) starting at `epoch_ns` (UTC ns) and returns its tables as
/// NumPy columns (time as `ts`, UTC ns, and `ts_us`, microseconds since the start; `trades` and `book` as
/// `bybit_parse_lines` gives them, symbol code 0), the latent fair value (`fair_value`: ts, ts_us, value, jump),
/// per-population PnL and the strategy's report. Without `record_market` the market tables and the fair value are
/// empty.
#[pyfunction]
#[pyo3(signature = (symbol, *, dsg_json=None, strategy=None, record_all_fills=false, record_market=true, epoch_ns=apex_sim::market::DEFAULT_EPOCH_NS, **options))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each
fn sim_run<'py>(
    py: Python<'py>,
    symbol: &str,
    dsg_json: Option<&str>,
    strategy: Option<&str>,
    record_all_fills: bool,
    record_market: bool,
    epoch_ns: i64,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = merged(RunOptions::default(), options, "sim_run")?;
    let out = run_detached(py, || {
        let dsg = dsg_from(dsg_json)?;
        let mut config = sim_config_for(symbol, &options)?;
        config.record_all_fills = record_all_fills;
        config.record_market = record_market;
        config.epoch_ns = epoch_ns;
        let mut chosen = strategy.map(strategy::parse).transpose().map_err(SimError::from)?;
        match chosen.as_mut() {
            Some(s) => run(&dsg, &config, Some(s.as_mut())),
            None => run(&dsg, &config, None),
        }
    })?;
    output_to_py(py, out)
}

/// One simulated market of `symbol` (a preset instrument, no strategy) that its caller advances piece by piece, so a
/// long run is recorded in bounded memory: `advance(until_us)` returns the `trades` and `book` rows recorded since the
/// last call (as `sim_run` gives them), `finish()` the rest of the run as `sim_run` returns it. Advanced to
/// `horizon_us` in any pieces, its rows are exactly those of `sim_run` with the same arguments.
#[pyclass(module = "apexctl._core")]
pub struct SimMarket {
    market: Option<Market>,
    epoch_ns: i64,
}

#[pymethods]
impl SimMarket {
    #[new]
    #[pyo3(signature = (symbol, *, dsg_json=None, epoch_ns=apex_sim::market::DEFAULT_EPOCH_NS, **options))]
    fn new(symbol: &str, dsg_json: Option<&str>, epoch_ns: i64, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let options = merged(RunOptions::default(), options, "SimMarket")?;
        let open = || -> Result<Market, SimError> {
            let mut config = sim_config_for(symbol, &options)?;
            config.epoch_ns = epoch_ns;
            let mut market = Market::new(&dsg_from(dsg_json)?, &config)?;
            market.start(None);
            Ok(market)
        };
        Ok(SimMarket { market: Some(open().map_err(IntoPyErr::into_py_err)?), epoch_ns })
    }

    /// Simulated time (µs since the start) at which the run ends.
    #[getter]
    fn horizon_us(&self) -> PyResult<i64> {
        Ok(self.open()?.horizon_us())
    }

    /// Processes every event due at or before `until_us` (never past the horizon) and returns `(trades, book)`: the
    /// rows recorded since the last call.
    fn advance<'py>(&mut self, py: Python<'py>, until_us: i64) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let market = self.market.as_mut().ok_or_else(finished)?;
        let (trades, book) = run_detached(py, || {
            market.advance_until(until_us, None);
            Ok::<_, SimError>(market.take_market_tables())
        })?;
        market_tables_to_py(py, trades, book, self.epoch_ns)
    }

    /// Ends the run: what `sim_run` returns, its `trades` and `book` holding the rows no `advance` returned.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let market = self.market.take().ok_or_else(finished)?;
        output_to_py(py, market.finish())
    }
}

impl SimMarket {
    fn open(&self) -> PyResult<&Market> {
        self.market.as_ref().ok_or_else(finished)
    }
}

fn finished() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("SimMarket: the run was finished")
}

/// Runs one job per row of `dsg_vectors` (flat DSG vectors, clipped into bounds) with its seed and strategy name
/// ('' for none), in parallel on all cores, and returns one NumPy column per summary field.
#[pyfunction]
#[pyo3(signature = (symbol, dsg_vectors, seeds, strategies, **options))]
fn sim_batch<'py>(
    py: Python<'py>,
    symbol: &str,
    dsg_vectors: PyReadonlyArray2<'py, f64>,
    seeds: PyReadonlyArray1<'py, u64>,
    strategies: Vec<String>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    if options.is_some_and(|o| o.contains("seed").unwrap_or(false)) {
        return Err(PyTypeError::new_err("sim_batch takes one seed per job (`seeds`), not `seed`"));
    }
    let options = merged(RunOptions::default(), options, "sim_run")?;
    let vectors = dsg_vectors.as_array();
    let seeds = seeds.as_slice()?;
    if vectors.nrows() != seeds.len() || seeds.len() != strategies.len() {
        return Err(DataError::new_err(format!(
            "sim_batch: {} DSG rows, {} seeds and {} strategies must be the same count",
            vectors.nrows(),
            seeds.len(),
            strategies.len()
        )));
    }
    let rows: Vec<Vec<f64>> = vectors.rows().into_iter().map(|r| r.to_vec()).collect();
    let summaries = run_detached(py, || {
        let jobs = rows
            .iter()
            .zip(seeds)
            .zip(&strategies)
            .map(|((row, &seed), name)| {
                Ok(Job {
                    dsg: Dsg::from_vector_clipped(row)?,
                    seed,
                    strategy: (!name.is_empty()).then(|| name.clone()),
                })
            })
            .collect::<Result<Vec<Job>, SimError>>()?;
        let template = sim_config_for(symbol, &options)?;
        run_batch(&template, &jobs)
    })?;
    let column = |f: fn(&apex_sim::batch::JobSummary) -> f64| PyArray1::from_vec(py, summaries.iter().map(f).collect());
    columns(
        py,
        vec![
            ("pnl", column(|s| s.pnl).into_any()),
            ("fees", column(|s| s.fees).into_any()),
            ("max_drawdown", column(|s| s.max_drawdown).into_any()),
            ("time_to_target_s", column(|s| s.time_to_target_s).into_any()),
            ("ruined", PyArray1::from_vec(py, summaries.iter().map(|s| s.ruined).collect()).into_any()),
            ("n_fills", PyArray1::from_vec(py, summaries.iter().map(|s| s.n_fills as u64).collect()).into_any()),
            ("events", PyArray1::from_vec(py, summaries.iter().map(|s| s.events).collect()).into_any()),
            ("trades", PyArray1::from_vec(py, summaries.iter().map(|s| s.trades as u64).collect()).into_any()),
            ("truncated", PyArray1::from_vec(py, summaries.iter().map(|s| s.truncated).collect()).into_any()),
        ],
    )
}

/// The DSG parameters in flat-vector order: (name, lower bound, upper bound, default, is a count, meaning).
#[pyfunction]
fn dsg_params() -> Vec<(&'static str, f64, f64, f64, bool, &'static str)> {
    PARAMS.iter().map(|p| (p.name, p.lo, p.hi, p.default, p.integer, p.doc)).collect()
}

/// The DSG document's JSON Schema, as JSON text.
#[pyfunction]
fn dsg_json_schema() -> String {
    serde_json::to_string_pretty(&Dsg::json_schema()).unwrap_or_default()
}

/// Validates a DSG document (defaults filled in) and returns it normalized as JSON text; `None` gives the default DSG.
#[pyfunction]
#[pyo3(signature = (text=None))]
fn dsg_normalize(text: Option<&str>) -> PyResult<String> {
    let dsg = dsg_from(text).map_err(IntoPyErr::into_py_err)?;
    Ok(serde_json::to_string_pretty(&dsg.to_json()).unwrap_or_default())
}
