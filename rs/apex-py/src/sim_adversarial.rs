//! Bindings of the simulator's GP strategy slot: adversarial fitness of many trees over seeds, and its feature set.

use apex_gp::Limits;
use apex_sim::SimError;
use apex_sim::adversarial::{AdversarialFitness, Markets, adversarial_fitness, gp_run};
use apex_sim::batch::{RunOptions, config_for};
use apex_sim::dsg::Dsg;
use apex_sim::gp_strategy::{self, FeatureOptions};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{IntoPyErr, run_detached};
use crate::params::{merged, merged_pair};
use crate::sim::output_to_py;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, sim_gp_fitness, sim_gp_run, sim_feature_names, sim_feature_warmup);
    Ok(())
}

/// Runs every GP tree (JSON text) as the strategy in the market of the DSG (`None`: the default DSG) for every seed,
/// in parallel, and returns `mean_pnl` (one per tree) and `pnl`, `fees`, `max_drawdown`, `trades`, `ruined`,
/// `truncated`, `simulated` as NumPy arrays of shape (trees, seeds). `options` are `sim_run`'s (`hours` and the rest
/// of `param_table("sim_run")` but `seed`) and the features' the trees were evolved with (`param_table("features")`:
/// `features --rv-bars/--vmd-modes/--vmd-window`). `shared=False` runs every pair that trades in a market of its own
/// from time 0 (the evaluation before markets were shared; same results, the benchmark's baseline).
#[pyfunction]
#[pyo3(signature = (trees, dsg_json, seeds, symbol="BTCUSDT", hours=None, *, shared=true, **options))]
#[allow(clippy::too_many_arguments)]
fn sim_gp_fitness<'py>(
    py: Python<'py>,
    trees: Vec<String>,
    dsg_json: Option<&str>,
    seeds: Vec<u64>,
    symbol: &str,
    hours: Option<f64>,
    shared: bool,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let refused = ("seed", "sim_gp_fitness takes its seeds as `seeds`, not `seed`");
    let (run, features) = gp_options(options, hours, refused)?;
    let markets = if shared { Markets::Shared } else { Markets::Independent };
    let fit = run_detached(py, || {
        let dsg = Dsg::from_json_or_default(dsg_json).map_err(SimError::from)?;
        let template = config_for(symbol, &run)?;
        adversarial_fitness(&trees, &dsg, &seeds, &template, &features, &Limits::default(), markets)
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
/// `options` as [`sim_gp_fitness`]'s.
#[pyfunction]
#[pyo3(signature = (tree, dsg_json, seed, symbol="BTCUSDT", hours=None, *, record_market=false, **options))]
#[allow(clippy::too_many_arguments)]
fn sim_gp_run<'py>(
    py: Python<'py>,
    tree: &str,
    dsg_json: Option<&str>,
    seed: u64,
    symbol: &str,
    hours: Option<f64>,
    record_market: bool,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let refused = ("seed", "sim_gp_run takes its seed as the `seed` argument");
    let (run, features) = gp_options(options, hours, refused)?;
    let result = run_detached(py, || {
        let dsg = Dsg::from_json_or_default(dsg_json).map_err(SimError::from)?;
        let mut config = config_for(symbol, &RunOptions { seed, ..run })?;
        config.record_market = record_market;
        gp_run(tree, &dsg, &config, &features, &Limits::default())
    })?;
    let out = output_to_py(py, result.output)?;
    out.set_item("signals", PyArray1::from_vec(py, result.signals))?;
    Ok(out)
}

/// The features a GP tree may use in the simulator with bars of `bar_seconds`, in row order; `features` are
/// `param_table("features")`'s (only `vmd_modes` changes the names).
#[pyfunction]
#[pyo3(signature = (bar_seconds=None, **features))]
fn sim_feature_names(bar_seconds: Option<i64>, features: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<String>> {
    let (bar_seconds, features) = feature_options(bar_seconds, features)?;
    Ok(gp_strategy::sim_feature_names(bar_seconds, &features))
}

/// For each of `sim_feature_names(bar_seconds, **features)`, the bars from a simulation's start before it is first
/// defined.
#[pyfunction]
#[pyo3(signature = (bar_seconds=None, **features))]
fn sim_feature_warmup(
    bar_seconds: Option<i64>,
    features: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<(String, usize)>> {
    let (bar_seconds, features) = feature_options(bar_seconds, features)?;
    Ok(gp_strategy::sim_feature_warmup(bar_seconds, &features))
}

/// A GP run's keywords over the run and feature tables' defaults (`hours` given apart, positionally).
fn gp_options(
    options: Option<&Bound<'_, PyDict>>,
    hours: Option<f64>,
    refused: (&str, &str),
) -> PyResult<(RunOptions, FeatureOptions)> {
    let (run, features) =
        merged_pair(RunOptions::default(), FeatureOptions::default(), options, "simulator GP run", refused)?;
    features.validate().map_err(IntoPyErr::into_py_err)?;
    Ok((RunOptions { hours: hours.unwrap_or(run.hours), ..run }, features))
}

/// The bar length (the run table's default when `None`) and the feature options over their defaults, checked.
fn feature_options(bar_seconds: Option<i64>, features: Option<&Bound<'_, PyDict>>) -> PyResult<(i64, FeatureOptions)> {
    let features = merged(FeatureOptions::default(), features, "features")?;
    features.validate().map_err(IntoPyErr::into_py_err)?;
    Ok((bar_seconds.unwrap_or(RunOptions::default().bar_seconds), features))
}
