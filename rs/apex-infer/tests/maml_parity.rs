//! The Rust MAML inner loop against PyTorch's: on the fixtures `scripts/make_maml_fixture.py` wrote (MLPs exported
//! to ONNX, support sets, and what `apexctl.forge.maml.adapt` made of them), the weights read from the ONNX file and
//! adapted in Rust equal PyTorch's adapted weights, and the adapted networks give the same outputs.

use std::path::PathBuf;

use apex_infer::maml::{Activation, InnerLoop, Mlp};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/maml")
}

fn floats(value: &Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
}

fn matrix(value: &Value) -> Vec<Vec<f64>> {
    value.as_array().unwrap().iter().map(floats).collect()
}

#[test]
fn rust_adaptation_equals_pytorch() {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 2);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let activation = if case["activation"] == "relu" { Activation::Relu } else { Activation::Tanh };
        let layers = case["hidden"].as_array().unwrap().len() + 1;
        let mlp = Mlp::from_onnx(&fixtures().join(case["file"].as_str().unwrap()), name, layers, activation).unwrap();
        assert_eq!(mlp.norm.is_some(), case["standardize"].as_bool().unwrap(), "{name}");
        let rows = matrix(&case["support_x"]);
        let targets: Vec<[f64; 2]> = matrix(&case["support_y"]).iter().map(|t| [t[0], t[1]]).collect();
        let inner = InnerLoop {
            steps: case["steps"].as_u64().unwrap() as usize,
            lr: case["lr"].as_f64().unwrap(),
            size_weight: case["size_weight"].as_f64().unwrap(),
        };
        let before = mlp.loss_and_gradient(&rows, &targets, inner.size_weight).0;
        assert!((before - case["loss_before"].as_f64().unwrap()).abs() < 1e-5, "{name}: loss before {before}");
        let adapted = mlp.adapt(&rows, &targets, &inner);
        let after = adapted.loss_and_gradient(&rows, &targets, inner.size_weight).0;
        assert!((after - case["loss_after"].as_f64().unwrap()).abs() < 1e-5, "{name}: loss after {after}");
        assert!(after < before, "{name}: adaptation lowers the support loss");
        for (k, layer) in adapted.layers.iter().enumerate() {
            let expected_w = floats(&case["adapted"][format!("body.{}.weight", 2 * k)]);
            let expected_b = floats(&case["adapted"][format!("body.{}.bias", 2 * k)]);
            for (got, want) in layer.weight.iter().zip(&expected_w).chain(layer.bias.iter().zip(&expected_b)) {
                assert!((got - want).abs() < 2e-6, "{name}: layer {k}: {got} vs PyTorch {want}");
            }
        }
        for (row, want) in matrix(&case["query"]).iter().zip(matrix(&case["outputs"])) {
            let got = adapted.forward(row);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{name}: output {g} vs PyTorch {w}");
            }
        }
    }
}
