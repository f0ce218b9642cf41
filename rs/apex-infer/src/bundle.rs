//! The model bundle `apexctl export` writes and the live engine loads: `manifest.json` plus GP and ONNX files,
//! verified (schema, version, SHA-256 of every file, feature order) before any model runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use apex_features::FeatureOptions;
use apex_gp::Limits;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{GpPolicy, InferError, OnnxModel, OnnxPolicy, Policy};

/// The `schema` field of a bundle manifest.
pub const SCHEMA: &str = "apex.bundle";
/// The manifest version this build writes and reads (older ones too, once there are any).
pub const VERSION: u64 = 1;
/// The manifest's file name inside the bundle folder.
pub const MANIFEST: &str = "manifest.json";

/// The bundle's `manifest.json` (its JSON Schema, [`json_schema`], is derived from this type).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "apex.bundle manifest",
    description = "manifest.json of a model bundle written by `apexctl export` and loaded by the live engine"
)]
pub struct Manifest {
    /// Always [`SCHEMA`].
    #[schemars(extend("const" = SCHEMA))]
    pub schema: String,
    /// The manifest version, at most [`VERSION`].
    #[schemars(range(min = 1, max = VERSION))]
    pub version: u64,
    /// The instrument the bundle trades, e.g. "BTCUSDT".
    pub symbol: String,
    /// The model slot it fills, e.g. "a".
    pub slot: String,
    /// The command and apexctl version that wrote it.
    pub created_by: CreatedBy,
    /// The feature row the engine must supply, in order; every model reads a subset of it.
    #[schemars(with = "Names")]
    pub features: Vec<String>,
    /// The models, each reading its own features from the row.
    #[schemars(length(min = 1))]
    pub models: Vec<ModelEntry>,
    /// SHA-256 (lowercase hex) of every file in the folder besides the manifest, by file name.
    #[schemars(with = "BTreeMap<String, Sha256Hex>")]
    pub files: BTreeMap<String, String>,
    /// SHA-256 of the data the models were trained on, by path.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Sha256Hex>")]
    pub training_data: BTreeMap<String, String>,
    /// The bars the models learned from: absent in bundles of an apexctl that did not record them, which the engine
    /// takes for its own bar and the default feature options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bars: Option<BarSpec>,
}

/// The bars of the features table a bundle's models were evolved or trained on: the engine must compute its rows
/// on bars of the same length with the same options, or a feature such as `rv` means something else live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BarSpec {
    /// The bar length in seconds (60 for `apexctl features --grain 1m`).
    #[schemars(range(min = 1, max = 86_400))]
    pub bar_seconds: u64,
    /// The table's `--rv-bars`, `--vmd-modes` and `--vmd-window`.
    #[schemars(schema_with = "feature_options_schema")]
    pub options: FeatureOptions,
}

impl BarSpec {
    /// The bars as a person reads them: `5m (rv_bars 30, vmd_modes 3, vmd_window 64)`.
    #[must_use]
    pub fn describe(&self) -> String {
        let seconds = i64::try_from(self.bar_seconds).unwrap_or(i64::MAX);
        let options = &self.options;
        format!(
            "{} bars (rv_bars {}, vmd_modes {}, vmd_window {})",
            apex_features::duration_label(seconds.saturating_mul(apex_features::SECOND)),
            options.rv_bars,
            options.vmd_modes,
            options.vmd_window
        )
    }

