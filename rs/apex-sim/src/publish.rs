//! Bybit-like L2 output: snapshot then deltas of the top N levels, with contiguous update ids, at the caller's cadence.

use std::borrow::Cow;

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

impl L2Update {
    /// The message's header.
    #[must_use]
    pub fn tick(&self) -> BookTick {
        BookTick { kind: self.kind, ts_us: self.ts_us, update_id: self.update_id, seq: self.seq }
    }
}

/// What a message of the stream says besides its levels: enough for a consumer that reads the publisher's top of
/// book instead of the message's changes (see [`BookPublisher::tick`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookTick {
    pub kind: UpdateKind,
    /// Simulated time of the message in microseconds.
    pub ts_us: i64,
    /// Bybit's `u`: 1 for the first message, then +1 per message.
    pub update_id: u64,
    /// Bybit's `seq`: the engine's [`MatchingEngine::sequence`] when the message was made.
    pub seq: u64,
}

/// Turns an engine's book into a stream of L2 messages for one depth. The caller decides the cadence by calling
/// [`BookPublisher::publish`] (e.g. every 10 ms of simulated time for depth 50, as Bybit does). A publisher follows
/// one engine (or its clones, cloned with it): it skips a tick at which the engine's sequence has not moved.
#[derive(Debug, Clone)]
pub struct BookPublisher {
    depth: usize,
    update_id: u64,
    published: Option<(Vec<Level>, Vec<Level>)>,
    /// Before a tick, the top N levels of each side now, kept between calls so a tick that changes nothing allocates
    /// nothing; after a tick that published, the levels the message before it left (what its delta is taken from).
    current: (Vec<Level>, Vec<Level>),
    /// How many leading levels of each side the last delta left unchanged (where its merge starts).
    same: (usize, usize),
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
        Ok(BookPublisher {
            depth,
            update_id: 0,
            published: None,
            current: (Vec::new(), Vec::new()),
            same: (0, 0),
            read_at: None,
        })
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
        let tick = self.snapshot_tick(engine, ts_us);
        self.message(&tick)
    }

    fn snapshot_tick(&mut self, engine: &MatchingEngine, ts_us: i64) -> BookTick {
        let bids = engine.top_n(Side::Buy, self.depth);
        let asks = engine.top_n(Side::Sell, self.depth);
        self.published = Some((bids, asks));
        self.read_at = Some(engine.sequence());
        self.update_id += 1;
        BookTick { kind: UpdateKind::Snapshot, ts_us, update_id: self.update_id, seq: engine.sequence() }
    }

    /// The message for this tick: a snapshot the first time (and always at depth 1, which Bybit sends as snapshots
    /// only), afterwards a delta of the levels that changed since the last message, or `None` when nothing did.
    pub fn publish(&mut self, engine: &MatchingEngine, ts_us: i64) -> Option<L2Update> {
        let tick = self.tick(engine, ts_us)?;
        Some(self.message(&tick))
    }

    /// [`BookPublisher::publish`] without making the message: the book moves on and the update id counts, and
    /// [`BookPublisher::message`] makes the message afterwards, for a consumer that wants more than
    /// [`BookPublisher::published`].
    pub fn tick(&mut self, engine: &MatchingEngine, ts_us: i64) -> Option<BookTick> {
        let Some((old_bids, old_asks)) = &mut self.published else {
            return Some(self.snapshot_tick(engine, ts_us));
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
        // What is published now becomes the reference; the old lists stay for the delta and are the next tick's
        // buffers.
        std::mem::swap(old_bids, bids);
        std::mem::swap(old_asks, asks);
        self.same = (same_bids, same_asks);
        self.update_id += 1;
        // Bybit sends depth 1 as snapshots only.
        let kind = if self.depth == 1 { UpdateKind::Snapshot } else { UpdateKind::Delta };
        Some(BookTick { kind, ts_us, update_id: self.update_id, seq: engine.sequence() })
    }

    /// The message of the last tick (`tick` is what [`BookPublisher::tick`] returned): all levels for a snapshot,
    /// the levels that changed for a delta.
    #[must_use]
    pub fn message(&self, tick: &BookTick) -> L2Update {
        let (bids, asks) = self.published();
        let (bids, asks) = match tick.kind {
            UpdateKind::Snapshot => (bids.to_vec(), asks.to_vec()),
            UpdateKind::Delta => {
                let (old_bids, old_asks) = &self.current;
                (diff(old_bids, bids, self.same.0, |a, b| a > b), diff(old_asks, asks, self.same.1, |a, b| a < b))
            }
        };
        L2Update { kind: tick.kind, ts_us: tick.ts_us, update_id: tick.update_id, seq: tick.seq, bids, asks }
    }
}

/// A tick of the simulator's own publisher as a strategy receives it: the message's header and the top levels after
/// it, the book a copy rebuilt from every message would hold. The message itself is made only when asked for, since
/// most readers of the simulated book read its top.
#[derive(Debug, Clone, Copy)]
pub struct EngineBook<'a> {
    tick: BookTick,
    publisher: &'a BookPublisher,
    /// The message, when the market already made it (to record it).
    made: Option<&'a L2Update>,
}

impl<'a> EngineBook<'a> {
    /// The last tick of `publisher`, with its message if already made.
    #[must_use]
    pub fn new(tick: BookTick, publisher: &'a BookPublisher, made: Option<&'a L2Update>) -> EngineBook<'a> {
        EngineBook { tick, publisher, made }
    }

    /// The message's header.
    #[must_use]
    pub fn tick(&self) -> &BookTick {
        &self.tick
    }

    /// The top levels of each side after the message (best first, the stream's depth).
    #[must_use]
    pub fn top(&self) -> (&'a [Level], &'a [Level]) {
        self.publisher.published()
    }

    /// The message: a snapshot, or the levels that changed.
    #[must_use]
    pub fn message(&self) -> Cow<'a, L2Update> {
        self.made.map_or_else(|| Cow::Owned(self.publisher.message(&self.tick)), Cow::Borrowed)
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
