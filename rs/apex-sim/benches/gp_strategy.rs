//! Criterion benchmark: the GP strategy's per-bar decision (streaming bar features + streaming GP evaluation) against
//! recomputing the features of all bars and batch-evaluating the tree at every decision (the naive way to get the same
//! signal).

use std::hint::black_box;

use apex_gp::Limits;
use apex_sim::gp_strategy::{GpStrategy, compile_for_sim, sim_feature_columns};
use apex_sim::strategy::{Bar, Context, Strategy};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BARS: usize = 1_440;
/// A mid-size evolved-looking tree: rolling ops over base and 5-minute features.
const TREE: &str = r#"{"schema":"apex.gp_tree","version":1,"features":["clv","clv_5m","ret","rv"],"root":
    {"op":"if_then_else","args":[{"op":"gt","args":[{"op":"ts_zscore","args":[{"feature":"ret"},{"window":20}]},
    {"op":"ema","args":[{"feature":"clv_5m"},{"window":10}]}]},{"op":"tanh","args":[{"op":"div","args":
    [{"feature":"clv"},{"feature":"rv"}]}]},{"op":"neg","args":[{"op":"ts_mean","args":[{"feature":"clv"},
    {"window":30}]}]}]}}"#;

fn bars() -> Vec<Bar> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut close = 100.0;
    (0..BARS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let step = (state % 2001) as f64 / 1000.0 - 1.0;
            let open = close;
            close = (close + step * 0.1).max(1.0);
            let (high, low) = (open.max(close) + 0.05, open.min(close) - 0.05);
            Bar { ts_us: i as i64 * 60_000_000, open, high, low, close, volume: 1.0 + (state % 100) as f64 }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let bars = bars();
    let mut group = c.benchmark_group("gp_strategy");
    group.throughput(Throughput::Elements(BARS as u64));
    group.bench_function("streaming decisions, 1 day of 1m bars", |b| {
        b.iter(|| {
            let mut strategy = GpStrategy::from_json(TREE, 60, 30, &Limits::default()).unwrap();
            let mut last = 0.0;
            for n in 1..=BARS {
                last = strategy.target(&Context { bars: &bars[..n], position: 0.0, equity: 200.0 });
            }
            black_box(last)
        });
    });
    let program = compile_for_sim(TREE, 60, &Limits::default()).unwrap();
    // The naive way recomputes everything per decision; sampled on every 16th decision and scaled in the report.
    group.throughput(Throughput::Elements((BARS / 16) as u64));
    group.sample_size(10);
    group.bench_function("recompute all bars per decision (every 16th bar)", |b| {
        b.iter(|| {
            let mut last = 0.0;
            for n in (16..=BARS).step_by(16) {
                let columns = sim_feature_columns(&bars[..n], 60, 30).unwrap();
                let refs: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
                last = *apex_gp::batch::evaluate(&program, &refs).unwrap().last().unwrap();
            }
            black_box(last)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
