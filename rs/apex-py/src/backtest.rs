//! Bindings of `apex-backtest`: many strategies' metrics in one call, and one strategy's equity curve.

use std::borrow::Cow;

use apex_backtest::{BacktestError, BacktestParams, Bars, Metrics, RuleParams, equity_curve, run};
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{DataError, IntoPyErr, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(backtest_run, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_equity, m)?)?;
    Ok(())
}

impl IntoPyErr for BacktestError {
    fn into_py_err(self) -> PyErr {
        DataError::new_err(self.to_string())
    }
}

/// Borrows a contiguous array, copies a strided one.
fn values<'a, T: numpy::Element + Copy>(array: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    array.as_slice().map_or_else(|_| Cow::Owned(array.as_array().to_vec()), Cow::Borrowed)
}

/// The bar columns of one call, borrowed (or copied when strided).
struct Columns<'a> {
    ts: Cow<'a, [i64]>,
    open: Cow<'a, [f64]>,
    high: Cow<'a, [f64]>,
    low: Cow<'a, [f64]>,
    close: Cow<'a, [f64]>,
    volume: Cow<'a, [f64]>,
    spread_bps: Option<Cow<'a, [f64]>>,
    depth: Option<Cow<'a, [f64]>>,
}

impl Columns<'_> {
    fn bars(&self) -> Bars<'_> {
        Bars {
            ts: &self.ts,
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            volume: &self.volume,
            spread_bps: self.spread_bps.as_deref(),
            depth: self.depth.as_deref(),
        }
    }
}

/// Backtest parameters as keyword arguments, shared by both functions.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct ParamsArg {
    capital: f64,
    target_multiple: f64,
    fee: f64,
    spread_bps: f64,
    depth: f64,
    impact: f64,
    entry_threshold: f64,
    stop_atr_mult: f64,
    atr_window: usize,
    stop_min_bps: f64,
    reward_risk: f64,
    kelly_scale: f64,
    kelly_window: usize,
    prior_win_rate: f64,
    prior_trades: f64,
    min_fraction: f64,
    max_fraction: f64,
    max_leverage: f64,
}

fn params_from(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<BacktestParams> {
    let defaults = BacktestParams::default();
    let Some(kwargs) = kwargs else { return Ok(defaults) };
    let py = kwargs.py();
    let merged = PyDict::new(py);
    let (d, r) = (&defaults, &defaults.rule);
    for (name, value) in [
        ("capital", d.capital),
        ("target_multiple", d.target_multiple),
        ("fee", d.fee),
        ("spread_bps", d.spread_bps),
        ("depth", d.depth),
        ("impact", d.impact),
        ("entry_threshold", r.entry_threshold),
        ("stop_atr_mult", r.stop_atr_mult),
        ("stop_min_bps", r.stop_min_bps),
        ("reward_risk", r.reward_risk),
        ("kelly_scale", r.kelly_scale),
        ("prior_win_rate", r.prior_win_rate),
        ("prior_trades", r.prior_trades),
        ("min_fraction", r.min_fraction),
        ("max_fraction", r.max_fraction),
        ("max_leverage", r.max_leverage),
    ] {
        merged.set_item(name, value)?;
    }
    for (name, value) in [("atr_window", r.atr_window), ("kelly_window", r.kelly_window)] {
        merged.set_item(name, value)?;
    }
    for (key, value) in kwargs.iter() {
        let name: String = key.extract()?;
        if !merged.contains(&name)? {
            return Err(PyTypeError::new_err(format!("unknown backtest parameter `{name}`")));
        }
        merged.set_item(name, value)?;
    }
    let p: ParamsArg = merged.extract()?;
    Ok(BacktestParams {
        capital: p.capital,
        target_multiple: p.target_multiple,
        fee: p.fee,
        spread_bps: p.spread_bps,
        depth: p.depth,
        impact: p.impact,
        rule: RuleParams {
            entry_threshold: p.entry_threshold,
            stop_atr_mult: p.stop_atr_mult,
            atr_window: p.atr_window,
            stop_min_bps: p.stop_min_bps,
            reward_risk: p.reward_risk,
            kelly_scale: p.kelly_scale,
            kelly_window: p.kelly_window,
            prior_win_rate: p.prior_win_rate,
            prior_trades: p.prior_trades,
            min_fraction: p.min_fraction,
            max_fraction: p.max_fraction,
            max_leverage: p.max_leverage,
        },
        instrument: defaults.instrument,
    })
}

fn float_column<'py>(py: Python<'py>, metrics: &[Metrics], field: fn(&Metrics) -> f64) -> Bound<'py, PyAny> {
    PyArray1::from_iter(py, metrics.iter().map(field)).into_any()
}

fn int_column<'py>(py: Python<'py>, metrics: &[Metrics], field: fn(&Metrics) -> i64) -> Bound<'py, PyAny> {
    PyArray1::from_iter(py, metrics.iter().map(field)).into_any()
}

fn bool_column<'py>(py: Python<'py>, metrics: &[Metrics], field: fn(&Metrics) -> bool) -> Bound<'py, PyAny> {
    PyArray1::from_iter(py, metrics.iter().map(field)).into_any()
}

