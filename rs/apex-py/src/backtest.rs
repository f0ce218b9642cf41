//! Bindings of `apex-backtest`: many strategies' metrics in one call, and one strategy's equity curve.

use std::borrow::Cow;

use apex_backtest::{BacktestError, BacktestParams, BarColumns, Metrics, equity_curve, run};
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::columns::{BarArrays, values};
use crate::errors::{DataError, IntoPyErr, config_error, run_detached};
use crate::params::{defaults_dict, merged};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, backtest_run, backtest_equity, backtest_defaults);
    Ok(())
}

impl IntoPyErr for BacktestError {
    fn into_py_err(self) -> PyErr {
        match self {
            BacktestError::BadSpan { .. } | BacktestError::BadParam { .. } => config_error(self.to_string()),
            BacktestError::LengthMismatch { .. }
            | BacktestError::SignalShape { .. }
            | BacktestError::BadValue { .. }
            | BacktestError::BadBar { .. }
            | BacktestError::NotIncreasing { .. } => DataError::new_err(self.to_string()),
        }
    }
}

/// The bar columns of one call, borrowed (or copied when strided).
fn columns_of<'a>(bars: &'a BarArrays<'_>) -> BarColumns<'a> {
    BarColumns {
        ts: values(&bars.ts),
        open: values(&bars.open),
        high: values(&bars.high),
        low: values(&bars.low),
        close: values(&bars.close),
        volume: values(&bars.volume),
        spread_bps: bars.spread_bps.as_ref().map(values),
        depth: bars.depth.as_ref().map(values),
    }
}

/// The backtest's parameters and their defaults (apex-backtest's `BacktestParams`, flat: the rule's keys beside the
/// cost model's), as `{name: value}`.
#[pyfunction]
fn backtest_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    defaults_dict(py, &BacktestParams::default())
}

/// Keyword arguments over the defaults.
fn params_from(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<BacktestParams> {
    merged(BacktestParams::default(), kwargs, "backtest")
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

/// Metrics of every row of `signals` (strategies x bars) over `bars` (ts, open, high, low, close, volume, and
/// optionally spread_bps and depth) rows `[start, end)`: a dict of arrays, one per metric.
#[pyfunction]
#[pyo3(signature = (signals, bars, *, start=0, end=None, **params))]
fn backtest_run<'py>(
    py: Python<'py>,
    signals: PyReadonlyArray2<'py, f64>,
    bars: BarArrays<'py>,
    start: usize,
    end: Option<usize>,
    params: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let params = params_from(params)?;
    let columns = columns_of(&bars);
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
    let metrics = run_detached(py, || run(&columns.view(), &signal_values, &params, start..end))?;
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
#[pyo3(signature = (signal, bars, *, start=0, end=None, **params))]
fn backtest_equity<'py>(
    py: Python<'py>,
    signal: PyReadonlyArray1<'py, f64>,
    bars: BarArrays<'py>,
    start: usize,
    end: Option<usize>,
    params: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let params = params_from(params)?;
    let columns = columns_of(&bars);
    let signal = values(&signal);
    let end = end.unwrap_or(columns.ts.len());
    let curve = run_detached(py, || equity_curve(&columns.view(), &signal, &params, start..end))?;
    Ok(PyArray1::from_vec(py, curve))
}
