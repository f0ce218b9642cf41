//! The execution (IEL) observation: what the tactic of a parent order decides on, from the top of the book, the
//! mid's recent volatility and the parent's own progress. The simulator's training environment and the live engine
//! both build it here, so a policy sees in production exactly the numbers it was trained on.
//!
//! Every value is scaled to a few units so a small network needs no normalization; see [`observation`].

use std::collections::VecDeque;

use apex_book::{L2Book, Level};
use apex_core::{Scale, Side};

/// Names of the observation vector, in order.
pub const OBSERVATION_NAMES: [&str; OBSERVATION_LEN] = [
    "remaining_frac",
    "time_left_frac",
    "behind_schedule",
    "spread_10bps",
    "l1_imbalance_signed",
    "mid_move_10bps_signed",
    "resting_child",
    "vol_10bps",
    "log_opposite_depth_ratio",
];
/// Length of the observation vector.
pub const OBSERVATION_LEN: usize = 9;

/// One observation.
pub type Observation = [f64; OBSERVATION_LEN];

/// Mid samples in the volatility estimate's window (plus one for the first return).
pub const VOL_WINDOW_SAMPLES: usize = 60;
/// Fewest returns the volatility estimate needs.
const VOL_MIN_RETURNS: usize = 10;

/// The touch of a book: best bid and best ask in integer units (price units of `price_scale`, quantity units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopOfBook {
    pub bid: Option<Level>,
    pub ask: Option<Level>,
    pub price_scale: Scale,
}

impl TopOfBook {
    /// The touch of `book` as it stands.
    #[must_use]
    pub fn of(book: &L2Book) -> TopOfBook {
        TopOfBook { bid: book.best_bid(), ask: book.best_ask(), price_scale: book.price_scale() }
    }
}

/// Where a parent order stands at a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParentState {
    pub side: Side,
    /// Parent size and what is left of it, in lots.
    pub size_lots: i64,
    pub remaining_lots: i64,
    /// Decisions per episode and decisions already taken.
    pub steps: usize,
    pub step: usize,
    /// Mid when the parent arrived, quote units.
    pub arrival_mid: f64,
    /// A child order of the parent rests in the book.
    pub resting_child: bool,
    /// Quantity units per lot.
    pub lot_units: i64,
}

/// The observation of `parent` with the book's touch `top`, its mid now (`mid`, quote units: the last known mid
/// while a side is empty) and the mid's volatility (basis points per sqrt(minute), `None` while unknown):
///
/// - `remaining_frac`, `time_left_frac` and their difference `behind_schedule`;
/// - `spread_10bps`: the spread in units of 10 bps of the mid, capped at 5 (5 when a side is empty);
/// - `l1_imbalance_signed`: `(bid qty - ask qty) / (bid qty + ask qty)` at the touch, times +1 for a buy parent and
///   -1 for a sell (0 when a side is empty);
/// - `mid_move_10bps_signed`: the mid's move since arrival in units of 10 bps, positive when it moved against the
///   parent (up for a buy, down for a sell), clamped to +-5;
/// - `resting_child`: 1 when a child rests, else 0;
/// - `vol_10bps`: the volatility in units of 10 bps, clamped to [0, 5] (0 while unknown);
/// - `log_opposite_depth_ratio`: `ln(1 + lots at the opposite touch / remaining lots)`, capped at 5.
///
/// # Panics
/// In debug builds, when `parent.step` exceeds `parent.steps`.
#[must_use]
pub fn observation(parent: &ParentState, top: &TopOfBook, mid: f64, vol_bps: Option<f64>) -> Observation {
    let sign = f64::from(parent.side.sign());
    let remaining = parent.remaining_lots;
    let remaining_frac = remaining as f64 / parent.size_lots as f64;
    let time_left_frac = (parent.steps - parent.step) as f64 / parent.steps as f64;
    let (bid, ask) = (top.bid, top.ask);
    let spread = match (bid, ask) {
        (Some(b), Some(a)) => (top.price_scale.to_f64(a.price - b.price) / mid * 1e4 / 10.0).min(5.0),
        _ => 5.0,
    };
    let imbalance = match (bid, ask) {
        (Some(b), Some(a)) if b.qty + a.qty > 0 => (b.qty - a.qty) as f64 / (b.qty + a.qty) as f64 * sign,
        _ => 0.0,
    };
    let arrival = parent.arrival_mid;
    let mid_move = ((mid - arrival) / arrival * 1e4 * sign / 10.0).clamp(-5.0, 5.0);
    let resting = f64::from(u8::from(parent.resting_child));
    let vol = (vol_bps.unwrap_or(0.0) / 10.0).clamp(0.0, 5.0);
    let opposite = if parent.side == Side::Buy { ask } else { bid };
    let opposite_lots = opposite.map_or(0, |l| l.qty / parent.lot_units) as f64;
    let depth = (opposite_lots / remaining.max(1) as f64).ln_1p().min(5.0);
    [remaining_frac, time_left_frac, remaining_frac - time_left_frac, spread, imbalance, mid_move, resting, vol, depth]
}

