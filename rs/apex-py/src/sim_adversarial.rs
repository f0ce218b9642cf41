//! Bindings of the simulator's GP strategy slot: adversarial fitness of many trees over seeds, and its feature set.

use apex_gp::Limits;
use apex_sim::SimError;
use apex_sim::adversarial::{AdversarialFitness, adversarial_fitness, adversarial_fitness_independent, gp_run};
use apex_sim::batch::{RunOptions, config_for};
use apex_sim::dsg::Dsg;
use apex_sim::gp_strategy::{self, FeatureOptions};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::run_detached;
use crate::sim::output_to_py;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sim_gp_fitness, m)?)?;
    m.add_function(wrap_pyfunction!(sim_gp_run, m)?)?;
    m.add_function(wrap_pyfunction!(sim_feature_names, m)?)?;
    m.add_function(wrap_pyfunction!(sim_feature_warmup, m)?)?;
    Ok(())
}

/// Runs every GP tree (JSON text) as the strategy in the market of the DSG (`None`: the default DSG) for every seed,
/// in parallel (features made as `features --rv-bars rv_bars --vmd-modes vmd_modes --vmd-window vmd_window`), and
/// returns `mean_pnl` (one per tree) and `pnl`, `fees`, `max_drawdown`, `trades`, `ruined`, `truncated`, `simulated`
/// as NumPy arrays of shape (trees, seeds). `shared=False` runs every pair that trades in a market of its own from
/// time 0 (the evaluation before markets were shared; same results, the benchmark's baseline).
#[pyfunction]
#[pyo3(signature = (trees, dsg_json, seeds, symbol="BTCUSDT", hours=1.0, *, bar_seconds=60, rv_bars=30, vmd_modes=3, vmd_window=64, capital=200.0, max_events=200_000_000, shared=true))]
#[allow(clippy::too_many_arguments)]
fn sim_gp_fitness<'py>(
    py: Python<'py>,
    trees: Vec<String>,
    dsg_json: Option<&str>,
    seeds: Vec<u64>,
    symbol: &str,
    hours: f64,
    bar_seconds: i64,
    rv_bars: usize,
    vmd_modes: usize,
    vmd_window: usize,
    capital: f64,
    max_events: u64,
    shared: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let evaluate = if shared { adversarial_fitness::<String> } else { adversarial_fitness_independent::<String> };
    let fit = run_detached(py, || {
        let dsg = Dsg::from_json_or_default(dsg_json).map_err(SimError::from)?;
        let template = config_for(symbol, &options(0, hours, bar_seconds, capital, max_events))?;
        let options = FeatureOptions::new(rv_bars, vmd_modes, vmd_window);
        evaluate(&trees, &dsg, &seeds, &template, &options, &Limits::default())
    })?;
    // `markets` (per seed) stays in Rust: forge.dual's result type is these arrays.
    let AdversarialFitness {
        trees,
        seeds,
        mean_pnl,
        pnl,
        fees,
        max_drawdown,
        trades,
        ruined,
        truncated,
        simulated,
        markets: _,
    } = fit;
    let shape = [trees, seeds];
    let out = PyDict::new(py);
    out.set_item("mean_pnl", PyArray1::from_vec(py, mean_pnl))?;
    out.set_item("pnl", PyArray1::from_vec(py, pnl).reshape(shape)?)?;
    out.set_item("fees", PyArray1::from_vec(py, fees).reshape(shape)?)?;
    out.set_item("max_drawdown", PyArray1::from_vec(py, max_drawdown).reshape(shape)?)?;
    out.set_item("trades", PyArray1::from_vec(py, trades).reshape(shape)?)?;
    out.set_item("ruined", PyArray1::from_vec(py, ruined).reshape(shape)?)?;
    out.set_item("truncated", PyArray1::from_vec(py, truncated).reshape(shape)?)?;
    out.set_item("simulated", PyArray1::from_vec(py, simulated).reshape(shape)?)?;
    Ok(out)
}

/// Runs one GP tree as the strategy for one seed and returns `sim_run`'s dict (bars, fills, strategy report; the
/// trades and book tables only with `record_market`) plus `signals`: the tree's signal on every bar it saw.
#[pyfunction]
#[pyo3(signature = (tree, dsg_json, seed, symbol="BTCUSDT", hours=1.0, *, bar_seconds=60, rv_bars=30, vmd_modes=3, vmd_window=64, capital=200.0, max_events=200_000_000, record_market=false))]
#[allow(clippy::too_many_arguments)]
fn sim_gp_run<'py>(
    py: Python<'py>,
    tree: &str,
    dsg_json: Option<&str>,
    seed: u64,
    symbol: &str,
    hours: f64,
    bar_seconds: i64,
    rv_bars: usize,
    vmd_modes: usize,
    vmd_window: usize,
    capital: f64,
    max_events: u64,
    record_market: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let result = run_detached(py, || {
        let dsg = Dsg::from_json_or_default(dsg_json).map_err(SimError::from)?;
        let mut config = config_for(symbol, &options(seed, hours, bar_seconds, capital, max_events))?;
        config.record_market = record_market;
        let options = FeatureOptions::new(rv_bars, vmd_modes, vmd_window);
        gp_run(tree, &dsg, &config, &options, &Limits::default())
    })?;
    let out = output_to_py(py, result.output)?;
    out.set_item("signals", PyArray1::from_vec(py, result.signals))?;
    Ok(out)
}

/// The features a GP tree may use in the simulator with bars of `bar_seconds` (and `vmd_modes` VMD columns), in
/// row order.
#[pyfunction]
#[pyo3(signature = (bar_seconds=60, vmd_modes=3))]
fn sim_feature_names(bar_seconds: i64, vmd_modes: usize) -> Vec<String> {
    gp_strategy::sim_feature_names(bar_seconds, &FeatureOptions::new(30, vmd_modes, 64))
}

/// For each of `sim_feature_names(bar_seconds, vmd_modes)`, the bars from a simulation's start before it is first
/// defined.
#[pyfunction]
#[pyo3(signature = (bar_seconds=60, rv_bars=30, vmd_modes=3, vmd_window=64))]
fn sim_feature_warmup(bar_seconds: i64, rv_bars: usize, vmd_modes: usize, vmd_window: usize) -> Vec<(String, usize)> {
    gp_strategy::sim_feature_warmup(bar_seconds, &FeatureOptions::new(rv_bars, vmd_modes, vmd_window))
}

/// The run options of a fitness or GP run: the default book stream, the caller's bars, capital and event cap.
fn options(seed: u64, hours: f64, bar_s: i64, capital: f64, max_events: u64) -> RunOptions {
    RunOptions { bar_seconds: bar_s, capital, max_events, ..RunOptions::new(seed, hours) }
}
