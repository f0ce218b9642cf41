//! Property tests: on random typed trees and random data with NaN, batch == streaming == the naive interpreter, bit for bit.

use apex_gp::{Limits, Node, Op, Program, StreamingEvaluator, Tree, Type, WINDOWS, batch, naive};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["a", "b", "c"];

fn leaf(ty: Type) -> BoxedStrategy<Node> {
    match ty {
        Type::Float => prop_oneof![
            3 => (0..NAMES.len()).prop_map(|i| Node::Feature(NAMES[i].to_owned())),
            1 => prop_oneof![-2.0..2.0f64, Just(0.0), Just(1.0)].prop_map(Node::Const),
        ]
        .boxed(),
        Type::Bool => any::<bool>().prop_map(Node::Bool).boxed(),
        Type::Window => {
            prop_oneof![(0..WINDOWS.len()).prop_map(|i| WINDOWS[i]), 1..8u32].prop_map(Node::Window).boxed()
        }
    }
}

/// A random well-typed tree of type `ty` and height at most `depth`.
fn node(ty: Type, depth: u32) -> BoxedStrategy<Node> {
    if depth == 0 || ty == Type::Window {
        return leaf(ty);
    }
    let ops: Vec<Op> = Op::ALL.iter().copied().filter(|op| op.ret() == ty).collect();
    let apply = proptest::sample::select(ops)
        .prop_flat_map(move |op| {
            let args: Vec<BoxedStrategy<Node>> = op.args().iter().map(|t| node(*t, depth - 1)).collect();
            args.prop_map(move |args| Node::Apply { op, args })
        })
        .boxed();
    prop_oneof![1 => leaf(ty), 3 => apply].boxed()
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -3.0..3.0f64,
        1 => Just(f64::NAN),
        1 => (-2..3i32).prop_map(f64::from),
        1 => Just(1e-13),
    ]
}

fn data() -> impl Strategy<Value = Vec<Vec<f64>>> {
    (0..70usize).prop_flat_map(|rows| proptest::collection::vec(proptest::collection::vec(value(), rows), NAMES.len()))
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn batch_streaming_and_naive_agree_exactly(root in node(Type::Float, 6), columns in data()) {
        let tree = Tree::new(root, &Limits::default()).unwrap();
        let program = Program::compile(&tree, &NAMES).unwrap();
        let cols: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        let rows = cols[0].len();
        let batched = batch::evaluate(&program, &cols).unwrap();
        let mut stream = StreamingEvaluator::new(&program);
        let streamed: Vec<f64> = (0..rows).map(|t| stream.push(&[cols[0][t], cols[1][t], cols[2][t]])).collect();
        let reference = naive::evaluate(&tree, &NAMES, &cols).unwrap();
        prop_assert_eq!(bits(&batched), bits(&streamed));
        prop_assert_eq!(bits(&batched), bits(&reference));
        prop_assert!(batched.iter().all(|v| (-1.0..=1.0).contains(v)));
        let again = Tree::from_json(&tree.to_json(), &Limits::default()).unwrap();
        prop_assert_eq!(again, tree);
    }
}

#[test]
fn many_trees_in_parallel_equal_one_at_a_time() {
    let trees = [
        r#"{"schema":"apex.gp_tree","version":1,"features":["a"],"root":{"op":"ts_zscore","args":[{"feature":"a"},{"window":5}]}}"#,
        r#"{"schema":"apex.gp_tree","version":1,"features":["b"],"root":{"op":"ema","args":[{"feature":"b"},{"window":3}]}}"#,
        r#"{"schema":"apex.gp_tree","version":1,"features":[],"root":{"const":0.5}}"#,
    ];
    let a: Vec<f64> = (0..50).map(|i| (f64::from(i) * 0.37).sin()).collect();
    let b: Vec<f64> = (0..50).map(|i| (f64::from(i) * 0.11).cos()).collect();
    let names = ["a", "b"];
    let cols = [a.as_slice(), b.as_slice()];
    let all = batch::evaluate_json(&trees, &names, &cols, &Limits::default()).unwrap();
    for (i, text) in trees.iter().enumerate() {
        let one = batch::evaluate(&Program::from_json(text, &names, &Limits::default()).unwrap(), &cols).unwrap();
        assert_eq!(&all[i * 50..(i + 1) * 50], one.as_slice());
    }
    assert!(all[100..].iter().all(|&v| v == 0.5));
    let bad = ["{}", trees[0]];
    let err = batch::evaluate_json(&bad, &["a", "b"], &cols, &Limits::default()).unwrap_err();
    assert!(err.to_string().starts_with("trees[0]: GP tree"), "{err}");
    let unknown = Program::from_json(trees[0], &["x"], &Limits::default()).unwrap_err();
    assert_eq!(unknown.to_string(), "GP tree at root.args[0]: unknown feature \"a\" (the data has: x)");
}

#[test]
fn documented_warm_up_and_protection_rules() {
    let x = [1.0, 3.0, f64::NAN, 2.0, 0.0];
    let run = |root: &str| {
        let text = format!(r#"{{"schema":"apex.gp_tree","version":1,"features":["x"],"root":{root}}}"#);
        batch::evaluate(&Program::from_json(&text, &["x"], &Limits::default()).unwrap(), &[&x]).unwrap()
    };
    let scaled = |op: &str, k: u32| {
        run(&format!(
            r#"{{"op":"mul","args":[{{"const":0.25}},{{"op":"{op}","args":[{{"feature":"x"}},{{"window":{k}}}]}}]}}"#
        ))
    };
    assert_eq!(scaled("ts_mean", 2), [0.25, 0.5, 0.0, 0.0, 0.25]);
    assert_eq!(scaled("lag", 1), [0.0, 0.25, 0.75, 0.0, 0.5]);
    assert_eq!(scaled("ts_max", 10), [0.25, 0.75, 0.0, 0.0, 0.0]);
    assert_eq!(scaled("ema", 3), [0.25, 0.5, 0.0, 0.5, 0.25]);
    assert_eq!(run(r#"{"op":"div","args":[{"feature":"x"},{"const":1e-13}]}"#), [0.0; 5]);
    assert_eq!(run(r#"{"op":"ts_rank","args":[{"feature":"x"},{"window":2}]}"#), [0.5, 1.0, 0.0, 0.0, 0.0]);
}
