//! Node evaluations per second: the blocked batch evaluator (shared subtrees, rayon) against the same evaluator one
//! program at a time, the streaming evaluator and the naive recursive interpreter, on random trees and on a
//! population bred by crossover (where subtrees repeat, as in evolution). And trees loaded per second: the quick
//! typed load with one index of the inputs (`batch::compile_all`) against the checked way of every tree through a
//! JSON value, indexing the inputs for each.

use std::hint::black_box;
use std::time::Instant;

use apex_gp::batch::Subtrees;
use apex_gp::{GpError, Limits, Node, Op, Program, StreamingEvaluator, Tree, Type, WINDOWS, batch, naive};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;

const NAMES: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const ROWS: usize = 20_000;
const TREES: usize = 200;
/// Generations of crossover that breed the shared population from random parents.
const GENERATIONS: usize = 8;
/// Tree documents loaded per run (evolution loads 40,000-50,000 new trees a generation at `--pop 50000`).
const LOADED: usize = 20_000;

/// A small deterministic generator (SplitMix64), so the benchmark needs no rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// DEAP's genHalfAndHalf for the GP types: a height drawn in 2..=6, then full or grow (a terminal with probability
/// one half below the minimum height), like `apexctl.forge.gp.gen_half_and_half` that `scripts/bench/gp.py` uses.
fn half_and_half(rng: &mut Rng) -> Node {
    let height = 2 + rng.below(5);
    let full = rng.below(2) == 0;
    grow(rng, Type::Float, 0, height, full)
}

fn grow(rng: &mut Rng, ty: Type, depth: usize, height: usize, full: bool) -> Node {
    let stop = depth == height || (!full && depth >= 2 && rng.below(2) == 0);
    match ty {
        Type::Window => return Node::Window(WINDOWS[rng.below(WINDOWS.len())]),
        Type::Bool if stop => return Node::Bool(rng.below(2) == 1),
        Type::Float if stop => {
            return if rng.below(4) == 0 {
                Node::Const(rng.unit() * 2.0 - 1.0)
            } else {
                Node::Feature(NAMES[rng.below(NAMES.len())].to_owned())
            };
        }
        _ => {}
    }
    let ops: Vec<Op> = Op::ALL.iter().copied().filter(|op| op.ret() == ty).collect();
    let op = ops[rng.below(ops.len())];
    let args = op.args().iter().map(|t| grow(rng, *t, depth + 1, height, full)).collect();
    Node::Apply { op, args }
}

/// Every Float subtree of `node`, by reference.
fn float_subtrees<'a>(node: &'a Node, into: &mut Vec<&'a Node>) {
    if node.ty() == Type::Float {
        into.push(node);
    }
    if let Node::Apply { args, .. } = node {
        args.iter().for_each(|a| float_subtrees(a, into));
    }
}

/// `node` with its `target`-th Float subtree (preorder) replaced by `donor`.
fn replace(node: &Node, target: &mut usize, donor: &Node) -> Node {
    if node.ty() == Type::Float {
        if *target == 0 {
            *target = usize::MAX;
            return donor.clone();
        }
        *target = target.wrapping_sub(1);
    }
    match node {
        Node::Apply { op, args } => {
            Node::Apply { op: *op, args: args.iter().map(|a| replace(a, target, donor)).collect() }
        }
        leaf => leaf.clone(),
    }
}

/// Generations of one-point crossover between random parents (no selection): each child is a parent with one of its
/// Float subtrees swapped for one of the other parent's, kept when within DEAP's height limit of 17.
fn population(rng: &mut Rng, parents: Vec<Node>) -> Vec<Node> {
    let mut population = parents;
    for _ in 0..GENERATIONS {
        let mut next = Vec::with_capacity(population.len());
        while next.len() < population.len() {
            let (a, b) = (&population[rng.below(population.len())], &population[rng.below(population.len())]);
            let (mut into, mut from) = (Vec::new(), Vec::new());
            float_subtrees(a, &mut into);
            float_subtrees(b, &mut from);
            let child = replace(a, &mut rng.below(into.len()), from[rng.below(from.len())]);
            next.push(if child.height() <= 17 { child } else { a.clone() });
        }
        population = next;
    }
    population
}

/// Best wall time of `repeats` runs, in seconds.
fn best_of(repeats: usize, mut run: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Each document read through a JSON value and compiled against the inputs indexed for it alone: how
/// `compile_all` loaded trees before the quick way.
fn load_checked(texts: &[String], limits: &Limits) -> Result<Vec<Program>, GpError> {
    texts
        .par_iter()
        .map(|text| {
            let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| GpError::Json(e.to_string()))?;
            Program::compile(&Tree::from_value(&doc, limits)?, &NAMES)
        })
        .collect()
}