    /// Reads a `bars` record (JSON text) and checks it for models reading `features`: what `apexctl export` checks
    /// of the records it copies into a manifest, and the manifest's own check.
    ///
    /// # Errors
    /// A message starting `"bars": ` naming what is wrong.
    pub fn from_json(text: &str, features: &[String]) -> Result<BarSpec, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("\"bars\": {e}"))?;
        BarSpec::check_form(&value)?;
        let bars: BarSpec = serde_json::from_value(value).map_err(|e| format!("\"bars\": {e}"))?;
        bars.check(features)?;
        Ok(bars)
    }

    /// Refuses a record that is not a JSON object, or whose `options` is not one: serde would read a struct from an
    /// array of its fields in order (`[60, {...}]`), a form no writer uses and no reader can check by name.
    fn check_form(value: &Value) -> Result<(), String> {
        let kind = |v: &Value| match v {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Object(_) => "an object",
        };
        let Some(record) = value.as_object() else {
            return Err(format!("\"bars\": expected an object {{\"bar_seconds\", \"options\"}}, got {}", kind(value)));
        };
        match record.get("options") {
            Some(options) if !options.is_object() => {
                Err(format!("\"bars\": options: expected an object of feature options, got {}", kind(options)))
            }
            _ => Ok(()),
        }
    }

    /// Checks the record, and that `features` are columns of features made on these bars.
    ///
    /// # Errors
    /// A message starting `"bars": ` or naming the feature.
    pub fn check(&self, features: &[String]) -> Result<(), String> {
        self.validate()?;
        if let Some(feature) = self.missing_feature(features) {
            return Err(format!(
                "feature {feature:?} is not a column of features made with vmd_modes {} (\"bars\"): the models \
                 learned from other features than this record says",
                self.options.vmd_modes
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=86_400).contains(&self.bar_seconds) || 86_400 % self.bar_seconds != 0 {
            return Err(format!(
                "\"bars\": bar_seconds must be a whole number of seconds dividing a day (the engine's bars), got {}",
                self.bar_seconds
            ));
        }
        self.options.validate().map_err(|e| format!("\"bars\": options: {e}"))
    }

    /// A feature of `features` these bars do not have: a VMD mode `vmd_k` beyond `vmd_modes`.
    fn missing_feature<'a>(&self, features: &'a [String]) -> Option<&'a String> {
        features.iter().find(|f| {
            f.strip_prefix("vmd_")
                .and_then(|k| k.parse::<usize>().ok())
                .is_some_and(|k| k == 0 || k > self.options.vmd_modes)
        })
    }
}

/// The schema of [`FeatureOptions`], from its parameter table (bounds, defaults, docs).
fn feature_options_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = apex_core::params::json_schema("", "", "", FeatureOptions::PARAMS);
    let object = schema.as_object_mut().expect("a parameter schema is an object");
    for key in ["$schema", "$id", "title"] {
        object.remove(key);
    }
    object.insert("description".to_owned(), Value::from("the features table's bar-feature options"));
    schemars::Schema::try_from(schema).expect("a parameter schema is an object")
}

/// Lowercase hex SHA-256 (the schema of a hash; the manifest holds it as a `String`).
#[derive(JsonSchema)]
#[allow(dead_code)] // a schema only
struct Sha256Hex(#[schemars(regex(pattern = r"^[0-9a-f]{64}$"))] String);

/// Feature names: non-empty, each once (the schema of a feature list; the manifest holds a `Vec<String>`).
#[derive(JsonSchema)]
#[schemars(extend("uniqueItems" = true))]
#[allow(dead_code)] // a schema only
struct Names(#[schemars(inner(length(min = 1)))] Vec<String>);

/// What produced a bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatedBy {
    /// The command line.
    pub command: String,
    /// The apexctl version.
    pub apexctl_version: String,
}

/// How a model file is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// A GP tree document (`apex.gp_tree`), output: the signal in [-1, 1].
    Gp,
    /// An ONNX model with one float32 input and one float32 output.
    Onnx,
}

impl ModelKind {
    /// The name used in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Gp => "gp",
            ModelKind::Onnx => "onnx",
        }
    }
}

/// A named tensor of a model: shape with -1 for dynamic axes, and the meaning of each value of the last axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    #[schemars(length(min = 1))]
    pub name: String,
    /// -1 marks a dynamic axis (the batch).
    #[schemars(inner(range(min = -1)))]
    pub shape: Vec<i64>,
    /// What each value of the last axis means.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meaning: Vec<String>,
}

fn one() -> usize {
    1
}

