//! Strategy-bars per second of the backtester (parallel batch and one thread) against the naive reference loop.

#[path = "../tests/naive/mod.rs"]
mod naive;

use std::hint::black_box;

use apex_backtest::{BacktestParams, run};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naive::{OwnedBars, naive_backtest};

const BARS: usize = 5_000;
const STRATEGIES: usize = 64;

fn fixture() -> (OwnedBars, Vec<f64>) {
    let mut rows = Vec::with_capacity(BARS);
    let mut price = 100.0_f64;
    let mut rng = apex_core::XorShift64::new(0x2545_f491_4f6c_dd1d_u64);
    let mut uniform = move || rng.uniform();
    for _ in 0..BARS {
        let next = price * (1.0 + 0.004 * (uniform() - 0.5));
        rows.push((
            price,
            price.max(next) * (1.0 + 0.002 * uniform()),
            price.min(next) * (1.0 - 0.002 * uniform()),
            next,
        ));
        price = next;
    }
    let signals =
        (0..STRATEGIES * BARS).map(|i| ((i % BARS) as f64 * (0.01 + 0.003 * (i / BARS) as f64)).sin()).collect();
    (naive::bars_from_ohlc(&rows), signals)
}

fn bench(c: &mut Criterion) {
    let (bars, signals) = fixture();
    let params = BacktestParams::default();
    let mut group = c.benchmark_group("backtest");
    group.throughput(Throughput::Elements((STRATEGIES * BARS) as u64));
    group.sample_size(10);
    group.bench_function("fast_parallel", |b| b.iter(|| run(&bars.view(), black_box(&signals), &params, 0..BARS)));
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    group.bench_function("fast_one_thread", |b| {
        b.iter(|| single.install(|| run(&bars.view(), black_box(&signals), &params, 0..BARS)));
    });
    group.bench_function("naive_one_thread", |b| {
        b.iter(|| {
            signals
                .chunks(BARS)
                .map(|signal| naive_backtest(&bars, black_box(signal), &params, 0, BARS).final_equity)
                .sum::<f64>()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
