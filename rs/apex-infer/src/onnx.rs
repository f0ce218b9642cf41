//! ONNX models through `ort` (ONNX Runtime loaded at run time): one batch call, and the streaming policy over rows.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::{TensorRef, ValueType};

use crate::{InferError, Policy, check_row};

/// The variable naming the ONNX Runtime shared library to load.
const DYLIB_VAR: &str = "ORT_DYLIB_PATH";

/// What to do when the library cannot be found; said in every such error.
const HOW_TO_FIX: &str = "set ORT_DYLIB_PATH to the libonnxruntime.so of the onnxruntime Python wheel \
    (site-packages/onnxruntime/capi/), or run through `scripts/just`, which sets it after `scripts/just setup`";

/// Only a successfully built environment is kept, so setting ORT_DYLIB_PATH after a failure still works.
static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// The ONNX Runtime library named by `ORT_DYLIB_PATH`.
///
/// # Errors
/// `Runtime` when the variable is unset or names no file, saying how to fix it.
pub fn runtime_path() -> Result<PathBuf, InferError> {
    match std::env::var_os(DYLIB_VAR) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            if path.is_file() {
                Ok(path)
            } else {
                Err(InferError::Runtime(format!("{DYLIB_VAR}={} is not a file; {HOW_TO_FIX}", path.display())))
            }
        }
        _ => Err(InferError::Runtime(format!("{DYLIB_VAR} is not set; {HOW_TO_FIX}"))),
    }
}

/// The process-wide ONNX Runtime environment, loading the library on first use.
fn environment() -> Result<Environment, InferError> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(environment) = slot.as_ref() {
        return Ok(environment.clone());
    }
    let path = runtime_path()?;
    let environment = ort::init_from(&path)
        .map_err(|e| InferError::Runtime(format!("{e}; {HOW_TO_FIX}")))?
        .with_name("apex-infer")
        .build()
        .map_err(|e| InferError::Runtime(format!("creating the environment: {e}")))?;
    *slot = Some(environment.clone());
    Ok(environment)
}

/// A dense `f32` tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// One ONNX model with a single `f32` input and a single `f32` output, run by ONNX Runtime on one CPU thread.
#[derive(Debug)]
pub struct OnnxModel {
    name: String,
    session: Session,
    input_name: String,
    input_shape: Vec<i64>,
    output_name: String,
    output_shape: Vec<i64>,
    features: Option<Vec<String>>,
}

/// The ONNX metadata key under which `apexctl export` records a network's input features in order (a JSON list): an
/// ONNX input is one tensor, so without it the order of its columns lives only in the manifest, where an edit goes
/// unnoticed.
pub const FEATURES_METADATA: &str = "apex.features";

/// Maps an `ort` error (of any builder stage) to `Onnx` naming the model.
fn onnx_error<R>(model: &str) -> impl Fn(ort::Error<R>) -> InferError + '_ {
    move |e| InferError::Onnx { model: model.to_owned(), message: e.to_string() }
}

/// The element type and declared shape (-1 = dynamic) of a session input or output.
fn float_shape(model: &str, what: &str, dtype: &ValueType) -> Result<Vec<i64>, InferError> {
    match dtype {
        ValueType::Tensor { ty: ort::value::TensorElementType::Float32, shape, .. } => Ok(shape.to_vec()),
        other => Err(InferError::Model {
            model: model.to_owned(),
            message: format!("{what} must be a float32 tensor, found {other}"),
        }),
    }
}

impl OnnxModel {
    /// Reads and loads the ONNX file at `path`.
    ///
    /// # Errors
    /// `Io` when the file cannot be read; as [`OnnxModel::from_bytes`].
    pub fn load(name: &str, path: &Path) -> Result<OnnxModel, InferError> {
        let bytes = std::fs::read(path).map_err(|source| InferError::Io { path: path.to_owned(), source })?;
        OnnxModel::from_bytes(name, &bytes)
    }

