//! Bybit-like L2 output: snapshot then deltas of the top N levels, with contiguous update ids, at the caller's cadence.

use apex_book::{Level, UpdateKind};
use apex_core::Side;

use crate::{MatchingEngine, SimError};

/// One `orderbook.{depth}.{symbol}` message: absolute sizes per price, size 0 removing a level (also when it
/// merely left the top N, as on Bybit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Update {
    pub kind: UpdateKind,
    /// Simulated time of the message in microseconds.
    pub ts_us: i64,
    /// Bybit's `u`: 1 for the first message, then +1 per message.
    pub update_id: u64,
    /// Bybit's `seq`: the engine's [`MatchingEngine::sequence`] when the message was made.
    pub seq: u64,
    /// Best first.
    pub bids: Vec<Level>,
    /// Best first.
    pub asks: Vec<Level>,
}

/// Turns an engine's book into a stream of L2 messages for one depth. The caller decides the cadence by calling
/// [`BookPublisher::publish`] (e.g. every 10 ms of simulated time for depth 50, as Bybit does). A publisher follows
/// one engine (or its clones, cloned with it): it skips a tick at which the engine's sequence has not moved.
#[derive(Debug, Clone)]
pub struct BookPublisher {
    depth: usize,
    update_id: u64,
    published: Option<(Vec<Level>, Vec<Level>)>,
    /// The top N levels of each side now, kept between calls so a tick that changes nothing allocates nothing.
    current: (Vec<Level>, Vec<Level>),
    /// The engine's [`MatchingEngine::sequence`] when the book was last read: every call that changes the book
    /// moves it, so a tick that finds it where it was has nothing to publish without reading the book.
    read_at: Option<u64>,
}

impl BookPublisher {
    /// # Errors
    /// `ZeroDepth` for a depth of 0.
    pub fn new(depth: usize) -> Result<BookPublisher, SimError> {
        if depth == 0 {
            return Err(SimError::ZeroDepth);
        }
        Ok(BookPublisher { depth, update_id: 0, published: None, current: (Vec::new(), Vec::new()), read_at: None })
    }

    /// The top N levels of each side as of the last message (best first): the book a consumer of every message holds.
    #[must_use]
    pub fn published(&self) -> (&[Level], &[Level]) {
        self.published.as_ref().map_or((&[][..], &[][..]), |(bids, asks)| (bids.as_slice(), asks.as_slice()))
    }

    /// Number of levels per side the messages cover.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// A snapshot of the top N levels now, whatever was published before.
    pub fn snapshot(&mut self, engine: &MatchingEngine, ts_us: i64) -> L2Update {
        let bids = engine.top_n(Side::Buy, self.depth);
        let asks = engine.top_n(Side::Sell, self.depth);
        self.update_id += 1;
        let update = L2Update {
            kind: UpdateKind::Snapshot,
            ts_us,
            update_id: self.update_id,
            seq: engine.sequence(),
            bids: bids.clone(),
            asks: asks.clone(),
        };
        self.published = Some((bids, asks));
        self.read_at = Some(engine.sequence());
        update
    }

    /// The message for this tick: a snapshot the first time (and always at depth 1, which Bybit sends as snapshots
    /// only), afterwards a delta of the levels that changed since the last message, or `None` when nothing did.
    pub fn publish(&mut self, engine: &MatchingEngine, ts_us: i64) -> Option<L2Update> {
        let Some((old_bids, old_asks)) = &mut self.published else {
            return Some(self.snapshot(engine, ts_us));
        };
        if self.read_at == Some(engine.sequence()) {
            return None;
        }
        self.read_at = Some(engine.sequence());
        let (bids, asks) = &mut self.current;
        engine.top_n_into(Side::Buy, self.depth, bids);
        engine.top_n_into(Side::Sell, self.depth, asks);
        // One pass finds both whether anything changed and where the delta's merge starts.
        let (same_bids, same_asks) = (same_prefix(old_bids, bids), same_prefix(old_asks, asks));
        let unchanged = |same: usize, old: &[Level], new: &[Level]| same == old.len() && same == new.len();
        if unchanged(same_bids, old_bids, bids) && unchanged(same_asks, old_asks, asks) {
            return None;
        }
        if self.depth == 1 {
            return Some(self.snapshot(engine, ts_us));
        }
        let bid_changes = diff(old_bids, bids, same_bids, |a, b| a > b);
        let ask_changes = diff(old_asks, asks, same_asks, |a, b| a < b);
        // What is published now becomes the reference; the old lists are the next call's buffers.
        std::mem::swap(old_bids, bids);
        std::mem::swap(old_asks, asks);
        self.update_id += 1;
        Some(L2Update {
            kind: UpdateKind::Delta,
            ts_us,
            update_id: self.update_id,
            seq: engine.sequence(),
            bids: bid_changes,
            asks: ask_changes,
        })
    }
}

/// How many leading levels two lists share.
fn same_prefix(old: &[Level], new: &[Level]) -> usize {
    old.iter().zip(new).take_while(|(o, n)| o == n).count()
}

/// Levels that differ between two best-first lists whose first `same` levels are equal, best first: new or changed
/// sizes, and 0 for vanished prices.
fn diff(old: &[Level], new: &[Level], same: usize, better: impl Fn(i64, i64) -> bool) -> Vec<Level> {
    // Most ticks change a level or two: room for a few saves the vector's first regrowths.
    let mut changes = Vec::with_capacity(4);
    // The merge walks the two lists as slices, so no step checks an index.
    let (mut old, mut new) = (&old[same..], &new[same..]);
    while let ([o, old_rest @ ..], [n, new_rest @ ..]) = (old, new) {
        if o == n {
            // Past a change the lists mostly agree again: skip the whole equal run in one tight loop.
            let run = same_prefix(old, new);
            (old, new) = (&old[run..], &new[run..]);
        } else if o.price == n.price {
            changes.push(*n);
            (old, new) = (old_rest, new_rest);
        } else if better(o.price, n.price) {
            changes.push(Level::new(o.price, 0));
            old = old_rest;
        } else {
            changes.push(*n);
            new = new_rest;
        }
    }
    // One list is used up: what is left of the other vanished or is new.
    changes.extend(old.iter().map(|o| Level::new(o.price, 0)));
    changes.extend_from_slice(new);
    changes
}