fn bench_load(c: &mut Criterion, rng: &mut Rng) {
    let limits = Limits::default();
    let texts: Vec<String> =
        (0..LOADED).map(|_| Tree::new(half_and_half(rng), &limits).expect("valid").to_json()).collect();
    assert_eq!(batch::compile_all(&texts, &NAMES, &limits), load_checked(&texts, &limits), "the same programs");
    let quick = best_of(5, || drop(black_box(batch::compile_all(&texts, &NAMES, &limits).expect("loads"))));
    let checked = best_of(5, || drop(black_box(load_checked(&texts, &limits).expect("loads"))));
    println!(
        "gp_load_{LOADED}_trees ({} threads, programs equal): quick typed load + one input index {:.0} k trees/s, \
         checked JSON value + index per tree {:.0} k trees/s; ratio {:.1}x",
        rayon::current_num_threads(),
        LOADED as f64 / quick / 1e3,
        LOADED as f64 / checked / 1e3,
        checked / quick,
    );
    let mut group = c.benchmark_group("gp_load");
    group.sample_size(10);
    group.throughput(Throughput::Elements(LOADED as u64));
    group.bench_function(BenchmarkId::new("quick_compile_all", LOADED), |b| {
        b.iter(|| batch::compile_all(&texts, &NAMES, &limits).expect("loads"));
    });
    group.bench_function(BenchmarkId::new("checked_value_per_tree", LOADED), |b| {
        b.iter(|| load_checked(&texts, &limits).expect("loads"));
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(7);
    bench_load(c, &mut rng);
    let columns: Vec<Vec<f64>> = NAMES
        .iter()
        .map(|_| (0..ROWS).map(|_| if rng.below(50) == 0 { f64::NAN } else { rng.unit() * 2.0 - 1.0 }).collect())
        .collect();
    let cols: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    let compile = |nodes: Vec<Node>| -> (Vec<Tree>, Vec<Program>) {
        let trees: Vec<Tree> = nodes.into_iter().map(|n| Tree::new(n, &Limits::default()).expect("valid")).collect();
        let programs = trees.iter().map(|t| Program::compile(t, &NAMES).expect("compiles")).collect();
        (trees, programs)
    };
    let random: Vec<Node> = (0..TREES).map(|_| half_and_half(&mut rng)).collect();
    let bred = population(&mut rng, random.clone());
    for (name, nodes) in [("random", random), ("bred", bred)] {
        let (trees, programs) = compile(nodes);
        let node_evals = (programs.iter().map(Program::node_count).sum::<usize>() * ROWS) as f64;
        let sharing = batch::sharing(&programs);
        let shared = best_of(3, || drop(black_box(batch::evaluate_many(&programs, &cols).expect("evaluates"))));
        let one_thread = best_of(3, || {
            for p in &programs {
                black_box(batch::evaluate(p, &cols).expect("evaluates"));
            }
        });
        let naive = best_of(1, || {
            for t in &trees {
                black_box(naive::evaluate(t, &NAMES, &cols).expect("evaluates"));
            }
        });
        println!(
            "gp_{name}_{TREES}_trees x {ROWS} rows ({} tree nodes, {} distinct operations shared): batch shared \
             (rayon, {} threads) {:.0} M node-evals/s, batch one program at a time (1 thread) {:.0} M/s, naive \
             recursive interpreter {:.0} M/s; ratio shared/naive {:.1}x, one thread/naive {:.1}x",
            sharing.tree_nodes,
            sharing.distinct_operations,
            rayon::current_num_threads(),
            node_evals / shared / 1e6,
            node_evals / one_thread / 1e6,
            node_evals / naive / 1e6,
            naive / shared,
            naive / one_thread,
        );
        let mut group = c.benchmark_group(format!("gp_node_evals_{name}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(node_evals as u64));
        group.bench_function(BenchmarkId::new("batch_shared_parallel", TREES), |b| {
            b.iter(|| batch::evaluate_many(&programs, &cols).expect("evaluates"));
        });
        group.bench_function(BenchmarkId::new("batch_per_program_parallel", TREES), |b| {
            b.iter(|| batch::evaluate_many_with(&programs, &cols, Subtrees::PerProgram).expect("evaluates"));
        });
        group.bench_function(BenchmarkId::new("streaming", TREES), |b| {
            b.iter(|| {
                let mut row = [0.0; NAMES.len()];
                let mut total = 0.0;
                for p in &programs {
                    let mut stream = StreamingEvaluator::new(p);
                    for t in 0..ROWS {
                        for (value, column) in row.iter_mut().zip(&cols) {
                            *value = column[t];
                        }
                        total += stream.push(&row);
                    }
                }
                total
            });
        });
        group.bench_function(BenchmarkId::new("naive_recursive", TREES), |b| {
            b.iter(|| trees.iter().map(|t| naive::evaluate(t, &NAMES, &cols).expect("evaluates")).collect::<Vec<_>>());
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
