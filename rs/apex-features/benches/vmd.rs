//! Criterion benchmark: rolling VMD (window 64, K = 3) over 2,000 random-walk closes, batch (rayon) and streaming.

use apex_features::vmd::{RollingVmd, VmdParams, rolling_vmd};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A deterministic random walk around 100 (xorshift increments), shaped like a close series.
fn random_walk(count: usize) -> Vec<f64> {
    let mut rng = apex_core::XorShift64::new(0x9E37_79B9_7F4A_7C15_u64);
    let mut level = 100.0;
    (0..count)
        .map(|_| {
            level += rng.uniform() - 0.5;
            level
        })
        .collect()
}

fn bench_rolling(c: &mut Criterion) {
    let series = random_walk(2_000);
    let params = VmdParams::default();
    let rows = (series.len() - params.window + 1) as u64;
    let mut group = c.benchmark_group("vmd_rolling_2000_w64_k3");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    group.bench_function("rolling_vmd", |b| b.iter(|| rolling_vmd(&series, &params).unwrap()));
    group.bench_function("streaming", |b| {
        b.iter(|| {
            let mut stream = RollingVmd::new(params.clone()).unwrap();
            series.iter().filter_map(|&x| stream.push(x)).count()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_rolling);
criterion_main!(benches);