/// Volatility of a mid sampled at a fixed cadence, in basis points per sqrt(minute), from the last
/// [`VOL_WINDOW_SAMPLES`] + 1 samples (`samples_per_minute` of them per minute): the sample standard deviation of
/// the log returns between finite positive samples, `None` with fewer than 10 such returns.
#[must_use]
pub fn realized_vol_bps(mids: &[f64], samples_per_minute: f64) -> Option<f64> {
    let window = &mids[mids.len().saturating_sub(VOL_WINDOW_SAMPLES + 1)..];
    let returns: Vec<f64> = window.windows(2).filter_map(|w| log_return(w[0], w[1])).collect();
    vol_of_returns(returns.iter().copied(), samples_per_minute)
}

/// The log return from one sample to the next, when both are finite and the first positive.
fn log_return(from: f64, to: f64) -> Option<f64> {
    (from.is_finite() && to.is_finite() && from > 0.0).then(|| (to / from).ln())
}

/// The estimate of [`realized_vol_bps`] from the window's returns, in order.
fn vol_of_returns(returns: impl Iterator<Item = f64> + Clone, samples_per_minute: f64) -> Option<f64> {
    let count = returns.clone().count();
    if count < VOL_MIN_RETURNS {
        return None;
    }
    let n = count as f64;
    let mean = returns.clone().sum::<f64>() / n;
    let var = returns.map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let per_minute = (var * samples_per_minute).sqrt();
    Some(per_minute * 1e4)
}

/// [`realized_vol_bps`] of a series that grows one sample at a time, bit for bit: each return is computed once,
/// when its sample arrives, instead of once per estimate for every sample of the window.
#[derive(Debug, Clone, Default)]
pub struct RollingVolatility {
    last: Option<f64>,
    /// One entry per pair of consecutive samples in the window, `None` where the pair has no return.
    returns: VecDeque<Option<f64>>,
}

impl RollingVolatility {
    /// The next sample (NaN while a side is empty).
    pub fn push(&mut self, mid: f64) {
        if let Some(last) = self.last {
            if self.returns.len() == VOL_WINDOW_SAMPLES {
                self.returns.pop_front();
            }
            self.returns.push_back(log_return(last, mid));
        }
        self.last = Some(mid);
    }

    /// [`realized_vol_bps`] of every sample pushed so far.
    #[must_use]
    pub fn vol_bps(&self, samples_per_minute: f64) -> Option<f64> {
        vol_of_returns(self.returns.iter().flatten().copied(), samples_per_minute)
    }
}

/// [`realized_vol_bps`] of a mid sampled on exchange time: the mid current at each multiple of `sample_ns` is one
/// sample (a late observation fills every sample time it passed with the mid it reports).
#[derive(Debug, Clone)]
pub struct MidVolatility {
    sample_ns: i64,
    next: Option<i64>,
    samples: RollingVolatility,
}

impl MidVolatility {
    /// # Panics
    /// When `sample_ns` is not positive.
    #[must_use]
    pub fn new(sample_ns: i64) -> MidVolatility {
        assert!(sample_ns > 0, "the mid sampling interval must be positive, got {sample_ns} ns");
        MidVolatility { sample_ns, next: None, samples: RollingVolatility::default() }
    }