/// One model of a bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Unique within the bundle: "signal", "maml", "iel".
    #[schemars(length(min = 1))]
    pub name: String,
    pub kind: ModelKind,
    /// The file name inside the bundle folder.
    #[schemars(length(min = 1))]
    pub file: String,
    /// The model's input features, in input order (a subset of the bundle's features).
    #[schemars(with = "Names")]
    pub features: Vec<String>,
    /// The ONNX opset the file was exported with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub opset: Option<u32>,
    /// Rows per input: 1 for a model over the current row, the window length for a sequence model.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub window: usize,
    #[serde(default)]
    pub inputs: Vec<TensorSpec>,
    #[serde(default)]
    pub outputs: Vec<TensorSpec>,
    /// Free-form provenance: rank and scores of a GP tree, task and metrics of a network.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub info: serde_json::Map<String, Value>,
}

impl ModelEntry {
    /// A GP tree model: `file` holds an `apex.gp_tree` document reading `features`.
    #[must_use]
    pub fn gp(name: &str, file: &str, features: Vec<String>) -> ModelEntry {
        ModelEntry {
            name: name.to_owned(),
            kind: ModelKind::Gp,
            file: file.to_owned(),
            features,
            opset: None,
            window: 1,
            inputs: vec![],
            outputs: vec![],
            info: serde_json::Map::new(),
        }
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']) && name != MANIFEST
}

impl Manifest {
    /// A manifest of this schema and version for `symbol`'s slot `slot`, written by `command`, with no models or
    /// files yet.
    #[must_use]
    pub fn new(symbol: &str, slot: &str, command: &str) -> Manifest {
        Manifest {
            schema: SCHEMA.to_owned(),
            version: VERSION,
            symbol: symbol.to_owned(),
            slot: slot.to_owned(),
            created_by: CreatedBy {
                command: command.to_owned(),
                apexctl_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            features: vec![],
            models: vec![],
            files: BTreeMap::new(),
            training_data: BTreeMap::new(),
            bars: None,
        }
    }

    /// A bundle of one GP model named `signal`: the file `signal.gp.json` holding `tree` (an `apex.gp_tree`
    /// document) that reads `features`.
    #[must_use]
    pub fn single_gp(symbol: &str, slot: &str, command: &str, features: Vec<String>, tree: &str) -> Manifest {
        let mut manifest = Manifest::new(symbol, slot, command);
        manifest.models.push(ModelEntry::gp("signal", "signal.gp.json", features.clone()));
        manifest.features = features;
        manifest.files.insert("signal.gp.json".to_owned(), sha256_hex(tree.as_bytes()));
        manifest
    }

    /// Parses and validates manifest text; `path` is only used in messages.
    ///
    /// # Errors
    /// `Manifest` for text that is not an `apex.bundle` document or is inconsistent (unknown model file, duplicate
    /// names, a model feature the bundle does not list, malformed hashes); `Version` for a newer version.
    pub fn from_json(text: &str, path: &Path) -> Result<Manifest, InferError> {
        let fail = |message: String| InferError::Manifest { path: path.to_owned(), message };
        let doc: Value = serde_json::from_str(text).map_err(|e| fail(format!("not valid JSON: {e}")))?;
        let object = doc.as_object().ok_or_else(|| fail("the manifest must be a JSON object".into()))?;
        if object.get("schema").and_then(Value::as_str) != Some(SCHEMA) {
            // The value as JSON text (`"apex.dsg"`), never Rust's debug form of it.
            let found = object.get("schema").map_or_else(|| "no \"schema\" field".to_owned(), Value::to_string);
            return Err(fail(format!("expected \"schema\": \"{SCHEMA}\", found {found} (not a bundle manifest)")));
        }
        match object.get("version").and_then(Value::as_u64) {
            Some(v) if (1..=VERSION).contains(&v) => {}
            Some(v) if v > VERSION => {
                return Err(InferError::Version { path: path.to_owned(), found: v, supported: VERSION });
            }
            _ => return Err(fail(format!("\"version\" must be a whole number 1..={VERSION}"))),
        }
        if let Some(bars) = object.get("bars").filter(|b| !b.is_null()) {
            BarSpec::check_form(bars).map_err(fail)?;
        }
        let manifest: Manifest = serde_json::from_value(doc).map_err(|e| fail(e.to_string()))?;
        manifest.validate().map_err(fail)?;
        Ok(manifest)
    }

    /// The manifest as pretty JSON text (what `apexctl export` writes).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest serializes") + "\n"
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        if let Some(dup) = self.features.iter().find(|f| !seen.insert(f.as_str())) {
            return Err(format!("feature {dup:?} is listed twice in \"features\""));
        }
        for (file, hash) in &self.files {
            if !is_plain_file_name(file) {
                return Err(format!("\"files\": {file:?} is not a plain file name inside the bundle"));
            }
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(format!("\"files\": the SHA-256 of {file:?} must be 64 lowercase hex digits"));
            }
        }
        if let Some(bars) = &self.bars {
            bars.check(&self.features)?;
        }
        if self.models.is_empty() {
            return Err("\"models\" is empty: a bundle holds at least one model".into());
        }
        let mut names = BTreeSet::new();
        let mut files = BTreeSet::new();
        for (i, model) in self.models.iter().enumerate() {
            let at = format!("models[{i}] ({:?})", model.name);
            if model.name.is_empty() || !names.insert(model.name.as_str()) {
                return Err(format!("{at}: model names must be non-empty and unique"));
            }
            if !files.insert(model.file.as_str()) {
                return Err(format!("{at}: file {:?} is used by two models", model.file));
            }
            if !self.files.contains_key(&model.file) {
                return Err(format!("{at}: file {:?} is not listed in \"files\"", model.file));
            }
            let mut own = BTreeSet::new();
            for feature in &model.features {
                if !own.insert(feature.as_str()) {
                    return Err(format!("{at}: feature {feature:?} is listed twice"));
                }
                if !self.features.contains(feature) {
                    return Err(format!("{at}: feature {feature:?} is not in the bundle's \"features\""));
                }
            }
            if model.window == 0 {
                return Err(format!("{at}: \"window\" must be at least 1"));
            }
            if model.kind == ModelKind::Gp && model.window != 1 {
                return Err(format!("{at}: a GP tree keeps its own history; \"window\" must be 1"));
            }
            if model.kind == ModelKind::Onnx && (model.inputs.len() != 1 || model.outputs.len() != 1) {
                return Err(format!("{at}: an ONNX model declares exactly one input and one output"));
            }
        }
        Ok(())
    }
}

