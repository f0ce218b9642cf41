//! Shared helpers of the integration tests: the committed fixtures, temporary bundle folders, the runtime check.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use apex_infer::{MANIFEST, Manifest, ModelEntry, ModelKind, TensorSpec, sha256_hex};
use serde_json::Value;

pub fn fixtures() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Fails loudly (never skips) when the ONNX Runtime library is not configured.
pub fn require_runtime() {
    if let Err(e) = apex_infer::runtime_path() {
        panic!("these tests run ONNX models and need the ONNX Runtime library: {e}");
    }
}

pub fn cases() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap()).unwrap()
}

pub fn rows() -> Vec<Vec<f64>> {
    cases()["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect())
        .collect()
}

pub fn features() -> Vec<String> {
    cases()["features"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

/// A folder removed when dropped.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh empty folder under the system temp dir (unique per process and call).
pub fn temp_dir(tag: &str) -> TempDir {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("apex-infer-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

pub const GP_TREE: &str = r#"{"schema": "apex.gp_tree", "version": 1, "features": ["clv", "ofi_l1"],
  "root": {"op": "tanh", "args": [{"op": "sub", "args": [{"op": "ts_mean", "args": [{"feature": "ofi_l1"}, {"window": 3}]},
  {"op": "mul", "args": [{"const": 0.5}, {"feature": "clv"}]}]}]}}"#;

/// A bundle of the GP tree, the MLP and the GRU written into a new folder; returns the folder.
pub fn write_bundle(tag: &str) -> TempDir {
    let dir = temp_dir(tag);
    let mut files = BTreeMap::new();
    for (name, bytes) in [
        ("signal.gp.json", GP_TREE.as_bytes().to_vec()),
        ("mlp.onnx", std::fs::read(fixtures().join("mlp.onnx")).unwrap()),
        ("gru.onnx", std::fs::read(fixtures().join("gru.onnx")).unwrap()),
    ] {
        std::fs::write(dir.join(name), &bytes).unwrap();
        files.insert(name.to_owned(), sha256_hex(&bytes));
    }
    let features = features();
    let onnx = |name: &str, window: usize| ModelEntry {
        name: name.to_owned(),
        kind: ModelKind::Onnx,
        file: format!("{name}.onnx"),
        features: features.clone(),
        opset: Some(17),
        window,
        inputs: vec![TensorSpec {
            name: "features".into(),
            shape: if window == 1 { vec![-1, 3] } else { vec![-1, window as i64, 3] },
            meaning: vec![],
        }],
        outputs: vec![TensorSpec {
            name: "output".into(),
            shape: vec![-1, 2],
            meaning: vec!["sign".into(), "size".into()],
        }],
        info: serde_json::Map::new(),
    };
    let manifest = Manifest {
        features: features.clone(),
        models: vec![
            ModelEntry::gp("signal", "signal.gp.json", vec!["ofi_l1".into(), "clv".into()]),
            onnx("mlp", 1),
            onnx("gru", 4),
        ],
        files,
        ..Manifest::new("BTCUSDT", "a", "test")
    };
    std::fs::write(dir.join(MANIFEST), manifest.to_json()).unwrap();
    dir
}