    /// The mid is `mid` (NaN while a side is empty) at exchange time `ts`.
    pub fn on_mid(&mut self, ts: i64, mid: f64) {
        let mut next = self.next.unwrap_or_else(|| ts.div_euclid(self.sample_ns) * self.sample_ns);
        while next <= ts {
            self.samples.push(mid);
            next += self.sample_ns;
        }
        self.next = Some(next);
    }

    /// The current estimate (see [`realized_vol_bps`]).
    #[must_use]
    pub fn vol_bps(&self) -> Option<f64> {
        self.samples.vol_bps((crate::MINUTE / self.sample_ns) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SECOND;

    #[test]
    fn observation_by_hand() {
        let top = TopOfBook {
            bid: Some(Level::new(99_990, 30)),
            ask: Some(Level::new(100_010, 10)),
            price_scale: Scale::new(1).unwrap(),
        };
        let parent = ParentState {
            side: Side::Sell,
            size_lots: 40,
            remaining_lots: 10,
            steps: 4,
            step: 1,
            arrival_mid: 10_010.0,
            resting_child: true,
            lot_units: 5,
        };
        let o = observation(&parent, &top, 10_000.0, Some(12.0));
        assert_eq!(o[..3], [0.25, 0.75, -0.5]);
        assert!((o[3] - 2.0 / 10_000.0 * 1e3).abs() < 1e-12, "2 quote units of spread on 10000 = 2 bps");
        assert_eq!(o[4], -0.5, "more bid than ask is against a seller");
        assert!((o[5] - 10.0 / 10_010.0 * 1e3).abs() < 1e-12, "the mid fell: against a seller, positive");
        assert_eq!((o[6], o[7]), (1.0, 1.2));
        assert_eq!(o[8], (6.0_f64 / 10.0).ln_1p(), "30 units at the bid = 6 lots against 10 remaining");
        // The live engine reads the same touch from its L2 book.
        let mut book = L2Book::new(Scale::new(1).unwrap(), Scale::new(0).unwrap());
        let (bids, asks) = ([Level::new(99_990, 30), Level::new(99_980, 7)], [Level::new(100_010, 10)]);
        book.apply(apex_book::UpdateKind::Snapshot, 1, 1, 0, &bids, &asks).unwrap();
        assert_eq!(TopOfBook::of(&book), top);
        let empty = TopOfBook { bid: None, ask: None, ..top };
        let o = observation(&parent, &empty, 10_000.0, None);
        assert_eq!((o[3], o[4], o[7], o[8]), (5.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn streaming_volatility_equals_the_kernel_over_the_whole_history() {
        let mut stream = MidVolatility::new(SECOND);
        let mut history: Vec<f64> = Vec::new();
        let mut state = 7_u64;
        let mut ts = 0;
        for step in 0..2_000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ts += 100_000_000 + (state >> 40) as i64 % 400_000_000;
            let mid = if step % 97 == 0 { f64::NAN } else { 100.0 + (state >> 33) as f64 / 1e9 };
            while (history.len() as i64) * SECOND <= ts {
                history.push(mid);
            }
            stream.on_mid(ts, mid);
            let expected = realized_vol_bps(&history, 60.0);
            assert_eq!(stream.vol_bps().map(f64::to_bits), expected.map(f64::to_bits), "at {ts}");
        }
        assert!(stream.vol_bps().is_some());
    }

    proptest::proptest! {
        #[test]
        fn rolling_volatility_equals_the_kernel_bit_for_bit(
            mids in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => 99.0..101.0_f64,
                    1 => proptest::sample::select(vec![f64::NAN, 0.0, -1.0, f64::INFINITY]),
                ],
                0..200,
            ),
            samples_per_minute in 1.0..600.0_f64,
        ) {
            let mut rolling = RollingVolatility::default();
            for (k, &mid) in mids.iter().enumerate() {
                rolling.push(mid);
                let expected = realized_vol_bps(&mids[..=k], samples_per_minute);
                proptest::prop_assert_eq!(rolling.vol_bps(samples_per_minute).map(f64::to_bits), expected.map(f64::to_bits));
            }
        }
    }
}