/// Checks the bundle's feature row against the features the engine computes, position by position.
fn check_features(bundle: &[String], engine: &[String]) -> Result<(), InferError> {
    for i in 0..bundle.len().max(engine.len()) {
        let message = match (bundle.get(i), engine.get(i)) {
            (Some(b), Some(e)) if b == e => continue,
            (Some(b), Some(e)) => {
                let elsewhere = engine.iter().position(|f| f == b).map_or_else(
                    || " (the engine does not compute it)".to_owned(),
                    |j| format!(" (the engine has it at position {j})"),
                );
                format!("position {i}: the bundle expects {b:?}, the engine computes {e:?}{elsewhere}")
            }
            (Some(b), None) => {
                format!("position {i}: the bundle expects {b:?}, the engine computes only {} features", engine.len())
            }
            (None, Some(e)) => {
                format!("position {i}: the engine computes {e:?}, the bundle expects only {} features", bundle.len())
            }
            (None, None) => unreachable!("i is below the longer length"),
        };
        return Err(InferError::Features(message));
    }
    Ok(())
}

/// A loaded model of a bundle: its manifest entry, its policy, and where its features sit in the bundle's row.
pub struct BundleModel {
    entry: ModelEntry,
    policy: Box<dyn Policy>,
    columns: Vec<usize>,
    row: Vec<f64>,
}

impl std::fmt::Debug for BundleModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleModel").field("entry", &self.entry).field("columns", &self.columns).finish()
    }
}

impl BundleModel {
    /// The manifest entry.
    pub fn entry(&self) -> &ModelEntry {
        &self.entry
    }

    /// The policy, fed rows in its own feature order.
    pub fn policy_mut(&mut self) -> &mut dyn Policy {
        self.policy.as_mut()
    }

    /// The policy (read-only).
    pub fn policy(&self) -> &dyn Policy {
        self.policy.as_ref()
    }