    /// Loads an ONNX model from its bytes (loading ONNX Runtime first if needed).
    ///
    /// # Errors
    /// `Runtime` when ONNX Runtime cannot be loaded; `Onnx` when it rejects the model; `Model` when the model does not
    /// have exactly one float32 input and one float32 output.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<OnnxModel, InferError> {
        let environment = environment()?;
        // One thread per session: a single row is far too small to split, and the engine runs several models.
        let session = Session::builder(&environment)
            .map_err(onnx_error(name))?
            .with_intra_threads(1)
            .map_err(onnx_error(name))?
            .with_inter_threads(1)
            .map_err(onnx_error(name))?
            .commit_from_memory(bytes)
            .map_err(onnx_error(name))?;
        let model_error = |message: String| InferError::Model { model: name.to_owned(), message };
        let ([input], [output]) = (session.inputs(), session.outputs()) else {
            return Err(model_error(format!(
                "expected one input and one output, found {} input(s) and {} output(s)",
                session.inputs().len(),
                session.outputs().len()
            )));
        };
        let (input_name, output_name) = (input.name().to_owned(), output.name().to_owned());
        let input_shape = float_shape(name, "the input", input.dtype())?;
        let output_shape = float_shape(name, "the output", output.dtype())?;
        let features = match session.metadata().map_err(onnx_error(name))?.custom(FEATURES_METADATA) {
            Some(text) => Some(serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
                model_error(format!("its {FEATURES_METADATA} metadata is not a JSON list of names: {e}"))
            })?),
            None => None,
        };
        Ok(OnnxModel { name: name.to_owned(), session, input_name, input_shape, output_name, output_shape, features })
    }

    /// The input features in order, as recorded in the file at export (`None`: not recorded, an older export).
    pub fn features(&self) -> Option<&[String]> {
        self.features.as_deref()
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The input tensor's name.
    pub fn input_name(&self) -> &str {
        &self.input_name
    }

    /// The input's declared shape; -1 marks a dynamic axis.
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// The output tensor's name.
    pub fn output_name(&self) -> &str {
        &self.output_name
    }

    /// The output's declared shape; -1 marks a dynamic axis.
    pub fn output_shape(&self) -> &[i64] {
        &self.output_shape
    }

    /// Runs the model once on `data` of `shape` (row-major) and returns its output.
    ///
    /// # Errors
    /// `Shape` when `data` does not fill `shape`; `Onnx` when ONNX Runtime rejects the input or fails.
    pub fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<Tensor, InferError> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(InferError::Shape(format!(
                "model {:?}: shape {shape:?} holds {} values, got {}",
                self.name,
                shape.iter().product::<usize>(),
                data.len()
            )));
        }
        let onnx = onnx_error(&self.name);
        let input = TensorRef::from_array_view((shape.to_vec(), data)).map_err(&onnx)?;
        let outputs = self.session.run(ort::inputs![input]).map_err(&onnx)?;
        let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(&onnx)?;
        let shape = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
        Ok(Tensor { shape, data: data.to_vec() })
    }
}

/// An ONNX model as a [`Policy`]: rows are fed as `[1, features]` (window 1) or as the last `window` rows
/// `[1, window, features]` (sequence models such as a GRU); the output `[1, k]` is the decision.
#[derive(Debug)]
pub struct OnnxPolicy {
    model: OnnxModel,
    features: Vec<String>,
    window: usize,
    sequence: bool,
    outputs: usize,
    /// The last `window` rows as f32, oldest first.
    history: Vec<f32>,
    seen: usize,
}

impl OnnxPolicy {
    /// Wraps `model` for rows of `features`, checking its declared input and output shapes against them and `window`.
    ///
    /// # Errors
    /// `Model` when the input is not `[batch, features]` (window 1) or `[batch, window, features]`, or the output is
    /// not `[batch, k]` with a fixed `k`.
    pub fn new(model: OnnxModel, features: Vec<String>, window: usize) -> Result<OnnxPolicy, InferError> {
        let name = model.name().to_owned();
        let fail = |message: String| Err(InferError::Model { model: name.clone(), message });
        let n = features.len() as i64;
        let fits = |declared: i64, wanted: i64| declared == wanted || declared < 0;
        let sequence = match *model.input_shape() {
            [_, f] if window == 1 && fits(f, n) => false,
            [_, w, f] if window >= 1 && fits(w, window as i64) && fits(f, n) => true,
            ref shape => {
                let wanted = if window == 1 {
                    format!("[batch, {n}] or [batch, 1, {n}]")
                } else {
                    format!("[batch, {window}, {n}]")
                };
                return fail(format!(
                    "input {:?} has shape {shape:?}; {n} features with window {window} need {wanted}",
                    model.input_name()
                ));
            }
        };
        let outputs = match *model.output_shape() {
            [_, k] if k > 0 => k as usize,
            ref shape => {
                return fail(format!(
                    "output {:?} has shape {shape:?}; expected [batch, k] with a fixed k",
                    model.output_name()
                ));
            }
        };
        let history = vec![0.0; window * features.len()];
        Ok(OnnxPolicy { model, features, window, sequence, outputs, history, seen: 0 })
    }

    /// Rows per input (1 for a model over the current row).
    pub fn window(&self) -> usize {
        self.window
    }

    /// The underlying model.
    pub fn model(&self) -> &OnnxModel {
        &self.model
    }
}

impl Policy for OnnxPolicy {
    fn name(&self) -> &str {
        self.model.name()
    }

    fn features(&self) -> &[String] {
        &self.features
    }

    fn outputs(&self) -> usize {
        self.outputs
    }

    fn ready(&self) -> bool {
        self.seen >= self.window
    }

    fn decide(&mut self, row: &[f64]) -> Result<Vec<f64>, InferError> {
        let n = self.features.len();
        check_row(self.model.name(), n, row)?;
        self.history.copy_within(n.., 0);
        let newest = self.history.len() - n;
        for (slot, &value) in self.history[newest..].iter_mut().zip(row) {
            // ONNX models take f32; the narrowing is the documented contract of the exported models.
            *slot = value as f32;
        }
        self.seen = self.seen.saturating_add(1);
        if !self.ready() {
            return Ok(vec![f64::NAN; self.outputs]);
        }
        let output = if self.sequence {
            self.model.run(&[1, self.window, n], &self.history)?
        } else {
            self.model.run(&[1, n], &self.history)?
        };
        if output.data.len() != self.outputs {
            return Err(InferError::Model {
                model: self.model.name().to_owned(),
                message: format!("returned {} values for one row, expected {}", output.data.len(), self.outputs),
            });
        }
        Ok(output.data.iter().map(|&v| f64::from(v)).collect())
    }

    fn reset(&mut self) {
        self.history.fill(0.0);
        self.seen = 0;
    }
}
