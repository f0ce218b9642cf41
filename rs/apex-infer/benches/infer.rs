//! Single-decision latency of the inference engine: a ~50-node GP tree and the fixture ONNX MLP and GRU, one row each.

use std::hint::black_box;
use std::path::Path;

use apex_gp::Limits;
use apex_infer::{GpPolicy, OnnxModel, OnnxPolicy, Policy};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const FEATURES: [&str; 3] = ["ofi_l1", "book_pressure", "clv"];

/// A full binary tree of `add`/`mul` whose leaves are alternately a feature and its rolling mean (47 nodes at depth 4).
fn tree(depth: u32, i: &mut usize) -> Value {
    if depth == 0 {
        *i += 1;
        let feature = json!({"feature": FEATURES[*i % FEATURES.len()]});
        if (*i).is_multiple_of(2) {
            return feature;
        }
        return json!({"op": "ts_mean", "args": [feature, {"window": 5 + (*i % 3) * 5}]});
    }
    let op = if depth.is_multiple_of(2) { "add" } else { "mul" };
    json!({"op": op, "args": [tree(depth - 1, i), tree(depth - 1, i)]})
}

fn rows(n: usize) -> Vec<[f64; 3]> {
    (0..n).map(|t| [(t as f64 * 0.37).sin(), (t as f64 * 0.11).cos(), ((t * 7) % 13) as f64 / 13.0 - 0.5]).collect()
}

fn decide_all(c: &mut Criterion, name: &str, policy: &mut dyn Policy) {
    let rows = rows(1024);
    let mut t = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            t = (t + 1) % rows.len();
            black_box(policy.decide(black_box(&rows[t])).expect("decides"))
        })
    });
}

fn bench(c: &mut Criterion) {
    let text =
        json!({"schema": "apex.gp_tree", "version": 1, "features": FEATURES, "root": tree(4, &mut 0)}).to_string();
    let mut gp = GpPolicy::from_json("signal", &text, &FEATURES, &Limits::default()).expect("a valid tree");
    decide_all(c, &format!("gp decide ({}-node tree)", gp.node_count()), &mut gp);

    if let Err(e) = apex_infer::runtime_path() {
        panic!("the ONNX benches need the ONNX Runtime library (run them through `scripts/just bench`): {e}");
    }
    let fixtures = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("tests/fixtures");
    let features: Vec<String> = FEATURES.iter().map(|f| (*f).to_owned()).collect();
    for (name, window) in [("mlp", 1), ("gru", 4)] {
        let model = OnnxModel::load(name, &fixtures.join(format!("{name}.onnx"))).expect("fixture loads");
        let mut policy = OnnxPolicy::new(model, features.clone(), window).expect("fixture fits");
        decide_all(c, &format!("onnx {name} decide (fixture, window {window})"), &mut policy);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
