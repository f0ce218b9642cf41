//! The CWO (continuous weight optimization): every `every` of market time it splits each account's capital among
//! its live slots by risk-adjusted recent performance, within a floor and a cap, and gives a dead slot nothing.
//!
//! The rule, per live slot: take its last `lookback` per-bar log returns (capital transfers excluded), their mean m,
//! standard deviation s and count n; its score is the shrunk Sharpe ratio `(n / (n + shrink)) * m / max(s, 1e-6)`
//! (a short record says little, so it is pulled towards 0), clamped to [-1, 1]. Its raw weight is
//! `1 + tilt * score` (equal weights when `tilt` is 0), normalised over the account's live slots, then projected onto
//! [floor, cap] (bounds relaxed to 1/n when n slots cannot meet them) by scaling: each share is `clamp(c * raw, floor, cap)`
//! with the one c that makes the shares sum to 1. An account's capital is the equity of all its
//! slots at their marks (a dead slot's leftover equity, once it is flat, goes back into it); capital cannot move
//! between accounts, so each account is split on its own.

use std::time::Duration;

/// The CWO's parameters (`[cwo]` in the engine's config).
#[derive(Debug, Clone, PartialEq)]
pub struct CwoParams {
    /// Market time between reweights.
    pub every: Duration,
    /// Per-bar returns a score looks at.
    pub lookback: usize,
    /// Prior strength, in bars, pulling a short record's score to 0.
    pub shrink: f64,
    /// How far a score moves a weight from equal (0: equal weights).
    pub tilt: f64,
    /// Least share of its account's capital a live slot gets.
    pub floor: f64,
    /// Largest share of its account's capital a slot gets.
    pub cap: f64,
}

impl Default for CwoParams {
    fn default() -> Self {
        CwoParams { every: Duration::from_secs(60), lookback: 60, shrink: 30.0, tilt: 0.5, floor: 0.05, cap: 0.6 }
    }
}

impl CwoParams {
    /// Checks every parameter; the error names the key.
    ///
    /// # Errors
    /// A message naming the first parameter out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.every.is_zero() {
            return Err("cwo.every: must be positive".into());
        }
        if self.lookback < 2 {
            return Err("cwo.lookback: must be at least 2".into());
        }
        if !(self.shrink >= 0.0 && self.shrink.is_finite()) {
            return Err("cwo.shrink: must be a finite number >= 0".into());
        }
        if !(0.0..=1.0).contains(&self.tilt) {
            return Err("cwo.tilt: must be in [0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.floor)
            || !(0.0..=1.0).contains(&self.cap)
            || self.floor > self.cap
            || self.cap == 0.0
        {
            return Err("cwo.floor, cwo.cap: need 0 <= floor <= cap <= 1 and cap > 0".into());
        }
        Ok(())
    }
}

/// The shrunk Sharpe score of a slot's recent per-bar log returns (see the module documentation).
#[must_use]
pub fn score(returns: &[f64], shrink: f64) -> f64 {
    let finite: Vec<f64> = returns.iter().copied().filter(|r| r.is_finite()).collect();
    if finite.len() < 2 {
        return 0.0;
    }
    let n = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let var = finite.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sharpe = mean / var.sqrt().max(1e-6);
    (n / (n + shrink) * sharpe).clamp(-1.0, 1.0)
}

