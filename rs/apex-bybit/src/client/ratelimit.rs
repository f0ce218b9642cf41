//! Client-side rate limits: a token bucket per endpoint group, kept in step with the exchange's
//! `X-Bapi-Limit-Status` / `X-Bapi-Limit-Reset-Timestamp` headers and blocked until the reset after a 10006.
//!
//! The bucket is the GCRA form of a token bucket (one "theoretical arrival time" instead of a float token count), so
//! its arithmetic is exact on integer nanoseconds.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::rest::path;

/// Endpoints that share one limit. Bybit limits per UID and endpoint in a rolling second; market data shares the IP
/// limit (600 requests per 5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointGroup {
    Market,
    OrderCreate,
    OrderAmend,
    OrderCancel,
    OrderCancelAll,
    OrderQuery,
    Execution,
    Position,
    Wallet,
}

impl EndpointGroup {
    /// The group of a REST path; unknown paths count as market data (the shared IP limit).
    #[must_use]
    pub fn of_path(endpoint: &str) -> EndpointGroup {
        match endpoint {
            path::ORDER_CREATE => EndpointGroup::OrderCreate,
            path::ORDER_AMEND => EndpointGroup::OrderAmend,
            path::ORDER_CANCEL => EndpointGroup::OrderCancel,
            path::ORDER_CANCEL_ALL => EndpointGroup::OrderCancelAll,
            path::ORDER_REALTIME | path::ORDER_HISTORY => EndpointGroup::OrderQuery,
            path::EXECUTION_LIST => EndpointGroup::Execution,
            path::POSITION_LIST => EndpointGroup::Position,
            path::WALLET_BALANCE => EndpointGroup::Wallet,
            _ => EndpointGroup::Market,
        }
    }

    /// Bybit's default limit for a non-VIP account (reference §4.7): requests per second and burst.
    #[must_use]
    pub fn default_limit(self) -> Limit {
        match self {
            EndpointGroup::OrderCreate
            | EndpointGroup::OrderAmend
            | EndpointGroup::OrderCancel
            | EndpointGroup::OrderCancelAll => Limit { per_second: 10, burst: 10 },
            EndpointGroup::OrderQuery | EndpointGroup::Execution | EndpointGroup::Position | EndpointGroup::Wallet => {
                Limit { per_second: 50, burst: 50 }
            }
            // 100 burst + 100/s keeps any 5 s window at or under the IP limit of 600.
            EndpointGroup::Market => Limit { per_second: 100, burst: 100 },
        }
    }
}

/// A sustained rate and the burst allowed on top of an idle period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_second: u32,
    pub burst: u32,
}

/// A token bucket of `burst` tokens refilled at `per_second`, in GCRA form, plus a block set from the exchange's
/// answers. Pure: every method takes the current instant.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next request at the sustained rate.
    tat: Instant,
    blocked_until: Option<Instant>,
}

impl TokenBucket {
    /// # Panics
    /// When `per_second` or `burst` is 0.
    #[must_use]
    pub fn new(limit: Limit, now: Instant) -> TokenBucket {
        assert!(limit.per_second > 0 && limit.burst > 0, "a rate limit needs a positive rate and burst");
        let interval = Duration::from_nanos(1_000_000_000 / u64::from(limit.per_second));
        TokenBucket { interval, tolerance: interval * (limit.burst - 1), tat: now, blocked_until: None }
    }

    /// Takes a token, or says how long to wait for one (nothing is taken then).
    ///
    /// # Errors
    /// The wait before a token is available.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        let tat = self.tat.max(now);
        let earliest = tat.checked_sub(self.tolerance).unwrap_or(now);
        if earliest > now {
            return Err(earliest - now);
        }
        self.tat = tat + self.interval;
        Ok(())
    }

    /// Tokens available right now (without taking one).
    #[must_use]
    pub fn available(&self, now: Instant) -> u32 {
        if self.blocked_until.is_some_and(|until| now < until) {
            return 0;
        }
        let tat = self.tat.max(now);
        let slack = (now + self.tolerance).saturating_duration_since(tat);
        if now + self.tolerance < tat {
            return 0;
        }
        u32::try_from(slack.as_nanos() / self.interval.as_nanos()).unwrap_or(u32::MAX).saturating_add(1)
    }

    /// No token before `until` (a 10006, or a `Limit-Status` of 0); the bucket is full again from then on, as the
    /// exchange's window restarts.
    pub fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |b| b.max(until)));
        self.tat = self.tat.max(until);
    }

    /// The exchange said `remaining` requests are left in its window, which resets at `reset_at`: never allow more
    /// than that before the reset.
    pub fn observe(&mut self, remaining: u32, reset_at: Instant, now: Instant) {
        if remaining == 0 {
            self.block_until(reset_at);
            return;
        }
        if self.available(now) > remaining {
            // Exactly `remaining` tokens left: the next request must be at or before tat - tolerance.
            self.tat = now + self.tolerance - self.interval * (remaining - 1);
        }
    }
}

/// The buckets of every endpoint group, shared by the tasks of one client.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<BTreeMap<EndpointGroup, TokenBucket>>,
    limits: BTreeMap<EndpointGroup, Limit>,
}

impl RateLimiter {
    /// Bybit's default limits, with `overrides` replacing some groups'.
    #[must_use]
    pub fn new(overrides: &[(EndpointGroup, Limit)]) -> RateLimiter {
        let groups = [
            EndpointGroup::Market,
            EndpointGroup::OrderCreate,
            EndpointGroup::OrderAmend,
            EndpointGroup::OrderCancel,
            EndpointGroup::OrderCancelAll,
            EndpointGroup::OrderQuery,
            EndpointGroup::Execution,
            EndpointGroup::Position,
            EndpointGroup::Wallet,
        ];
        let mut limits: BTreeMap<EndpointGroup, Limit> = groups.iter().map(|&g| (g, g.default_limit())).collect();
        limits.extend(overrides.iter().copied());
        RateLimiter { buckets: Mutex::new(BTreeMap::new()), limits }
    }

