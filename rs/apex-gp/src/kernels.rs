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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// ln 2 in two parts: `k * LN2_HI` is exact for the |k| < 2^11 used here (LN2_HI ends in 21 zero bits).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// 1.5 * 2^52: adding it rounds a float below 2^51 in magnitude to an integer, held in the low mantissa bits.
const ROUNDER: f64 = 6_755_399_441_055_744.0;
/// 1/n! for n = 2..=13: expm1(r) = r + r^2 * (1/2 + r/6 + ...) to 4e-18 on |r| <= ln2/2.
const EXPM1: [f64; 12] = [
    0.5,
    0.166_666_666_666_666_66,
    0.041_666_666_666_666_664,
    0.008_333_333_333_333_333,
    0.001_388_888_888_888_889,
    0.000_198_412_698_412_698_4,
    2.480_158_730_158_73e-5,
    2.755_731_922_398_589_3e-6,
    2.755_731_922_398_589e-7,
    2.505_210_838_544_172e-8,
    2.087_675_698_786_81e-9,
    1.605_904_383_682_161_3e-10,
];
/// tanh(x) = x + x^3 * P(x^2) on |x| <= 0.55: a least-maximum-relative-error fit, 6e-19 before rounding.
const TANH_SMALL: [f64; 11] = [
    -0.333_333_333_333_333,
    0.133_333_333_333_268_33,
    -0.053_968_253_963_878_26,
    0.021_869_488_389_093_708,
    -0.008_863_232_652_639_582,
    0.003_592_092_531_111_528,
    -0.001_455_545_975_300_174_5,
    0.000_588_457_014_460_456,
    -0.000_233_412_643_797_249_13,
    8.335_995_224_389_472e-5,
    -1.952_095_782_307_409_2e-5,
];

/// Horner's scheme from the highest coefficient down, one rounding per step (never fused, so NumPy can repeat it).
#[inline(always)]
fn horner(x: f64, coefficients: &[f64]) -> f64 {
    let (last, rest) = coefficients.split_last().expect("coefficients");
    rest.iter().rev().fold(*last, |acc, c| acc * x + c)
}

/// The hyperbolic tangent of the GP contract, the same on every platform (libm's differs between C libraries and
/// CPUs): within 1.4 ulp of the true value, exact at 0, +-1 beyond |x| = 19.1, NaN for NaN.
///
/// Both branches are computed and one is selected, without data-dependent control flow, so loops over columns
/// vectorize. |x| <= 0.55: an odd polynomial. Above: 1 - 2 / (expm1(2|x|) + 2), with expm1 = 2^k (1 + s) - 1 after
/// the reduction 2|x| = k ln2 + r. The NumPy reference (`apexctl/forge/gp.py`) performs the same operations.
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    let a = x.abs();
    // tanh rounds to 1 beyond 19.1; clamping keeps 2^k finite (a NaN fails the test and stays NaN).
    let a = if a > 22.0 { 22.0 } else { a };
    let y = 2.0 * a;
    let shifted = y * std::f64::consts::LOG2_E + ROUNDER;
    let kf = shifted - ROUNDER;
    let k = (shifted.to_bits() as i64).wrapping_sub(ROUNDER.to_bits() as i64);
    let r = (y - kf * LN2_HI) - kf * LN2_LO;
    let s = r + (r * r) * horner(r, &EXPM1);
    let scale = f64::from_bits((k.wrapping_add(1023) as u64) << 52);
    let t = scale * s + (scale - 1.0);
    let u = a * a;
    let small = a + a * (u * horner(u, &TANH_SMALL));
    let z = if a > 0.55 { 1.0 - 2.0 / (t + 2.0) } else { small };
    z.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_special_values_and_distance_to_libm() {
        assert_eq!(tanh(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f64).to_bits());
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!((tanh(f64::INFINITY), tanh(f64::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!((tanh(19.1), tanh(-1e300)), (1.0, -1.0));
        assert_eq!(tanh(1e-310), 1e-310);
        // A sweep over magnitudes 2^-40 .. 2^5, both signs: within 2 ulp of the C library everywhere.
        let mut worst = 0;
        for i in 0..200_000 {
            let magnitude = (f64::from(i) / 200_000.0 * 45.0 - 40.0).exp2();
            for x in [magnitude, -magnitude] {
                let ulps = (tanh(x).to_bits() as i64 - x.tanh().to_bits() as i64).abs();
                worst = worst.max(ulps);
            }
        }
        assert!(worst <= 2, "{worst} ulp from libm");
    }
}