/// The shares of one account's capital: `scores[i]` is `None` for a dead slot (it gets 0). The live shares sum to 1
/// (all zero when no slot is live) and lie in [floor, cap] (relaxed to 1/n when unreachable).
#[must_use]
pub fn shares(scores: &[Option<f64>], params: &CwoParams) -> Vec<f64> {
    let live: Vec<usize> = (0..scores.len()).filter(|&i| scores[i].is_some()).collect();
    let mut out = vec![0.0; scores.len()];
    if live.is_empty() {
        return out;
    }
    let n = live.len() as f64;
    let floor = params.floor.min(1.0 / n);
    let cap = params.cap.max(1.0 / n);
    let raw: Vec<f64> = live.iter().map(|&i| (1.0 + params.tilt * scores[i].unwrap_or(0.0)).max(1e-9)).collect();
    // The shares are clamp(scale * raw, floor, cap) with the one scale that makes them sum to 1: the total rises
    // with the scale (from n * floor to n * cap, which bracket 1), so bisection finds it, and the order of the raw
    // weights is kept.
    let total = |scale: f64| raw.iter().map(|r| (scale * r).clamp(floor, cap)).sum::<f64>();
    let (mut low, mut high) = (0.0, 1.0);
    while total(high) < 1.0 && high < 1e12 {
        high *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if total(mid) < 1.0 { low = mid } else { high = mid }
    }
    for (k, &i) in live.iter().enumerate() {
        out[i] = (high * raw[k]).clamp(floor, cap);
    }
    // Rounding: the live shares sum to exactly 1 by construction up to float error; fold it into the largest.
    let total: f64 = out.iter().sum();
    if let Some(largest) = live.iter().copied().max_by(|&a, &b| out[a].total_cmp(&out[b])) {
        out[largest] += 1.0 - total;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn equal_records_get_equal_shares_and_a_dead_slot_gets_nothing() {
        let params = CwoParams::default();
        let shares = shares(&[Some(0.0), None, Some(0.0), Some(0.0)], &params);
        assert_eq!(shares[1], 0.0);
        for i in [0, 2, 3] {
            assert!((shares[i] - 1.0 / 3.0).abs() < 1e-12);
        }
    }

    #[test]
    fn a_better_record_gets_more_within_the_cap() {
        let params = CwoParams { tilt: 1.0, cap: 0.5, floor: 0.1, ..CwoParams::default() };
        let shares = shares(&[Some(1.0), Some(-1.0), Some(0.0)], &params);
        assert!(shares[0] > shares[2] && shares[2] > shares[1]);
        assert!(shares[0] <= 0.5 + 1e-12 && shares[1] >= 0.1 - 1e-12);
    }

    #[test]
    fn the_score_shrinks_a_short_record_and_ignores_missing_returns() {
        let steady = [0.01, 0.012, 0.008, 0.011, 0.009];
        assert!(score(&steady, 0.0) > score(&steady, 100.0));
        assert!(score(&steady, 100.0) > 0.0);
        assert_eq!(score(&[0.01], 0.0), 0.0);
        assert_eq!(score(&[f64::NAN, 0.01, f64::NAN], 0.0), 0.0);
        assert!(score(&[-0.01, -0.012, -0.008], 0.0) < 0.0);
    }

    #[test]
    fn parameters_out_of_range_are_named() {
        let bad = CwoParams { floor: 0.7, cap: 0.6, ..CwoParams::default() };
        assert!(bad.validate().unwrap_err().contains("cwo.floor"));
        assert!(CwoParams { lookback: 1, ..CwoParams::default() }.validate().unwrap_err().contains("cwo.lookback"));
        assert!(CwoParams::default().validate().is_ok());
    }

    proptest! {
        #[test]
        fn live_shares_sum_to_one_within_bounds_and_follow_the_scores(
            scores in proptest::collection::vec(proptest::option::weighted(0.8, -1.0f64..1.0), 1..8),
            floor in 0.0f64..0.3, spread in 0.0f64..0.7, tilt in 0.0f64..1.0,
        ) {
            let params = CwoParams { floor, cap: (floor + spread).min(1.0), tilt, ..CwoParams::default() };
            let out = shares(&scores, &params);
            let live: Vec<usize> = (0..scores.len()).filter(|&i| scores[i].is_some()).collect();
            let total: f64 = out.iter().sum();
            if live.is_empty() {
                prop_assert_eq!(total, 0.0);
            } else {
                prop_assert!((total - 1.0).abs() < 1e-9, "total {}", total);
                let n = live.len() as f64;
                let (lo, hi) = (params.floor.min(1.0 / n), params.cap.max(1.0 / n));
                for &i in &live {
                    prop_assert!(out[i] >= lo - 1e-9 && out[i] <= hi + 1e-9, "share {} not in [{}, {}]", out[i], lo, hi);
                }
                for &a in &live {
                    for &b in &live {
                        if scores[a].unwrap() > scores[b].unwrap() {
                            prop_assert!(out[a] >= out[b] - 1e-9);
                        }
                    }
                }
            }
            for (i, s) in scores.iter().enumerate() {
                if s.is_none() {
                    prop_assert_eq!(out[i], 0.0);
                }
            }
        }
    }
}
