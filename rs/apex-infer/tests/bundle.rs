//! Bundles: a good one loads and passes its check; every kind of damage is refused with a message naming it.

mod common;

use std::path::Path;

use apex_infer::{Bundle, InferError, MANIFEST, check_bundle, stream_bundle};
use common::{features, require_runtime, rows, temp_dir, write_bundle};

fn load(dir: &Path, engine: Option<&[String]>) -> Result<Bundle, InferError> {
    require_runtime();
    Bundle::load(dir, engine)
}

fn error(dir: &Path, engine: Option<&[String]>) -> String {
    load(dir, engine).expect_err("the bundle must be refused").to_string()
}

fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(MANIFEST);
    let mut doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

#[test]
fn a_good_bundle_loads_checks_and_streams() {
    let dir = write_bundle("good");
    let mut bundle = load(&dir, Some(&features())).unwrap();
    assert_eq!(bundle.models().len(), 3);
    let report = bundle.check().unwrap();
    assert_eq!(report.files.len(), 3);
    assert_eq!(
        report.models.iter().map(|m| (m.name.as_str(), m.outputs, m.rows)).collect::<Vec<_>>(),
        [("signal", 1, 4), ("mlp", 2, 4), ("gru", 2, 7)]
    );
    assert!(report.models.iter().all(|m| m.last_output.iter().all(|v| v.is_finite())));
    let flat: Vec<f64> = rows().into_iter().flatten().collect();
    let (gru, width) = stream_bundle(&dir, "gru", &flat).unwrap();
    assert_eq!((gru.len(), width), (rows().len() * 2, 2));
    assert!(gru[..6].iter().all(|v| v.is_nan()) && gru[6..].iter().all(|v| v.is_finite()));
    let signal = bundle.stream("signal", &flat).unwrap();
    assert!(signal.iter().all(|v| (-1.0..=1.0).contains(v)));
    let err = bundle.stream("nope", &flat).unwrap_err().to_string();
    assert!(err.contains("signal, mlp, gru"), "{err}");
    assert!(bundle.stream("mlp", &flat[..4]).is_err(), "a partial row is an error");
    assert_eq!(check_bundle(&dir, None).unwrap(), report);
}

