//! The latent fair value, generated step by step as simulated time needs it and kept in a window that slides with
//! the clock, so a market can run without a horizon in bounded memory.
//!
//! The path is geometric Brownian motion whose volatility follows a log-Ornstein-Uhlenbeck process (volatility
//! clustering), plus Poisson jumps (fat tails), on a `FAIR_VALUE_STEP_US` grid. It draws from its own generator,
//! seeded as the market's, in the order the whole-horizon path always did; a run with a horizon therefore sees the
//! very values (and leaves the market's agents the very generator state) it saw when the path was precomputed.

use std::collections::VecDeque;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::dsg::Dsg;

/// Resolution of the latent fair-value path.
pub(crate) const FAIR_VALUE_STEP_US: i64 = 100_000;
const US_PER_S: i64 = 1_000_000;

/// The parameters of one step, derived once from the DSG.
#[derive(Debug, Clone, Copy)]
struct StepLaw {
    base_sigma: f64,
    persistence: f64,
    vol_shock: f64,
    vol_of_vol: f64,
    jump_p: f64,
    jump_bps: f64,
}

impl StepLaw {
    fn new(dsg: &Dsg) -> StepLaw {
        let step_minutes = FAIR_VALUE_STEP_US as f64 / (60.0 * US_PER_S as f64);
        let persistence = 0.5f64.powf(step_minutes / dsg.fv_vol_halflife_min);
        StepLaw {
            base_sigma: dsg.fv_vol_bps / 1e4 * step_minutes.sqrt(),
            persistence,
            vol_shock: dsg.fv_vol_of_vol * (1.0 - persistence * persistence).sqrt(),
            vol_of_vol: dsg.fv_vol_of_vol,
            jump_p: dsg.fv_jump_rate / 3600.0 * (FAIR_VALUE_STEP_US as f64 / US_PER_S as f64),
            jump_bps: dsg.fv_jump_bps,
        }
    }

    /// Advances `(log_value, log_vol)` by one step; true when the step includes a jump.
    fn step<R: Rng + ?Sized>(&self, log_value: &mut f64, log_vol: &mut f64, rng: &mut R) -> bool {
        let normal = Normal::new(0.0, 1.0).expect("unit normal");
        *log_vol = self.persistence * *log_vol + self.vol_shock * normal.sample(rng);
        // exp(h - v²/2) has mean 1 under the stationary law, so `fv_vol_bps` stays the average volatility.
        let sigma = self.base_sigma * (*log_vol - 0.5 * self.vol_of_vol * self.vol_of_vol).exp();
        let mut step = sigma * normal.sample(rng) - 0.5 * sigma * sigma;
        let jumped = self.jump_p > 0.0 && rng.random_bool(self.jump_p.min(1.0));
        if jumped {
            step += self.jump_bps / 1e4 * normal.sample(rng);
        }
        *log_value += step;
        jumped
    }
}

/// The fair-value path in ticks, generated lazily.
#[derive(Debug, Clone)]
pub(crate) struct FairValue {
    law: StepLaw,
    rng: Xoshiro256PlusPlus,
    log_value: f64,
    log_vol: f64,
    /// Values of steps `first .. first + window.len()`.
    window: VecDeque<f64>,
    first: usize,
    /// Last step index of a bounded path: later times read this step's value (a run with a horizon).
    last: Option<usize>,
    start: f64,
    /// Whether the step into the next value to be generated included a jump.
    next_jumps: bool,
    /// Every value generated and whether a jump led to it, kept for the run's fair-value table (bounded runs only).
    record: Option<(Vec<f64>, Vec<bool>)>,
}

impl FairValue {
    /// A path starting at `start` ticks drawn from `rng`; `span_us` bounds it (times past the span read its last
    /// value), `None` leaves it open-ended.
    /// With `record`, every value generated is also kept (see [`FairValue::recorded`]).
    pub(crate) fn new(dsg: &Dsg, start: f64, span_us: Option<i64>, rng: Xoshiro256PlusPlus, record: bool) -> FairValue {
        FairValue {
            law: StepLaw::new(dsg),
            rng,
            log_value: start.ln(),
            log_vol: 0.0,
            window: VecDeque::new(),
            first: 0,
            last: span_us.map(|span| (span / FAIR_VALUE_STEP_US).max(1) as usize),
            start,
            next_jumps: false,
            record: record.then(Default::default),
        }
    }

