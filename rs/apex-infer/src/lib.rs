//! apex-infer: the inference engine shared by the live engine and the Forge's checks.
//!
//! One [`Policy`] trait, fed one row of features at a time, with two implementations: [`GpPolicy`] (a GP tree run by
//! `apex-gp`'s streaming evaluator) and [`OnnxPolicy`] (a neural network run by ONNX Runtime through `ort`). A
//! [`Bundle`] is the folder `apexctl export` writes: `manifest.json` plus the model files; loading one verifies the
//! schema, every file's SHA-256 and the feature order before any model runs.
//!
//! # ONNX Runtime
//! `ort` is built with `load-dynamic`: nothing is downloaded or linked at build time, and `libonnxruntime.so` is loaded
//! on first use from the path in `ORT_DYLIB_PATH` (`scripts/just` sets it to the copy shipped in the `onnxruntime`
//! Python wheel, `onnxruntime/capi/`). ONNX Runtime 1.20 or newer is required (ort's API level 20).
//!
//! # Rows and readiness
//! A row is the model's features in the order [`Policy::features`] gives, as `f64`; ONNX models see them as `f32`.
//! A sequence model over a window of `w` rows (e.g. a GRU) is not ready until it has seen `w` rows: until then
//! [`Policy::decide`] returns NaN for every output (no error) and [`Policy::ready`] is false.

mod bundle;
mod error;
mod gp;
pub mod maml;
mod onnx;

pub use bundle::{
    BarSpec, Bundle, BundleModel, CheckReport, CreatedBy, MANIFEST, Manifest, ModelCheck, ModelEntry, ModelKind,
    SCHEMA, TensorSpec, VERSION, json_schema, sha256_hex,
};
pub use error::InferError;
pub use gp::GpPolicy;
pub use onnx::{FEATURES_METADATA, OnnxModel, OnnxPolicy, Tensor, runtime_path};

/// A trading decision maker fed one row of features at a time: the same trait in the simulator and the live engine.
pub trait Policy: Send {
    /// The model's name (as in the bundle manifest).
    fn name(&self) -> &str;

    /// The input feature names, in the order row values are expected.
    fn features(&self) -> &[String];

    /// Number of values [`Policy::decide`] returns per row.
    fn outputs(&self) -> usize;

    /// Whether enough rows were seen for [`Policy::decide`] to return real values (not the NaN "not ready" row).
    fn ready(&self) -> bool {
        true
    }

    /// Pushes one row (one value per feature, in [`Policy::features`] order) and returns the decision for it.
    ///
    /// # Errors
    /// `Shape` when the row has the wrong length; `Onnx` when ONNX Runtime fails to run the model.
    fn decide(&mut self, row: &[f64]) -> Result<Vec<f64>, InferError>;

    /// Forgets every row seen (the state of a freshly loaded policy).
    fn reset(&mut self);
}

/// Checks that `row` has one value per feature of `policy`.
pub(crate) fn check_row(name: &str, expected: usize, row: &[f64]) -> Result<(), InferError> {
    if row.len() == expected {
        Ok(())
    } else {
        Err(InferError::Shape(format!("model {name:?} takes {expected} feature value(s) per row, got {}", row.len())))
    }
}

/// Loads and verifies the bundle in `dir` (against `engine_features` when given) and runs its sample check: what
/// `apexctl export --check` and the live engine do before trading a bundle.
///
/// # Errors
/// The first problem found, as [`Bundle::load`] then [`Bundle::check`].
pub fn check_bundle(dir: &std::path::Path, engine_features: Option<&[String]>) -> Result<CheckReport, InferError> {
    Bundle::load(dir, engine_features)?.check()
}

/// Loads the bundle in `dir` and streams `rows` (row-major, bundle feature order) through model `model`.
///
/// # Errors
/// As [`Bundle::load`] and [`Bundle::stream`].
pub fn stream_bundle(dir: &std::path::Path, model: &str, rows: &[f64]) -> Result<(Vec<f64>, usize), InferError> {
    let mut bundle = Bundle::load(dir, None)?;
    let outputs = bundle.model_mut(model)?.policy().outputs();
    Ok((bundle.stream(model, rows)?, outputs))
}

/// Loads the bundle in `dir` and times each decision of model `model` over `rows` (nanoseconds per row).
///
/// # Errors
/// As [`Bundle::load`] and [`Bundle::time_decisions`].
pub fn time_bundle(dir: &std::path::Path, model: &str, rows: &[f64]) -> Result<Vec<f64>, InferError> {
    Bundle::load(dir, None)?.time_decisions(model, rows)
}

/// Runs the ONNX file at `path` once on `data` of `shape`: the batch call the parity tests compare.
///
/// # Errors
/// As [`OnnxModel::load`] and [`OnnxModel::run`].
pub fn run_onnx_file(path: &std::path::Path, shape: &[usize], data: &[f32]) -> Result<Tensor, InferError> {
    OnnxModel::load("onnx_run", path)?.run(shape, data)
}