#[test]
fn a_changed_file_is_a_hash_error_naming_it() {
    let dir = write_bundle("tampered");
    let mut bytes = std::fs::read(dir.join("mlp.onnx")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(dir.join("mlp.onnx"), bytes).unwrap();
    let err = error(&dir, None);
    assert!(err.contains("\"mlp.onnx\" has SHA-256") && err.contains("the file was changed"), "{err}");
}

#[test]
fn missing_and_extra_files_are_named() {
    let dir = write_bundle("missing");
    std::fs::remove_file(dir.join("gru.onnx")).unwrap();
    assert!(error(&dir, None).contains("\"gru.onnx\" is listed in manifest.json but missing"));
    let dir = write_bundle("extra");
    std::fs::write(dir.join("notes.txt"), "hello").unwrap();
    assert!(error(&dir, None).contains("\"notes.txt\" is not listed in manifest.json"));
}

#[test]
fn a_model_or_manifest_that_is_a_symlink_is_refused_even_with_the_right_hash() {
    // The link points at the very same bytes, so the hash matches: only the link itself is wrong.
    let elsewhere = temp_dir("symlink-targets");
    let dir = write_bundle("symlink");
    let outside = elsewhere.join("mlp.onnx");
    std::fs::rename(dir.join("mlp.onnx"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("mlp.onnx")).unwrap();
    let err = error(&dir, None);
    assert!(err.contains("\"mlp.onnx\" is a symbolic link or not a regular file"), "{err}");
    let dir = write_bundle("symlink-manifest");
    let outside = elsewhere.join(MANIFEST);
    std::fs::rename(dir.join(MANIFEST), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join(MANIFEST)).unwrap();
    assert!(error(&dir, None).contains("\"manifest.json\" is a symbolic link"));
}

#[test]
fn a_different_feature_order_is_an_error_naming_feature_and_position() {
    let dir = write_bundle("order");
    let mut engine = features();
    engine.swap(1, 2);
    let err = error(&dir, Some(&engine));
    assert!(
        err.contains("position 1: the bundle expects \"book_pressure\", the engine computes \"clv\" (the engine has it at position 2)"),
        "{err}"
    );
    let err = error(&dir, Some(&features()[..2]));
    assert!(err.contains("position 2: the bundle expects \"clv\", the engine computes only 2 features"), "{err}");
}

#[test]
fn newer_versions_and_bad_manifests_are_refused_clearly() {
    let dir = write_bundle("version");
    edit_manifest(&dir, |doc| doc["version"] = 2.into());
    assert!(error(&dir, None).contains("apex.bundle version 2 is newer than this build reads (1)"));
    let dir = write_bundle("schema");
    edit_manifest(&dir, |doc| doc["schema"] = "apex.gp_tree".into());
    assert!(error(&dir, None).contains("not a bundle manifest"));
    let dir = write_bundle("feature");
    edit_manifest(&dir, |doc| doc["models"][1]["features"][0] = "vpin".into());
    assert!(error(&dir, None).contains("models[1] (\"mlp\"): feature \"vpin\" is not in the bundle's \"features\""));
    let dir = write_bundle("unknown");
    edit_manifest(&dir, |doc| doc["modles"] = serde_json::json!([]));
    assert!(error(&dir, None).contains("unknown field `modles`"));
    let dir = write_bundle("names");
    edit_manifest(&dir, |doc| doc["models"][1]["outputs"][0]["name"] = "logits".into());
    assert!(error(&dir, None).contains("the manifest names input \"features\" and output \"logits\""));
    let dir = write_bundle("shape");
    edit_manifest(&dir, |doc| doc["models"][1]["inputs"][0]["shape"] = serde_json::json!([1, 3]));
    assert!(error(&dir, None).contains("the manifest declares input shape [1, 3], the ONNX file has [-1, 3]"));
    let dir = write_bundle("window");
    edit_manifest(&dir, |doc| doc["models"][2]["window"] = 3.into());
    assert!(error(&dir, None).contains("model \"gru\""));
    let dir = write_bundle("none");
    std::fs::remove_file(dir.join(MANIFEST)).unwrap();
    assert!(error(&dir, None).contains("manifest.json"));
}

#[test]
fn recorded_bars_are_read_and_bad_ones_are_named() {
    let dir = write_bundle("bars");
    assert_eq!(load(&dir, None).unwrap().manifest().bars, None, "a bundle without a record still loads");
    edit_manifest(&dir, |doc| {
        doc["bars"] = serde_json::json!({"bar_seconds": 300, "options": {"rv_bars": 10, "vmd_modes": 0}});
    });
    let bars = load(&dir, None).unwrap().manifest().bars.clone().unwrap();
    assert_eq!((bars.bar_seconds, bars.options.rv_bars, bars.options.vmd_window), (300, 10, 64));
    assert_eq!(bars.describe(), "5m bars (rv_bars 10, vmd_modes 0, vmd_window 64)");
    edit_manifest(&dir, |doc| doc["bars"]["options"]["rv_bars"] = 0.into());
    let message = error(&dir, None);
    assert!(message.contains("\"bars\": options: rv_bars must be in [1, 10000], got 0"), "{message}");
    edit_manifest(&dir, |doc| doc["bars"] = serde_json::json!({"bar_seconds": 0, "options": {}}));
    assert!(error(&dir, None).contains("bar_seconds must be a whole number of seconds dividing a day"));
    edit_manifest(&dir, |doc| doc["bars"] = serde_json::json!({"bar_seconds": 7, "options": {}}));
    assert!(error(&dir, None).contains("dividing a day (the engine's bars), got 7"));
    edit_manifest(&dir, |doc| {
        doc["bars"] = serde_json::json!({"bar_seconds": 60, "options": {"vmd_modes": 0}});
        doc["features"].as_array_mut().unwrap().push("vmd_1".into());
    });
    assert!(error(&dir, None).contains("feature \"vmd_1\" is not a column of features made with vmd_modes 0"));
    let features = ["vmd_3".to_owned()];
    let read = apex_infer::BarSpec::from_json(r#"{"bar_seconds": 300, "options": {"vmd_modes": 2}}"#, &features);
    assert!(read.unwrap_err().contains("\"vmd_3\" is not a column of features made with vmd_modes 2"));
    let read = apex_infer::BarSpec::from_json(r#"{"bar_seconds": "300", "options": {}}"#, &[]);
    assert!(read.unwrap_err().starts_with("\"bars\": invalid type: string \"300\""));
    let read = apex_infer::BarSpec::from_json(r#"{"bar_seconds": 300.0, "options": {}}"#, &[]);
    assert!(read.unwrap_err().starts_with("\"bars\": invalid type: floating point"));
    edit_manifest(&dir, |doc| doc["bars"] = serde_json::json!({"bar_seconds": 60, "options": {"rv": 3}}));
    assert!(error(&dir, None).contains("unknown field `rv`"));
    // serde alone would read a struct from an array of its fields in order; a record is read by name only.
    edit_manifest(&dir, |doc| doc["bars"] = serde_json::json!([60, {"rv_bars": 30}]));
    let message = error(&dir, None);
    assert!(message.contains("\"bars\": expected an object {\"bar_seconds\", \"options\"}, got an array"), "{message}");
    edit_manifest(&dir, |doc| doc["bars"] = serde_json::json!({"bar_seconds": 60, "options": [30, 3, 64]}));
    assert!(error(&dir, None).contains("\"bars\": options: expected an object of feature options, got an array"));
    let read = apex_infer::BarSpec::from_json("[60, {}]", &[]);
    assert_eq!(read.unwrap_err(), "\"bars\": expected an object {\"bar_seconds\", \"options\"}, got an array");
    edit_manifest(&dir, |doc| doc["bars"] = serde_json::Value::Null);
    assert_eq!(load(&dir, None).unwrap().manifest().bars, None, "null is no record");
}
