//! Parity on committed fixtures: ONNX models run through `ort` equal onnxruntime-in-Python (within 1e-5), and the
//! GP policy equals apex-gp's streaming evaluator exactly.

mod common;

use apex_gp::{Limits, Program, stream_columns};
use apex_infer::{GpPolicy, OnnxModel, OnnxPolicy, Policy};
use common::{GP_TREE, cases, features, fixtures, require_runtime, rows};

fn onnx_policy(name: &str) -> (OnnxPolicy, Vec<Option<Vec<f64>>>) {
    require_runtime();
    let case = &cases()["models"][name];
    let model = OnnxModel::load(name, &fixtures().join(case["file"].as_str().unwrap())).unwrap();
    let window = case["window"].as_u64().unwrap() as usize;
    let expected = case["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().map(|values| values.iter().map(|v| v.as_f64().unwrap()).collect()))
        .collect();
    (OnnxPolicy::new(model, features(), window).unwrap(), expected)
}

fn assert_parity(name: &str) {
    let (mut policy, expected) = onnx_policy(name);
    for pass in 0..2 {
        for (t, (row, want)) in rows().iter().zip(&expected).enumerate() {
            let got = policy.decide(row).unwrap();
            match want {
                None => {
                    assert!(!policy.ready(), "{name} row {t}: ready before its window is full");
                    assert!(got.iter().all(|v| v.is_nan()), "{name} row {t}: a not-ready decision is NaN, got {got:?}");
                }
                Some(want) => {
                    assert!(policy.ready());
                    assert_eq!(got.len(), want.len());
                    for (g, w) in got.iter().zip(want) {
                        assert!((g - w).abs() <= 1e-5, "{name} row {t} pass {pass}: rust {g} vs onnxruntime {w}");
                    }
                }
            }
        }
        policy.reset();
    }
}

#[test]
fn mlp_matches_onnxruntime_row_by_row() {
    assert_parity("mlp");
}

#[test]
fn gru_matches_onnxruntime_over_its_sliding_window() {
    assert_parity("gru");
}

#[test]
fn batch_run_matches_the_streaming_decisions() {
    let (_, expected) = onnx_policy("mlp");
    let mut model = OnnxModel::load("mlp", &fixtures().join("mlp.onnx")).unwrap();
    assert_eq!((model.input_name(), model.output_name()), ("features", "output"));
    assert_eq!(model.input_shape(), &[-1, 3]);
    let data: Vec<f32> = rows().iter().flatten().map(|&v| v as f32).collect();
    let out = model.run(&[rows().len(), 3], &data).unwrap();
    assert_eq!(out.shape, vec![rows().len(), 2]);
    for (t, want) in expected.iter().enumerate() {
        for (k, w) in want.as_ref().unwrap().iter().enumerate() {
            assert!((f64::from(out.data[t * 2 + k]) - w).abs() <= 1e-5);
        }
    }
    assert!(model.run(&[2, 3], &data[..5]).is_err(), "data that does not fill the shape is an error");
}

#[test]
fn wrong_row_length_and_wrong_window_are_errors() {
    let (mut policy, _) = onnx_policy("gru");
    let err = policy.decide(&[1.0, 2.0]).unwrap_err().to_string();
    assert!(err.contains("takes 3 feature value(s) per row, got 2"), "{err}");
    let model = OnnxModel::load("gru", &fixtures().join("gru.onnx")).unwrap();
    let err = OnnxPolicy::new(model, features(), 5).unwrap_err().to_string();
    assert!(err.contains("window 5"), "{err}");
    let model = OnnxModel::load("mlp", &fixtures().join("mlp.onnx")).unwrap();
    let err = OnnxPolicy::new(model, features()[..2].to_vec(), 1).unwrap_err().to_string();
    assert!(err.contains("2 features"), "{err}");
}

#[test]
fn gp_policy_equals_the_streaming_evaluator_exactly() {
    let names = ["ofi_l1", "clv"];
    let rows = rows();
    let columns: Vec<Vec<f64>> = vec![rows.iter().map(|r| r[0]).collect(), rows.iter().map(|r| r[2]).collect()];
    let slices: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    let program = Program::from_json(GP_TREE, &names, &Limits::default()).unwrap();
    let want = stream_columns(&program, &slices).unwrap();
    let mut policy = GpPolicy::from_json("signal", GP_TREE, &names, &Limits::default()).unwrap();
    assert_eq!(policy.features(), names);
    assert_eq!(policy.node_count(), 8);
    for _ in 0..2 {
        for (t, w) in want.iter().enumerate() {
            let got = policy.decide(&[rows[t][0], rows[t][2]]).unwrap();
            assert_eq!(got[0].to_bits(), w.to_bits(), "row {t}");
        }
        policy.reset();
    }
    let err = GpPolicy::from_json("signal", GP_TREE, &["ofi_l1"], &Limits::default()).unwrap_err().to_string();
    assert!(err.contains("model \"signal\"") && err.contains("clv"), "{err}");
}
