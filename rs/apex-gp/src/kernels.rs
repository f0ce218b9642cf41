//! Scalar kernels shared by the batch and streaming evaluators, so both perform the same float operations in order.

use crate::PROTECT_EPS;

#[inline]
pub fn div(a: f64, b: f64) -> f64 {
    if b.abs() < PROTECT_EPS { 0.0 } else { a / b }
}

#[inline]
pub fn sign(a: f64) -> f64 {
    // f64::signum maps 0.0 to 1.0; the contract (and NumPy) says 0.0 for both zeros.
    if a > 0.0 {
        1.0
    } else if a < 0.0 {
        -1.0
    } else if a == 0.0 {
        0.0
    } else {
        a
    }
}

/// The smaller value, NaN if either is NaN; written as a select so loops over columns vectorize.
#[inline]
pub fn min(a: f64, b: f64) -> f64 {
    if b.is_nan() | (b < a) { b } else { a }
}

/// The larger value, NaN if either is NaN.
#[inline]
pub fn max(a: f64, b: f64) -> f64 {
    if b.is_nan() | (b > a) { b } else { a }
}

#[inline]
pub fn truth(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The rolling statistics over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    Mean,
    Std,
    Zscore,
    Min,
    Max,
    Rank,
}

fn mean(values: impl Iterator<Item = f64>, m: f64) -> f64 {
    let mut sum = 0.0;
    for v in values {
        sum += v;
    }
    sum / m
}

fn std_around(values: impl Iterator<Item = f64>, mean: f64, m: f64) -> f64 {
    let mut acc = 0.0;
    for v in values {
        let d = v - mean;
        acc += d * d;
    }
    (acc / m).sqrt()
}

/// The statistic over the window `older ++ newer` (oldest first); the current row is the last element.
pub fn window_stat(stat: Stat, older: &[f64], newer: &[f64]) -> f64 {
    let values = || older.iter().chain(newer).copied();
    let m = (older.len() + newer.len()) as f64;
    let current = newer.last().or(older.last()).copied().unwrap_or(f64::NAN);
    match stat {
        Stat::Mean => mean(values(), m),
        Stat::Std => std_around(values(), mean(values(), m), m),
        Stat::Zscore => {
            let mu = mean(values(), m);
            let sd = std_around(values(), mu, m);
            if sd < PROTECT_EPS { 0.0 } else { (current - mu) / sd }
        }
        Stat::Min => values().fold(f64::INFINITY, min),
        Stat::Max => values().fold(f64::NEG_INFINITY, max),
        Stat::Rank => {
            let (mut below, mut equal) = (0u32, 0u32);
            for v in values() {
                if v.is_nan() {
                    return f64::NAN;
                }
                below += u32::from(v < current);
                equal += u32::from(v == current);
            }
            if m == 1.0 { 0.5 } else { (f64::from(below) + 0.5 * f64::from(equal - 1)) / (m - 1.0) }
        }
    }
}

/// One step of the EMA: `state` is the current average (None before the first non-NaN input).
#[inline]
pub fn ema_step(state: &mut Option<f64>, alpha: f64, x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let next = match *state {
        None => x,
        Some(e) => e + alpha * (x - e),
    };
    *state = Some(next);
    next
}

/// The EMA's alpha for window k.
pub fn ema_alpha(k: u32) -> f64 {
    2.0 / (f64::from(k) + 1.0)
}