    fn with_bucket<R>(&self, group: EndpointGroup, f: impl FnOnce(&mut TokenBucket, Instant) -> R) -> R {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(group).or_insert_with(|| TokenBucket::new(self.limits[&group], now));
        f(bucket, now)
    }

    /// Waits for a token of `group`.
    pub async fn acquire(&self, group: EndpointGroup) {
        loop {
            match self.with_bucket(group, |bucket, now| bucket.try_acquire(now)) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Applies an answer's `X-Bapi-Limit-Status` (remaining) and the reset instant derived from
    /// `X-Bapi-Limit-Reset-Timestamp`.
    pub fn observe(&self, group: EndpointGroup, remaining: u32, reset_at: Instant) {
        self.with_bucket(group, |bucket, now| bucket.observe(remaining, reset_at, now));
    }

    /// Blocks `group` until `until` (after a 10006).
    pub fn block_until(&self, group: EndpointGroup, until: Instant) {
        self.with_bucket(group, |bucket, _| bucket.block_until(until));
    }

    /// Tokens of `group` available now.
    #[must_use]
    pub fn available(&self, group: EndpointGroup) -> u32 {
        self.with_bucket(group, |bucket, now| bucket.available(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook token bucket on integer nanoseconds: `level` is tokens × interval, refilled by elapsed time,
    /// capped at burst × interval; a request needs one interval's worth.
    struct Reference {
        interval: u128,
        cap: u128,
        level: u128,
        last: u128,
    }

    impl Reference {
        fn new(limit: Limit) -> Reference {
            let interval = u128::from(1_000_000_000 / u64::from(limit.per_second));
            let cap = interval * u128::from(limit.burst);
            Reference { interval, cap, level: cap, last: 0 }
        }

        fn try_acquire(&mut self, now: u128) -> bool {
            self.level = (self.level + (now - self.last)).min(self.cap);
            self.last = now;
            if self.level >= self.interval {
                self.level -= self.interval;
                true
            } else {
                false
            }
        }
    }

    proptest! {
        /// Same decisions as the reference on any sequence of request times.
        #[test]
        fn agrees_with_the_reference(per_second in 1u32..200, burst in 1u32..30,
                                     gaps in proptest::collection::vec(0u64..80_000_000, 1..300)) {
            let limit = Limit { per_second, burst };
            let start = Instant::now();
            let mut bucket = TokenBucket::new(limit, start);
            let mut reference = Reference::new(limit);
            let mut t = 0u64;
            for gap in gaps {
                t += gap;
                let now = start + Duration::from_nanos(t);
                let available = bucket.available(now);
                let granted = bucket.try_acquire(now).is_ok();
                prop_assert_eq!(granted, reference.try_acquire(u128::from(t)), "at {} ns", t);
                prop_assert_eq!(granted, available > 0);
            }
        }

        /// After the exchange reports `remaining`, exactly that many requests pass before time moves.
        #[test]
        fn observe_caps_the_budget(burst in 1u32..40, remaining in 0u32..40, used in 0u32..40) {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(Limit { per_second: burst, burst }, start);
            for _ in 0..used.min(burst) {
                bucket.try_acquire(start).unwrap();
            }
            let before = bucket.available(start);
            bucket.observe(remaining, start + Duration::from_secs(1), start);
            let after = bucket.available(start);
            prop_assert_eq!(after, before.min(remaining));
            let mut granted = 0;
            while bucket.try_acquire(start).is_ok() {
                granted += 1;
            }
            prop_assert_eq!(granted, after);
        }
    }

    #[test]
    fn wait_is_exact_and_blocks_hold() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(Limit { per_second: 10, burst: 2 }, start);
        assert!(bucket.try_acquire(start).is_ok());
        assert!(bucket.try_acquire(start).is_ok());
        assert_eq!(bucket.try_acquire(start), Err(Duration::from_millis(100)));
        assert!(bucket.try_acquire(start + Duration::from_millis(100)).is_ok());
        bucket.block_until(start + Duration::from_secs(3));
        assert_eq!(bucket.try_acquire(start + Duration::from_secs(1)), Err(Duration::from_secs(2)));
        assert_eq!(bucket.available(start + Duration::from_secs(1)), 0);
        // From the reset on, a full burst again.
        let reset = start + Duration::from_secs(3);
        assert_eq!(bucket.available(reset), 2);
        assert!(bucket.try_acquire(reset).is_ok());
        assert!(bucket.try_acquire(reset).is_ok());
        assert!(bucket.try_acquire(reset).is_err());
    }

    #[test]
    fn groups_of_paths() {
        assert_eq!(EndpointGroup::of_path(path::ORDER_CREATE), EndpointGroup::OrderCreate);
        assert_eq!(EndpointGroup::of_path(path::ORDER_HISTORY), EndpointGroup::OrderQuery);
        assert_eq!(EndpointGroup::of_path(path::KLINE), EndpointGroup::Market);
        assert_eq!(EndpointGroup::OrderCreate.default_limit().per_second, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_on_tokio_time() {
        let limiter = RateLimiter::new(&[(EndpointGroup::OrderCreate, Limit { per_second: 5, burst: 1 })]);
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire(EndpointGroup::OrderCreate).await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        limiter.block_until(EndpointGroup::Wallet, Instant::now() + Duration::from_secs(5));
        assert_eq!(limiter.available(EndpointGroup::Wallet), 0);
        limiter.acquire(EndpointGroup::Wallet).await;
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }
}