    /// Decides on one row of the bundle's features (in [`Manifest::features`] order), picking this model's inputs.
    ///
    /// # Errors
    /// `Shape` when the row is not one value per bundle feature; as [`Policy::decide`].
    pub fn decide(&mut self, bundle_row: &[f64]) -> Result<Vec<f64>, InferError> {
        let width = self.columns.iter().max().map_or(0, |&c| c + 1);
        if bundle_row.len() < width {
            return Err(InferError::Shape(format!(
                "model {:?}: the bundle row has {} values, too few for its features",
                self.entry.name,
                bundle_row.len()
            )));
        }
        for (value, &column) in self.row.iter_mut().zip(&self.columns) {
            *value = bundle_row[column];
        }
        self.policy.decide(&self.row)
    }
}

/// What [`Bundle::check`] verified for one model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelCheck {
    pub name: String,
    pub kind: ModelKind,
    pub file: String,
    pub features: usize,
    pub window: usize,
    pub outputs: usize,
    /// Sample rows run through the policy.
    pub rows: usize,
    /// The decision on the last sample row.
    pub last_output: Vec<f64>,
}

/// What [`Bundle::check`] verified.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    pub dir: PathBuf,
    pub symbol: String,
    pub slot: String,
    pub version: u64,
    pub features: Vec<String>,
    /// Every file verified, with its SHA-256.
    pub files: BTreeMap<String, String>,
    pub models: Vec<ModelCheck>,
}

/// A verified, loaded bundle.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
    models: Vec<BundleModel>,
}