    /// The generator state a whole bounded path leaves behind: what the market's agents drew from next when the path
    /// was precomputed. Costs the steps, not their memory.
    pub(crate) fn rng_after(dsg: &Dsg, start: f64, span_us: i64, mut rng: Xoshiro256PlusPlus) -> Xoshiro256PlusPlus {
        let law = StepLaw::new(dsg);
        let steps = (span_us / FAIR_VALUE_STEP_US).max(1) as usize + 1;
        let (mut log_value, mut log_vol) = (start.ln(), 0.0);
        for _ in 0..steps {
            law.step(&mut log_value, &mut log_vol, &mut rng);
        }
        rng
    }

    /// The starting value (step 0).
    pub(crate) fn start(&self) -> f64 {
        self.start
    }

    /// The value at `ts_us`. Steps before the last one asked for are forgotten: callers ask at the market's clock
    /// (and ahead of it), which never goes back.
    ///
    /// # Panics
    /// If asked for a step already forgotten (a caller going back in time).
    pub(crate) fn at(&mut self, ts_us: i64) -> f64 {
        let mut index = (ts_us.max(0) / FAIR_VALUE_STEP_US) as usize;
        if let Some(last) = self.last {
            index = index.min(last);
        }
        assert!(index >= self.first, "fair value of step {index} asked after step {} was forgotten", self.first);
        while self.first + self.window.len() <= index {
            let value = self.log_value.exp();
            self.window.push_back(value);
            if let Some((values, jumps)) = &mut self.record {
                values.push(value);
                jumps.push(self.next_jumps);
            }
            self.next_jumps = self.law.step(&mut self.log_value, &mut self.log_vol, &mut self.rng);
        }
        self.value(index)
    }

    /// Forgets the steps before the one of `ts_us` (keeping at least that one).
    pub(crate) fn forget_before(&mut self, ts_us: i64) {
        let mut index = (ts_us.max(0) / FAIR_VALUE_STEP_US) as usize;
        if let Some(last) = self.last {
            index = index.min(last);
        }
        while self.first < index && !self.window.is_empty() {
            self.window.pop_front();
            self.first += 1;
        }
    }

    /// The first `steps` values generated and their jump flags (fewer if fewer were generated; empty without
    /// recording).
    pub(crate) fn recorded(&self, steps: usize) -> (&[f64], &[bool]) {
        self.record.as_ref().map_or((&[][..], &[][..]), |(values, jumps)| {
            let n = steps.min(values.len());
            (&values[..n], &jumps[..n])
        })
    }

    fn value(&self, index: usize) -> f64 {
        self.window[index - self.first]
    }

    /// Number of steps held in memory (tests check it stays bounded).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.window.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The whole path at once, as the market computed it before it became open-ended (the reference).
    fn whole_path(dsg: &Dsg, start: f64, span_us: i64, rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
        let law = StepLaw::new(dsg);
        let steps = (span_us / FAIR_VALUE_STEP_US).max(1) as usize + 1;
        let (mut log_value, mut log_vol) = (start.ln(), 0.0);
        let mut path = Vec::with_capacity(steps);
        for _ in 0..steps {
            path.push(log_value.exp());
            law.step(&mut log_value, &mut log_vol, rng);
        }
        path
    }

    #[test]
    fn lazy_values_equal_the_whole_path_and_memory_stays_bounded() {
        let dsg = Dsg { fv_jump_rate: 200.0, ..Dsg::default() };
        let span = 3_600 * US_PER_S;
        let mut whole_rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let path = whole_path(&dsg, 1e6, span, &mut whole_rng);
        let after = FairValue::rng_after(&dsg, 1e6, span, Xoshiro256PlusPlus::seed_from_u64(9));
        assert_eq!(after, whole_rng, "the agents' generator continues where the whole path left it");
        let mut lazy = FairValue::new(&dsg, 1e6, Some(span), Xoshiro256PlusPlus::seed_from_u64(9), false);
        let lookahead = 30 * US_PER_S;
        let mut ts = 0;
        while ts < span + 2 * lookahead {
            let clamp = |t: i64| path[((t / FAIR_VALUE_STEP_US) as usize).min(path.len() - 1)];
            assert_eq!(lazy.at(ts).to_bits(), clamp(ts).to_bits());
            assert_eq!(lazy.at(ts + lookahead).to_bits(), clamp(ts + lookahead).to_bits());
            lazy.forget_before(ts);
            assert!(lazy.held() <= (lookahead / FAIR_VALUE_STEP_US) as usize + 2);
            ts += 37_123;
        }
    }

    #[test]
    fn an_open_path_goes_on() {
        let mut open = FairValue::new(&Dsg::default(), 1e5, None, Xoshiro256PlusPlus::seed_from_u64(1), false);
        let far = 10 * 24 * 3_600 * US_PER_S;
        let (a, b) = (open.at(far), open.at(far + US_PER_S));
        assert!(a.is_finite() && b.is_finite() && a != b);
    }
}