fn as_i64(value: Option<usize>) -> i64 {
    value.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// Metrics of every row of `signals` (strategies x bars) over bars `[start, end)`: a dict of arrays, one per metric.
#[pyfunction]
#[pyo3(signature = (signals, ts, open, high, low, close, volume, *, start=0, end=None, bar_spread_bps=None, bar_depth=None, **params))]
#[allow(clippy::too_many_arguments)]
fn backtest_run<'py>(
    py: Python<'py>,
    signals: PyReadonlyArray2<'py, f64>,
    ts: PyReadonlyArray1<'py, i64>,
    open: PyReadonlyArray1<'py, f64>,
    high: PyReadonlyArray1<'py, f64>,
    low: PyReadonlyArray1<'py, f64>,
    close: PyReadonlyArray1<'py, f64>,
    volume: PyReadonlyArray1<'py, f64>,
    start: usize,
    end: Option<usize>,
    bar_spread_bps: Option<PyReadonlyArray1<'py, f64>>,
    bar_depth: Option<PyReadonlyArray1<'py, f64>>,
    params: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let params = params_from(params)?;
    let columns = Columns {
        ts: values(&ts),
        open: values(&open),
        high: values(&high),
        low: values(&low),
        close: values(&close),
        volume: values(&volume),
        spread_bps: bar_spread_bps.as_ref().map(values),
        depth: bar_depth.as_ref().map(values),
    };
    let rows = columns.ts.len();
    let (strategies, signal_rows) = signals.as_array().dim();
    if signal_rows != rows {
        return Err(DataError::new_err(format!(
            "signals have {signal_rows} columns but there are {rows} bars (expected strategies x bars)"
        )));
    }
    let signal_values: Cow<'_, [f64]> =
        signals.as_slice().map_or_else(|_| Cow::Owned(signals.as_array().iter().copied().collect()), Cow::Borrowed);
    let end = end.unwrap_or(rows);
    let metrics = run_detached(py, || run(&columns.bars(), &signal_values, &params, start..end))?;
    debug_assert_eq!(metrics.len(), strategies);

    let out = PyDict::new(py);
    let m = &metrics;
    out.set_item("fitness", float_column(py, m, |x| x.fitness))?;
    out.set_item("reached", bool_column(py, m, |x| x.reached))?;
    out.set_item("ttt_bars", int_column(py, m, |x| as_i64(x.ttt_bars)))?;
    out.set_item("ttt_seconds", float_column(py, m, |x| x.ttt_seconds))?;
    out.set_item("ruined", bool_column(py, m, |x| x.ruined))?;
    out.set_item("ruin_bar", int_column(py, m, |x| as_i64(x.ruin_bar)))?;
    out.set_item("final_equity", float_column(py, m, |x| x.final_equity))?;
    out.set_item("pnl", float_column(py, m, |x| x.pnl))?;
    out.set_item("max_equity", float_column(py, m, |x| x.max_equity))?;
    out.set_item("sharpe", float_column(py, m, |x| x.sharpe))?;
    out.set_item("max_drawdown", float_column(py, m, |x| x.max_drawdown))?;
    out.set_item("trades", int_column(py, m, |x| as_i64(Some(x.trades))))?;
    out.set_item("wins", int_column(py, m, |x| as_i64(Some(x.wins))))?;
    out.set_item("win_rate", float_column(py, m, |x| x.win_rate))?;
    out.set_item("fees", float_column(py, m, |x| x.fees))?;
    Ok(out)
}

/// Equity at each bar close of `[start, end)` for one strategy's `signal` (one value per bar).
#[pyfunction]
#[pyo3(signature = (signal, ts, open, high, low, close, volume, *, start=0, end=None, bar_spread_bps=None, bar_depth=None, **params))]
#[allow(clippy::too_many_arguments)]
fn backtest_equity<'py>(
    py: Python<'py>,
    signal: PyReadonlyArray1<'py, f64>,
    ts: PyReadonlyArray1<'py, i64>,
    open: PyReadonlyArray1<'py, f64>,
    high: PyReadonlyArray1<'py, f64>,
    low: PyReadonlyArray1<'py, f64>,
    close: PyReadonlyArray1<'py, f64>,
    volume: PyReadonlyArray1<'py, f64>,
    start: usize,
    end: Option<usize>,
    bar_spread_bps: Option<PyReadonlyArray1<'py, f64>>,
    bar_depth: Option<PyReadonlyArray1<'py, f64>>,
    params: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let params = params_from(params)?;
    let columns = Columns {
        ts: values(&ts),
        open: values(&open),
        high: values(&high),
        low: values(&low),
        close: values(&close),
        volume: values(&volume),
        spread_bps: bar_spread_bps.as_ref().map(values),
        depth: bar_depth.as_ref().map(values),
    };
    let signal = values(&signal);
    let end = end.unwrap_or(columns.ts.len());
    let curve = run_detached(py, || equity_curve(&columns.bars(), &signal, &params, start..end))?;
    Ok(PyArray1::from_vec(py, curve))
}
