//! Timing for the side-by-side benchmarks: the best wall time of repeated runs (the least disturbed by other load).

use std::hint::black_box;
use std::time::Instant;

/// Best wall time in seconds of `repeats` runs of `run` on fresh state from `setup` (setup is not timed).
pub fn best_of<S, R>(repeats: usize, setup: impl Fn() -> S, run: impl Fn(S) -> R) -> f64 {
    (0..repeats)
        .map(|_| {
            let state = setup();
            let start = Instant::now();
            black_box(run(state));
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// `items` per second of the best of `repeats` runs of `run`.
#[allow(clippy::cast_precision_loss)] // item counts of a benchmark are far below 2^53
pub fn per_second<R>(run: impl Fn() -> R, items: usize, repeats: usize) -> f64 {
    items as f64 / best_of(repeats, || (), |()| run())
}