impl Bundle {
    /// Loads the bundle in `dir`: reads and validates the manifest, checks every file's SHA-256 (none missing, none
    /// extra), checks the bundle's feature row against `engine_features` when given, and loads every model.
    ///
    /// # Errors
    /// `Io` (no manifest), `NotRegular` (a symlink), `Manifest`, `Version`, `MissingFile`, `ExtraFile`, `Hash`,
    /// `Features`, then the load errors of each model (`Gp`, `Runtime`, `Onnx`, `Model`) — the first problem found,
    /// in that order.
    pub fn load(dir: &Path, engine_features: Option<&[String]>) -> Result<Bundle, InferError> {
        let manifest_path = dir.join(MANIFEST);
        regular_file(dir, MANIFEST)?;
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|source| InferError::Io { path: manifest_path.clone(), source })?;
        let manifest = Manifest::from_json(&text, &manifest_path)?;
        let contents = read_verified(dir, &manifest)?;
        if let Some(engine) = engine_features {
            check_features(&manifest.features, engine)?;
        }
        let models = manifest
            .models
            .iter()
            .map(|entry| load_model(entry, &manifest.features, &contents[&entry.file]))
            .collect::<Result<_, _>>()?;
        Ok(Bundle { dir: dir.to_owned(), manifest, models })
    }

    /// The bundle folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The feature row the engine supplies, in order.
    pub fn features(&self) -> &[String] {
        &self.manifest.features
    }

    /// The loaded models, in manifest order.
    pub fn models(&self) -> &[BundleModel] {
        &self.models
    }

    /// The model named `name`.
    ///
    /// # Errors
    /// `UnknownModel` listing the bundle's models.
    pub fn model_mut(&mut self, name: &str) -> Result<&mut BundleModel, InferError> {
        let available = self.models.iter().map(|m| m.entry.name.as_str()).collect::<Vec<_>>().join(", ");
        self.models
            .iter_mut()
            .find(|m| m.entry.name == name)
            .ok_or_else(|| InferError::UnknownModel { name: name.to_owned(), available })
    }

    /// Resets model `name` and streams `rows` (row-major, each one value per bundle feature) through it; returns
    /// the decisions row-major (`rows x outputs`), NaN rows while a sequence model is not ready.
    ///
    /// # Errors
    /// `UnknownModel`; `Shape` when `rows` is not a whole number of bundle rows; as [`Policy::decide`].
    pub fn stream(&mut self, name: &str, rows: &[f64]) -> Result<Vec<f64>, InferError> {
        let width = self.check_rows(rows)?;
        let model = self.model_mut(name)?;
        model.policy.reset();
        let mut out = Vec::with_capacity(rows.len() / width.max(1) * model.policy.outputs());
        for row in rows.chunks_exact(width) {
            out.extend(model.decide(row)?);
        }
        model.policy.reset();
        Ok(out)
    }

    /// Resets model `name`, streams `rows` through it and returns the wall time of each decision in nanoseconds
    /// (the latency benchmark; the first `window - 1` rows of a sequence model only fill the window).
    ///
    /// # Errors
    /// As [`Bundle::stream`].
    pub fn time_decisions(&mut self, name: &str, rows: &[f64]) -> Result<Vec<f64>, InferError> {
        let width = self.check_rows(rows)?;
        let model = self.model_mut(name)?;
        model.policy.reset();
        let mut times = Vec::with_capacity(rows.len() / width.max(1));
        for row in rows.chunks_exact(width) {
            let start = Instant::now();
            std::hint::black_box(model.decide(std::hint::black_box(row))?);
            times.push(start.elapsed().as_nanos() as f64);
        }
        model.policy.reset();
        Ok(times)
    }

    fn check_rows(&self, rows: &[f64]) -> Result<usize, InferError> {
        let width = self.manifest.features.len();
        if width == 0 || !rows.len().is_multiple_of(width) {
            return Err(InferError::Shape(format!(
                "{} values are not whole rows of the bundle's {width} features",
                rows.len()
            )));
        }
        Ok(width)
    }

    /// Runs sample rows through every model (deterministic values in [-1, 1], `window + 3` rows) and checks each
    /// ready decision has the declared number of finite values; every model is reset afterwards.
    ///
    /// # Errors
    /// `Model` naming the model and row with a wrong-sized or non-finite decision; as [`Policy::decide`].
    pub fn check(&mut self) -> Result<CheckReport, InferError> {
        let width = self.manifest.features.len();
        let mut checks = Vec::with_capacity(self.models.len());
        for model in &mut self.models {
            model.policy.reset();
            let rows = model.entry.window + 3;
            let mut last_output = Vec::new();
            for t in 0..rows {
                let row: Vec<f64> = (0..width).map(|j| ((t * 7 + j * 3) % 11) as f64 / 5.0 - 1.0).collect();
                let output = model.decide(&row)?;
                let name = &model.entry.name;
                if output.len() != model.policy.outputs() {
                    return Err(InferError::Model {
                        model: name.clone(),
                        message: format!(
                            "sample row {t}: {} outputs, declared {}",
                            output.len(),
                            model.policy.outputs()
                        ),
                    });
                }
                if model.policy.ready() && !output.iter().all(|v| v.is_finite()) {
                    return Err(InferError::Model {
                        model: name.clone(),
                        message: format!("sample row {t}: non-finite output {output:?}"),
                    });
                }
                last_output = output;
            }
            model.policy.reset();
            checks.push(ModelCheck {
                name: model.entry.name.clone(),
                kind: model.entry.kind,
                file: model.entry.file.clone(),
                features: model.entry.features.len(),
                window: model.entry.window,
                outputs: model.policy.outputs(),
                rows,
                last_output,
            });
        }
        Ok(CheckReport {
            dir: self.dir.clone(),
            symbol: self.manifest.symbol.clone(),
            slot: self.manifest.slot.clone(),
            version: self.manifest.version,
            features: self.manifest.features.clone(),
            files: self.manifest.files.clone(),
            models: checks,
        })
    }
}

/// Refuses a bundle entry that is a symbolic link or not a regular file: whatever it points to is outside what the
/// bundle's hashes vouch for when the bundle is copied or the target changes. A missing file passes (reported later).
fn regular_file(dir: &Path, file: &str) -> Result<(), InferError> {
    match std::fs::symlink_metadata(dir.join(file)) {
        Ok(meta) if meta.file_type().is_file() => Ok(()),
        Ok(_) => Err(InferError::NotRegular { dir: dir.to_owned(), file: file.to_owned() }),
        Err(_) => Ok(()),
    }
}

