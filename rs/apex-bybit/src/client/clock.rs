//! Wall-clock time for request timestamps, and the offset to the exchange's clock measured from `/v5/market/time`.
//!
//! Only timestamps that go on the wire come from here; every timeout and interval uses tokio's clock, so tests can
//! pause or advance time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as this machine sees them. Injectable so tests can run a skewed clock.
pub trait WallClock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> i64 {
        // A clock before 1970 is a broken machine; 0 then makes every signed request fail loudly with 10002.
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// The local wall clock plus the measured offset to the exchange: what request timestamps are made of.
pub struct ClockSync {
    wall: Arc<dyn WallClock>,
    offset_ms: AtomicI64,
}

impl ClockSync {
    #[must_use]
    pub fn new(wall: Arc<dyn WallClock>) -> ClockSync {
        ClockSync { wall, offset_ms: AtomicI64::new(0) }
    }

    /// The exchange's time now, as best known (local time + offset).
    #[must_use]
    pub fn server_now_ms(&self) -> i64 {
        self.wall.now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// The local wall clock, uncorrected.
    #[must_use]
    pub fn local_now_ms(&self) -> i64 {
        self.wall.now_ms()
    }

    #[must_use]
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Records a `/v5/market/time` answer: `server_ms` was read by the server between `sent_ms` and `received_ms`
    /// (local), so it corresponds to the midpoint. Returns the new offset.
    pub fn observe(&self, sent_ms: i64, server_ms: i64, received_ms: i64) -> i64 {
        let midpoint = sent_ms + (received_ms - sent_ms) / 2;
        let offset = server_ms - midpoint;
        self.offset_ms.store(offset, Ordering::Relaxed);
        offset
    }
}

impl std::fmt::Debug for ClockSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockSync").field("offset_ms", &self.offset_ms()).finish_non_exhaustive()
    }
}

/// A clock that reads a shared value; tests move it by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    #[must_use]
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(now_ms))
    }

    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::Relaxed);
    }
}

impl WallClock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_from_the_midpoint() {
        let wall = Arc::new(ManualClock::new(1_000));
        let sync = ClockSync::new(wall.clone());
        // Sent at 1000, answered at 1100 local; the server said 5050 → at local 1050 the server read 5050.
        assert_eq!(sync.observe(1_000, 5_050, 1_100), 4_000);
        wall.set(2_000);
        assert_eq!(sync.server_now_ms(), 6_000);
        assert_eq!(sync.local_now_ms(), 2_000);
        assert_eq!(sync.observe(2_000, 1_990, 2_020), -20);
        assert_eq!(sync.server_now_ms(), 1_980);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
