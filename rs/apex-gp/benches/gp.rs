//! Node evaluations per second of the batch and streaming evaluators and the naive recursive interpreter.

use apex_gp::{Limits, Node, Op, Program, StreamingEvaluator, Tree, Type, WINDOWS, batch, naive};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const ROWS: usize = 20_000;
const TREES: usize = 50;

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

fn random_node(rng: &mut Rng, ty: Type, depth: u32) -> Node {
    match ty {
        Type::Window => return Node::Window(WINDOWS[rng.below(WINDOWS.len())]),
        Type::Bool if depth == 0 => return Node::Bool(rng.below(2) == 1),
        Type::Float if depth == 0 => {
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
    let args = op.args().iter().map(|t| random_node(rng, *t, depth - 1)).collect();
    Node::Apply { op, args }
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(7);
    let columns: Vec<Vec<f64>> = NAMES.iter().map(|_| (0..ROWS).map(|_| rng.unit() * 2.0 - 1.0).collect()).collect();
    let cols: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
    let trees: Vec<Tree> = (0..TREES)
        .map(|_| Tree::new(random_node(&mut rng, Type::Float, 5), &Limits::default()).expect("valid tree"))
        .collect();
    let programs: Vec<Program> = trees.iter().map(|t| Program::compile(t, &NAMES).expect("compiles")).collect();
    let node_evals: usize = programs.iter().map(|p| p.node_count() * ROWS).sum();

    let mut group = c.benchmark_group("gp_node_evals");
    group.sample_size(10);
    group.throughput(Throughput::Elements(node_evals as u64));
    group.bench_function(BenchmarkId::new("batch_parallel", TREES), |b| {
        b.iter(|| batch::evaluate_many(&programs, &cols).expect("evaluates"));
    });
    group.bench_function(BenchmarkId::new("batch_one_thread", TREES), |b| {
        b.iter(|| programs.iter().map(|p| batch::evaluate(p, &cols).expect("evaluates")).collect::<Vec<_>>());
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

criterion_group!(benches, bench);
criterion_main!(benches);