/// Reads every listed file once, checking its hash, and refuses files the manifest does not list.
fn read_verified(dir: &Path, manifest: &Manifest) -> Result<BTreeMap<String, Vec<u8>>, InferError> {
    let mut contents = BTreeMap::new();
    for (file, expected) in &manifest.files {
        let path = dir.join(file);
        regular_file(dir, file)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(InferError::MissingFile { dir: dir.to_owned(), file: file.clone() });
            }
            Err(source) => return Err(InferError::Io { path, source }),
        };
        let found = sha256_hex(&bytes);
        if &found != expected {
            return Err(InferError::Hash {
                dir: dir.to_owned(),
                file: file.clone(),
                expected: expected.clone(),
                found,
            });
        }
        contents.insert(file.clone(), bytes);
    }
    let listing = std::fs::read_dir(dir).map_err(|source| InferError::Io { path: dir.to_owned(), source })?;
    let mut present = BTreeSet::new();
    for entry in listing {
        let entry = entry.map_err(|source| InferError::Io { path: dir.to_owned(), source })?;
        present.insert(entry.file_name().to_string_lossy().into_owned());
    }
    if let Some(extra) = present.iter().find(|name| *name != MANIFEST && !manifest.files.contains_key(*name)) {
        return Err(InferError::ExtraFile { dir: dir.to_owned(), file: extra.clone() });
    }
    Ok(contents)
}

fn load_model(entry: &ModelEntry, bundle_features: &[String], bytes: &[u8]) -> Result<BundleModel, InferError> {
    let name = &entry.name;
    let model_error = |message: String| InferError::Model { model: name.clone(), message };
    let policy: Box<dyn Policy> = match entry.kind {
        ModelKind::Gp => {
            let text =
                std::str::from_utf8(bytes).map_err(|_| model_error(format!("{} is not UTF-8 text", entry.file)))?;
            Box::new(GpPolicy::from_json(name, text, &entry.features, &Limits::default())?)
        }
        ModelKind::Onnx => {
            let model = OnnxModel::from_bytes(name, bytes)?;
            let (input, output) = (&entry.inputs[0], &entry.outputs[0]);
            if model.input_name() != input.name || model.output_name() != output.name {
                return Err(model_error(format!(
                    "the manifest names input {:?} and output {:?}, the ONNX file has {:?} and {:?}",
                    input.name,
                    output.name,
                    model.input_name(),
                    model.output_name()
                )));
            }
            if model.input_shape() != input.shape.as_slice() {
                return Err(model_error(format!(
                    "the manifest declares input shape {:?}, the ONNX file has {:?} (-1 = dynamic)",
                    input.shape,
                    model.input_shape()
                )));
            }
            if let Some(recorded) = model.features()
                && recorded != entry.features.as_slice()
            {
                return Err(model_error(format!(
                    "the manifest lists its input features as {:?}, the ONNX file was exported with {recorded:?} \
                     (the manifest was edited: export the bundle again)",
                    entry.features
                )));
            }
            let policy = OnnxPolicy::new(model, entry.features.clone(), entry.window)?;
            if output.shape.last().copied() != Some(policy.outputs() as i64) {
                return Err(model_error(format!(
                    "the manifest declares output shape {:?}, the ONNX file gives {} values per row",
                    output.shape,
                    policy.outputs()
                )));
            }
            if !output.meaning.is_empty() && output.meaning.len() != policy.outputs() {
                return Err(model_error(format!(
                    "the manifest gives {} output meanings for {} outputs",
                    output.meaning.len(),
                    policy.outputs()
                )));
            }
            Box::new(policy)
        }
    };
    let columns = entry
        .features
        .iter()
        .map(|f| bundle_features.iter().position(|b| b == f).expect("validated: model features are bundle features"))
        .collect();
    Ok(BundleModel { entry: entry.clone(), row: vec![0.0; entry.features.len()], policy, columns })
}

/// The JSON Schema of `manifest.json`, derived from [`Manifest`] (the committed copy is
/// apexctl/schemas/bundle.schema.json; a test fails when it is stale).
///
/// # Panics
/// Never: a derived root schema is a JSON object.
#[must_use]
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(Manifest).to_value();
    let object = schema.as_object_mut().expect("a root schema is an object");
    object.insert("$id".to_owned(), Value::from("https://apexctl.dev/schemas/bundle.schema.json"));
    schema
}
