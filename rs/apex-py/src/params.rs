//! Bindings of the parameter tables (`apex_core::param_table!`): each table's rows for Python, and keyword arguments
//! merged over a table's defaults.

use apex_backtest::BacktestParams;
use apex_core::ParamSpec;
use apex_features::FeatureOptions;
use apex_sim::batch::RunOptions;
use apex_sim::execution::ExecConfig;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::config_error;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, param_table, duration_seconds);
    Ok(())
}

/// One row of a table as Python sees it: (name, default, low, high, low open, high open, is a count, meaning).
type Row = (&'static str, f64, f64, f64, bool, bool, bool, &'static str);

/// The rows of the parameter table `name` (`backtest`, `sim_run`, `execution` or `features`), in declaration order:
/// (name, default, low, high, low_open, high_open, integer, doc).
#[pyfunction]
fn param_table(name: &str) -> PyResult<Vec<Row>> {
    let specs: Vec<ParamSpec> = match name {
        "backtest" => BacktestParams::specs(),
        "sim_run" => RunOptions::PARAMS.to_vec(),
        "execution" => ExecConfig::PARAMS.to_vec(),
        "features" => FeatureOptions::PARAMS.to_vec(),
        other => {
            return Err(PyValueError::new_err(format!(
                "no parameter table `{other}`; known: backtest, sim_run, execution, features"
            )));
        }
    };
    Ok(specs
        .iter()
        .map(|s| (s.name, s.default, s.bounds.lo, s.bounds.hi, s.bounds.lo_open, s.bounds.hi_open, s.integer, s.doc))
        .collect())
}

/// `text` ("90", "1.5s", "500ms", "10m", "2h", "1d") in seconds, as the engine and the venue read their
/// `--duration` (`apex_core::text::parse_duration`); ValueError naming what was expected.
#[pyfunction]
fn duration_seconds(text: &str) -> PyResult<f64> {
    apex_core::text::parse_duration(text).map(|d| d.as_secs_f64()).map_err(PyValueError::new_err)
}

/// `defaults` as a flat JSON object.
fn fields<T: Serialize>(defaults: &T) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(defaults) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => unreachable!("a parameter table serializes to a map"),
    }
}

/// The defaults of a table as `{name: value}` (counts as ints, reals as floats).
pub(crate) fn defaults_dict<'py, T: Serialize>(py: Python<'py>, defaults: &T) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, value) in fields(defaults) {
        match (value.as_i64(), value.is_f64()) {
            (Some(count), false) => out.set_item(name, count)?,
            _ => out.set_item(name, value.as_f64().unwrap_or(f64::NAN))?,
        }
    }
    Ok(out)
}

/// Keyword arguments over `defaults`: an unknown name is a TypeError naming `what`, a value of the wrong kind names
/// its key, a NaN or infinite real is a ConfigError naming it. Bounds are the table's `validate`'s business, so they
/// fail the same way from Rust and from Python.
pub(crate) fn merged<T: Serialize + DeserializeOwned>(
    defaults: T,
    kwargs: Option<&Bound<'_, PyDict>>,
    what: &str,
) -> PyResult<T> {
    let Some(kwargs) = kwargs else { return Ok(defaults) };
    let mut merged = fields(&defaults);
    for (key, value) in kwargs.iter() {
        let name: String = key.extract()?;
        let Some(default) = merged.get(&name) else {
            return Err(PyTypeError::new_err(format!("unknown {what} parameter `{name}`")));
        };
        let kind = |e: PyErr| PyTypeError::new_err(format!("{what} parameter `{name}`: {e}"));
        let given = if default.is_f64() {
            let real = value.extract::<f64>().map_err(kind)?;
            // JSON, the table's carrier, has no NaN or infinity: refuse them here, as the bounds would.
            if !real.is_finite() {
                return Err(config_error(format!("{name} must be a finite number, got {real}")));
            }
            serde_json::Value::from(real)
        } else {
            // A count: whole numbers of either sign (the table's deserialization refuses a negative unsigned one).
            match value.extract::<i64>() {
                Ok(count) => serde_json::Value::from(count),
                Err(_) => serde_json::Value::from(value.extract::<u64>().map_err(kind)?),
            }
        };
        merged.insert(name, given);
    }
    serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| PyTypeError::new_err(format!("{what} parameters: {e}")))
}

/// Keyword arguments over two tables' defaults at once: each key goes to the table that has it, then as [`merged`]
/// (an unknown name is a TypeError naming `what`); `refused` names a key the caller sets itself, with the reason.
pub(crate) fn merged_pair<A, B>(
    first: A,
    second: B,
    kwargs: Option<&Bound<'_, PyDict>>,
    what: &str,
    refused: (&str, &str),
) -> PyResult<(A, B)>
where
    A: Serialize + DeserializeOwned,
    B: Serialize + DeserializeOwned,
{
    let Some(kwargs) = kwargs else { return Ok((first, second)) };
    let (key, why) = refused;
    if kwargs.contains(key)? {
        return Err(PyTypeError::new_err(format!("{what}: {why}")));
    }
    let second_names = fields(&second);
    let (to_first, to_second) = (PyDict::new(kwargs.py()), PyDict::new(kwargs.py()));
    for (name, value) in kwargs.iter() {
        let owner = if second_names.contains_key(&name.extract::<String>()?) { &to_second } else { &to_first };
        owner.set_item(name, value)?;
    }
    Ok((merged(first, Some(&to_first), what)?, merged(second, Some(&to_second), what)?))
}
