//! Reconnect delays: exponential growth capped at a maximum, with "equal jitter" (half fixed, half random) so many
//! clients cut at once do not return in lockstep. Seeded, so a test sees the same delays every run.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Jittered exponential backoff.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: Xoshiro256PlusPlus,
}

impl Backoff {
    #[must_use]
    pub fn new(base: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff { base, max: max.max(base), attempt: 0, rng: Xoshiro256PlusPlus::seed_from_u64(seed) }
    }

    /// The ceiling of the next delay: `base * 2^attempt`, capped at `max`.
    #[must_use]
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.checked_mul(factor).map_or(self.max, |d| d.min(self.max))
    }

    /// The next delay, uniform in `[ceiling / 2, ceiling]`; each call raises the ceiling.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(self.rng.random_range(0..=spread));
        self.attempt = self.attempt.saturating_add(1);
        half + jitter
    }

    /// Back to the base delay, after a connection proved healthy.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Delays handed out since the last reset.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn delays_stay_in_the_jitter_band(base_ms in 1u64..2_000, max_ms in 1u64..60_000, seed: u64, n in 1usize..40) {
            let (base, max) = (Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            let mut backoff = Backoff::new(base, max, seed);
            let mut previous_ceiling = Duration::ZERO;
            for i in 0..n {
                // Reference: base * 2^i capped at max(base, max), computed in u128 milliseconds.
                let expected = (u128::from(base_ms) << i.min(60)).min(u128::from(max_ms.max(base_ms)));
                let ceiling = backoff.ceiling();
                prop_assert_eq!(ceiling.as_millis(), expected);
                prop_assert!(ceiling >= previous_ceiling);
                previous_ceiling = ceiling;
                let delay = backoff.next_delay();
                prop_assert!(delay >= ceiling / 2 && delay <= ceiling, "{:?} outside [{:?}, {:?}]", delay, ceiling / 2, ceiling);
            }
            backoff.reset();
            prop_assert_eq!(backoff.ceiling(), base);
        }
    }

    #[test]
    fn seeded_and_jittered() {
        let delays = |seed| {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10), seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(delays(7), delays(7));
        assert_ne!(delays(7), delays(8));
    }
}
