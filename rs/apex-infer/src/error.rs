//! The error type of apex-infer: every way a bundle, a model or the rows handed to a policy can be unusable.

use std::path::PathBuf;

/// Why a bundle or model could not be loaded or run. Messages name the file, model, feature or position at fault.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The manifest is not a valid `apex.bundle` document.
    #[error("{path}: {message}")]
    Manifest { path: PathBuf, message: String },
    /// The manifest's version is newer than this build reads.
    #[error("{path}: apex.bundle version {found} is newer than this build reads ({supported}); upgrade apexctl")]
    Version { path: PathBuf, found: u64, supported: u64 },
    /// A file listed in the manifest is missing from the bundle folder.
    #[error("bundle {dir}: file {file:?} is listed in manifest.json but missing")]
    MissingFile { dir: PathBuf, file: String },
    /// A file in the bundle folder is not listed in the manifest.
    #[error("bundle {dir}: file {file:?} is not listed in manifest.json (remove it or re-export)")]
    ExtraFile { dir: PathBuf, file: String },
    /// A file of the bundle that is a symbolic link (it may point anywhere) or not a regular file.
    #[error("bundle {dir}: {file:?} is a symbolic link or not a regular file; a bundle holds its files itself")]
    NotRegular { dir: PathBuf, file: String },
    /// A file's SHA-256 differs from the manifest's.
    #[error("bundle {dir}: file {file:?} has SHA-256 {found}, manifest.json says {expected} (the file was changed)")]
    Hash { dir: PathBuf, file: String, expected: String, found: String },
    /// The bundle's feature order differs from the features the engine computes.
    #[error("feature order: {0}")]
    Features(String),
    /// A model that ONNX Runtime rejected or failed to run.
    #[error("model {model:?}: ONNX Runtime: {message}")]
    Onnx { model: String, message: String },
    /// A GP tree that failed to load or compile.
    #[error("model {model:?}: {source}")]
    Gp { model: String, source: apex_gp::GpError },
    /// A model whose tensors do not match what the manifest declares.
    #[error("model {model:?}: {message}")]
    Model { model: String, message: String },
    /// Rows or tensors of the wrong size handed to a model.
    #[error("shape: {0}")]
    Shape(String),
    /// A model named that the bundle does not have.
    #[error("no model named {name:?} in the bundle (it has: {available})")]
    UnknownModel { name: String, available: String },
}
