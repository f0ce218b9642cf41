//! NSGA-II selection of half of a two-objective population: apex-pareto against DEAP's pairwise sort written out in
//! Rust (the same result, checked), at a size both finish quickly, then apex-pareto at `evolve --pop 50000`'s size.

use std::hint::black_box;

use apex_core::XorShift64;
use apex_core::timing::best_of;
use apex_pareto::select;
use criterion::{Criterion, criterion_group, criterion_main};

fn population(n: usize) -> Vec<[f64; 2]> {
    let mut rng = XorShift64::new(0x9e37_79b9_7f4a_7c15);
    // Backtest fitness on a coarse scale (many ties), simulator PnL continuous and loosely related to it.
    (0..n)
        .map(|_| {
            let fitness = (rng.uniform() * 400.0).round() / 100.0;
            [fitness, fitness * 3.0 + rng.uniform() * 20.0 - 10.0]
        })
        .collect()
}

#[path = "../tests/naive/mod.rs"]
mod naive;

fn bench(c: &mut Criterion) {
    let small = population(4_000);
    let objects: Vec<usize> = (0..small.len()).collect();
    let same = select(&small, &objects, 2_000).expect("finite") == naive::select(&small, &objects, 2_000);
    assert!(same, "apex-pareto and the pairwise sort select the same");
    let fast = best_of(5, || (), |()| select(&small, &objects, 2_000));
    let slow = best_of(3, || (), |()| naive::select(&small, &objects, 2_000));
    println!(
        "select 2,000 of 4,000: apex-pareto {:.2} ms, DEAP's pairwise sort (Rust) {:.1} ms: {:.0}x",
        fast * 1e3,
        slow * 1e3,
        slow / fast
    );
    let large = population(100_000);
    let objects: Vec<usize> = (0..large.len()).collect();
    let fast = best_of(5, || (), |()| select(&large, &objects, 50_000));
    println!("select 50,000 of 100,000 (evolve --pop 50000): apex-pareto {:.1} ms", fast * 1e3);
    c.bench_function("select 50,000 of 100,000", |b| b.iter(|| select(black_box(&large), &objects, 50_000)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
