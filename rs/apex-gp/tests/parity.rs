//! Property tests: on random typed trees and random data with NaN and infinities, batch (blocked, shared subtrees) ==
//! streaming == the naive interpreter, bit for bit.

use apex_gp::batch::Subtrees;
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
        // Windows around and beyond a block of rows (512) make the rolling state cross several blocks.
        Type::Window => prop_oneof![
            6 => (0..WINDOWS.len()).prop_map(|i| WINDOWS[i]),
            3 => 1..8u32,
            1 => prop_oneof![Just(255u32), Just(300), Just(511), Just(512), Just(513), Just(600)],
        ]
        .prop_map(Node::Window)
        .boxed(),
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
        12 => -3.0..3.0f64,
        2 => Just(f64::NAN),
        2 => (-2..3i32).prop_map(f64::from),
        2 => Just(1e-13),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
    ]
}

/// A column of `rows` random values, or one value repeated (a flat feature: zero deviations, ties in every rank).
fn column(rows: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![4 => proptest::collection::vec(value(), rows), 1 => value().prop_map(move |v| vec![v; rows])]
}

/// Columns of 0..70 rows (one block), or of up to 1,800 rows (several blocks of 512, with a partial last one).
fn data() -> impl Strategy<Value = Vec<Vec<f64>>> {
    prop_oneof![3 => 0..70usize, 1 => 200..1_800usize]
        .prop_flat_map(|rows| proptest::collection::vec(column(rows), NAMES.len()))
}

