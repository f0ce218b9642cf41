//! The venue's two clocks: the wall clock (server time, request timestamps, the recv_window rule) and market time
//! (the simulation, running `speed` times faster, which stamps every market message).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch.
#[must_use]
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Maps wall-clock instants to simulated time and simulated time to the epoch milliseconds of market messages.
///
/// Market time starts at the wall-clock time the venue started and runs `speed` times faster: at speed 1 a
/// message's `ts` is the wall clock, at speed 10 ten simulated seconds pass per wall second. Server time
/// (`/v5/market/time`, the `time` of REST answers, request signing) is always the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct VenueClock {
    start: Instant,
    start_epoch_ms: i64,
    speed: f64,
}

impl VenueClock {
    /// A clock whose simulated time 0 is now.
    #[must_use]
    pub fn start(speed: f64) -> VenueClock {
        VenueClock { start: Instant::now(), start_epoch_ms: wall_ms(), speed }
    }

    /// Simulated microseconds at a wall-clock instant.
    #[must_use]
    pub fn sim_us(&self, at: Instant) -> i64 {
        let wall = at.saturating_duration_since(self.start).as_secs_f64();
        (wall * self.speed * 1e6) as i64
    }

    /// Simulated microseconds now.
    #[must_use]
    pub fn sim_now_us(&self) -> i64 {
        self.sim_us(Instant::now())
    }

    /// Epoch milliseconds of simulated time (`ts`, `T`, `cts`, execution and order times).
    #[must_use]
    pub fn market_ms(&self, sim_us: i64) -> i64 {
        self.start_epoch_ms + sim_us / 1_000
    }

    /// Simulated microseconds of an epoch-millisecond market time (queries with `start`/`end`).
    #[must_use]
    pub fn sim_us_of_market_ms(&self, market_ms: i64) -> i64 {
        (market_ms - self.start_epoch_ms).saturating_mul(1_000)
    }

    #[must_use]
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Wall-clock time (ms) the market started.
    #[must_use]
    pub fn start_epoch_ms(&self) -> i64 {
        self.start_epoch_ms
    }
}
