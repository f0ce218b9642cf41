//! Bindings of `apex-infer`: bundle verification, streaming a bundle's model over rows, one ONNX batch call, timing.

use std::borrow::Cow;
use std::path::PathBuf;

use apex_infer::{CheckReport, InferError, check_bundle, json_schema, run_onnx_file, stream_bundle, time_bundle};
use numpy::ndarray::{Array2, ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyReadonlyArray2, PyReadonlyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{DataError, IntoPyErr, IoError, SchemaError, UsageError, config_error, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, bundle_check, bundle_bars, policy_run, policy_latency, onnx_run, bundle_schema);
    m.add("ONNX_FEATURES_METADATA", apex_infer::FEATURES_METADATA)?;
    Ok(())
}

impl IntoPyErr for InferError {
    fn into_py_err(self) -> PyErr {
        let message = self.to_string();
        match self {
            InferError::Io { .. } => IoError::new_err(message),
            // The ONNX Runtime library is a setting of the environment (the message says which variable).
            InferError::Runtime(_) => UsageError::new_err(message),
            InferError::Manifest { .. } | InferError::Version { .. } => SchemaError::new_err(message),
            InferError::UnknownModel { .. } => config_error(message),
            InferError::MissingFile { .. }
            | InferError::ExtraFile { .. }
            | InferError::NotRegular { .. }
            | InferError::Hash { .. }
            | InferError::Features(_)
            | InferError::Onnx { .. }
            | InferError::Gp { .. }
            | InferError::Model { .. }
            | InferError::Shape(_) => DataError::new_err(message),
        }
    }
}

/// The rows of a 2-D float64 array, row-major (borrowed when contiguous).
fn row_major<'a>(rows: &'a PyReadonlyArray2<'_, f64>) -> Cow<'a, [f64]> {
    rows.as_slice().map_or_else(|_| Cow::Owned(rows.as_array().iter().copied().collect()), Cow::Borrowed)
}

fn report_dict<'py>(py: Python<'py>, report: &CheckReport) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("path", report.dir.to_string_lossy())?;
    out.set_item("symbol", &report.symbol)?;
    out.set_item("slot", &report.slot)?;
    out.set_item("version", report.version)?;
    out.set_item("features", &report.features)?;
    out.set_item("files", report.files.clone())?;
    let models = PyList::empty(py);
    for model in &report.models {
        let item = PyDict::new(py);
        item.set_item("name", &model.name)?;
        item.set_item("kind", model.kind.as_str())?;
        item.set_item("file", &model.file)?;
        item.set_item("features", model.features)?;
        item.set_item("window", model.window)?;
        item.set_item("outputs", model.outputs)?;
        item.set_item("rows", model.rows)?;
        item.set_item("last_output", &model.last_output)?;
        models.append(item)?;
    }
    out.set_item("models", models)?;
    Ok(out)
}

/// Verifies the bundle folder like the live engine (manifest, hashes, feature order, every model loaded and run on
/// sample rows); returns what was verified. DataError names the first problem.
#[pyfunction]
#[pyo3(signature = (path, engine_features=None))]
fn bundle_check<'py>(
    py: Python<'py>,
    path: PathBuf,
    engine_features: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let report = run_detached(py, || check_bundle(&path, engine_features.as_deref()))?;
    report_dict(py, &report)
}

/// Streams `rows` (rows x bundle features, in the manifest's feature order) through model `model` of the bundle,
/// one row at a time from a fresh state; one output row per input row (NaN while a sequence model fills its window).
#[pyfunction]
fn policy_run<'py>(
    py: Python<'py>,
    bundle: PathBuf,
    model: &str,
    rows: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let n = rows.as_array().nrows();
    let flat = row_major(&rows);
    let (out, width) = run_detached(py, || stream_bundle(&bundle, model, &flat))?;
    Ok(Array2::from_shape_vec((n, width), out).expect("one output row per input row").into_pyarray(py))
}

/// Nanoseconds each single-row decision of model `model` took inside Rust, streaming `rows` from a fresh state.
#[pyfunction]
fn policy_latency<'py>(
    py: Python<'py>,
    bundle: PathBuf,
    model: &str,
    rows: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let flat = row_major(&rows);
    let times = run_detached(py, || time_bundle(&bundle, model, &flat))?;
    Ok(times.into_pyarray(py))
}

/// One batch call of the ONNX model at `path` on a float32 input of any shape; returns its (first) output.
#[pyfunction]
fn onnx_run<'py>(
    py: Python<'py>,
    path: PathBuf,
    inputs: PyReadonlyArrayDyn<'py, f32>,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let shape = inputs.as_array().shape().to_vec();
    let data: Cow<'_, [f32]> =
        inputs.as_slice().map_or_else(|_| Cow::Owned(inputs.as_array().iter().copied().collect()), Cow::Borrowed);
    let tensor = run_detached(py, || run_onnx_file(&path, &shape, &data))?;
    let array = ArrayD::from_shape_vec(IxDyn(&tensor.shape), tensor.data)
        .map_err(|e| DataError::new_err(format!("ONNX output: {e}")))?;
    Ok(array.into_pyarray(py))
}

/// A manifest's `bars` record (JSON text) checked for models reading `features`, as JSON with every option filled
/// in; `SchemaError` naming what is wrong.
#[pyfunction]
fn bundle_bars(bars: &str, features: Vec<String>) -> PyResult<String> {
    let bars = apex_infer::BarSpec::from_json(bars, &features).map_err(SchemaError::new_err)?;
    Ok(serde_json::to_string(&bars).expect("a bars record serializes"))
}

/// The JSON Schema of a bundle's manifest.json (the committed copy is apexctl/schemas/bundle.schema.json).
#[pyfunction]
fn bundle_schema() -> String {
    serde_json::to_string_pretty(&json_schema()).expect("a JSON value serializes") + "\n"
}