/// Trees that share subtrees the way a population after crossover does: the originals, copies, pairs joined by
/// an operation (both argument orders of commutative ones, `gt(a, b)` beside `lt(b, a)`), and each inside a rolling op.
fn population(parts: &[Node]) -> Vec<Node> {
    let apply = |op: Op, args: Vec<Node>| Node::Apply { op, args };
    let mut trees = parts.to_vec();
    for (i, a) in parts.iter().enumerate() {
        let b = &parts[(i + 1) % parts.len()];
        trees.push(a.clone());
        trees.push(apply(Op::Add, vec![a.clone(), b.clone()]));
        trees.push(apply(Op::Add, vec![b.clone(), a.clone()]));
        trees.push(apply(Op::Min, vec![b.clone(), a.clone()]));
        trees.push(apply(Op::Max, vec![a.clone(), b.clone()]));
        trees.push(apply(
            Op::IfThenElse,
            vec![apply(Op::Gt, vec![a.clone(), b.clone()]), a.clone(), apply(Op::Tanh, vec![b.clone()])],
        ));
        trees.push(apply(
            Op::IfThenElse,
            vec![apply(Op::Lt, vec![b.clone(), a.clone()]), apply(Op::Neg, vec![b.clone()]), a.clone()],
        ));
        trees.push(apply(Op::TsZscore, vec![apply(Op::Mul, vec![a.clone(), b.clone()]), Node::Window(5)]));
        trees.push(apply(Op::Mul, vec![b.clone(), apply(Op::Ema, vec![a.clone(), Node::Window(3)])]));
        // EMAs of several inputs side by side: the evaluator runs independent EMAs together, row by row.
        trees.push(apply(
            Op::Add,
            vec![apply(Op::Ema, vec![a.clone(), Node::Window(2)]), apply(Op::Ema, vec![b.clone(), Node::Window(7)])],
        ));
        trees.push(apply(Op::Ema, vec![apply(Op::Ema, vec![a.clone(), Node::Window(5)]), Node::Window(300)]));
    }
    trees
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_population_evaluated_with_shared_subtrees_equals_each_tree_alone(
        parts in proptest::collection::vec(node(Type::Float, 4), 1..5),
        columns in data(),
    ) {
        let trees: Vec<Tree> =
            population(&parts).into_iter().map(|root| Tree::new(root, &Limits::default()).unwrap()).collect();
        let programs: Vec<Program> = trees.iter().map(|t| Program::compile(t, &NAMES).unwrap()).collect();
        let cols: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        let rows = cols[0].len();
        let shared = batch::evaluate_many(&programs, &cols).unwrap();
        let alone = batch::evaluate_many_with(&programs, &cols, Subtrees::PerProgram).unwrap();
        prop_assert_eq!(bits(&shared), bits(&alone));
        // Into a buffer holding garbage: every value is overwritten.
        let mut into = vec![7.5; programs.len() * rows];
        batch::evaluate_many_into(&programs, &cols, Subtrees::Shared, &mut into).unwrap();
        prop_assert_eq!(bits(&shared), bits(&into));
        for (i, tree) in trees.iter().enumerate() {
            let reference = naive::evaluate(tree, &NAMES, &cols).unwrap();
            prop_assert_eq!(bits(&shared[i * rows..(i + 1) * rows]), bits(&reference), "tree {}", i);
        }
        let sharing = batch::sharing(&programs);
        prop_assert_eq!(sharing.programs, programs.len());
        prop_assert!(sharing.distinct_operations <= programs.iter().map(Program::instruction_count).sum::<usize>());
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
    let mut into = vec![f64::NAN; 3 * 50];
    batch::evaluate_json_into(&trees, &names, &cols, &Limits::default(), Subtrees::Shared, &mut into).unwrap();
    assert_eq!(into, all);
    let short = batch::evaluate_json_into(&trees, &names, &cols, &Limits::default(), Subtrees::Shared, &mut [0.0; 149]);
    assert_eq!(short.unwrap_err().to_string(), "GP data: the output holds 149 values, not 3 programs x 50 rows");
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

/// Every window op over a feature, a constant (finite, zero, NaN, infinite) and a computed node, at windows of 1, 2,
/// 3 and around a block of rows: batch == streaming == naive, on columns with NaN runs, a flat stretch, ties and a
/// constant column.
#[test]
fn window_ops_at_the_edges_over_features_and_constants() {
    let rows = 1_100;
    let a: Vec<f64> = (0..rows)
        .map(|i| match i {
            40..=44 | 700 => f64::NAN,
            100..=699 => 0.25,
            _ => (f64::from(i as u32) * 0.37).sin().round() * 0.5,
        })
        .collect();
    let b: Vec<f64> = (0..rows).map(|i| (f64::from(i as u32) * 0.11).cos() * 1e3).collect();
    let c = vec![-1.5; rows];
    let cols = [a.as_slice(), b.as_slice(), c.as_slice()];
    let ops = [Op::Lag, Op::TsMean, Op::TsStd, Op::TsZscore, Op::TsMin, Op::TsMax, Op::TsRank, Op::Ema];
    let feature = |name: &str| Node::Feature(name.to_owned());
    let infinite = Node::Apply { op: Op::Mul, args: vec![Node::Const(1e300), Node::Const(1e300)] };
    let inputs = [
        feature("a"),
        feature("b"),
        feature("c"),
        Node::Const(0.75),
        Node::Const(-0.0),
        // Constants are finite, but folding can make an infinite or NaN one.
        infinite.clone(),
        Node::Apply { op: Op::Sub, args: vec![infinite.clone(), infinite] },
        Node::Apply { op: Op::Div, args: vec![feature("a"), feature("b")] },
    ];
    for op in ops {
        for input in &inputs {
            for k in [1, 2, 3, 5, 50, 511, 512, 513] {
                let root = Node::Apply { op, args: vec![input.clone(), Node::Window(k)] };
                // Scaled, so that values beyond [-1, 1] show in the signal too.
                let root = Node::Apply { op: Op::Mul, args: vec![Node::Const(0.001), root] };
                let tree = Tree::new(root, &Limits::default()).unwrap();
                let program = Program::compile(&tree, &NAMES).unwrap();
                let batched = batch::evaluate(&program, &cols).unwrap();
                let mut stream = StreamingEvaluator::new(&program);
                let streamed: Vec<f64> = (0..rows).map(|t| stream.push(&[a[t], b[t], c[t]])).collect();
                let reference = naive::evaluate(&tree, &NAMES, &cols).unwrap();
                assert_eq!(bits(&batched), bits(&reference), "{op:?} of {input:?} over {k}");
                assert_eq!(bits(&streamed), bits(&reference), "{op:?} of {input:?} over {k} (streaming)");
            }
        }
    }
}
