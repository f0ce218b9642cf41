//! The L2 book itself: two sides indexed by price, the V5 snapshot/delta rules, and the depth queries features need.

use std::collections::BTreeMap;

use apex_core::{Scale, Side};
use thiserror::Error;

use crate::occupancy::Occupancy;

/// One price level in integer units of the book's price and quantity scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level {
    pub price: i64,
    pub qty: i64,
}

impl Level {
    #[must_use]
    pub fn new(price: i64, qty: i64) -> Level {
        Level { price, qty }
    }
}

/// What a message is: Bybit's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    Snapshot,
    Delta,
}

/// Where the book stands in the venue's update-id sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// No snapshot seen yet: deltas are dropped and counted.
    AwaitingFirstSnapshot,
    /// The book mirrors the venue as of update id `last_update_id`.
    Synced { last_update_id: u64 },
    /// A gap was seen after `last_update_id`; deltas are refused until the next snapshot.
    Stale { last_update_id: u64 },
}

/// A successfully handled message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The book was replaced; `rebased` when the snapshot's id was below the previous position (or `u` = 1).
    Snapshot {
        rebased: bool,
    },
    Delta,
    /// A delta that arrived before any snapshot: ignored, as the protocol requires, and counted.
    DroppedBeforeSnapshot,
}

/// Everything that makes a message unusable or the resulting book suspect.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BookError {
    /// A delta whose id is not the successor of the book's position. Not applied; the book is now stale.
    #[error("sequence gap: expected update id {expected}, got {got}")]
    Gap { expected: u64, got: u64 },
    /// A delta that arrived while the book waits for a snapshot after a gap. Not applied.
    #[error("update id {got} refused: the book is stale since a gap and waits for a snapshot")]
    AwaitingSnapshot { got: u64 },
    /// The message holds a negative quantity. Not applied.
    #[error("negative quantity {qty} at price {price} in update {update_id}")]
    NegativeQty { update_id: u64, price: i64, qty: i64 },
    /// The update was applied but left best bid >= best ask: an integrity error the caller must see.
    #[error("crossed book after update {update_id}: best bid {best_bid} >= best ask {best_ask}")]
    Crossed { update_id: u64, best_bid: i64, best_ask: i64 },
}

/// Counters of what the book has seen, for logs and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookStats {
    pub snapshots: u64,
    pub deltas: u64,
    pub rebases: u64,
    pub dropped_before_snapshot: u64,
    pub gaps: u64,
    pub refused_while_stale: u64,
    pub crossed: u64,
}

/// Levels of one stretch of a side, in order.
type Levels<'a> = Box<dyn Iterator<Item = Level> + 'a>;

/// Price units the dense window of a side covers at least, and at most.
const MIN_WINDOW: usize = 1024;
const MAX_WINDOW: usize = 1 << 16;
/// Levels from the touch whose spread sizes the window (four times their span, within the bounds above).
const SIZING_LEVELS: usize = 64;

/// One side of the book. The prices around the touch live in a dense window indexed by price (`qty[i]` is the size at
/// `lo + i` units, 0 for no level), with the count of its levels and the index of its best one; the rare levels
/// beyond it (a deep level, a stray quote) live in a sorted map. Setting a level in the window is an index, a store
/// and a bit of its occupancy; the next level from any slot (after the best one goes, or down the top N) is found by
/// the occupancy's words, 64 slots at a time; nothing is ever shifted. When the touch leaves the window, the window is
/// rebuilt around it, so a drifting price keeps the fast path.
#[derive(Debug, Clone, Default)]
struct Ladder<const BID: bool> {
    qty: Vec<i64>,
    /// The slots of `qty` above 0.
    occupied: Occupancy,
    lo: i64,
    count: usize,
    best: usize,
    outside: BTreeMap<i64, i64>,
}

impl<const BID: bool> Ladder<BID> {
    /// Whether price `a` is better than price `b` on this side.
    #[inline]
    fn better(a: i64, b: i64) -> bool {
        if BID { a > b } else { a < b }
    }

    #[inline]
    fn index(&self, price: i64) -> Option<usize> {
        let offset = usize::try_from(price.checked_sub(self.lo)?).ok()?;
        (offset < self.qty.len()).then_some(offset)
    }

    /// The best level of the window.
    #[inline]
    fn window_best(&self) -> Option<Level> {
        (self.count > 0).then(|| Level { price: self.lo + self.best as i64, qty: self.qty[self.best] })
    }

    /// The best level outside the window.
    #[inline]
    fn outside_best(&self) -> Option<Level> {
        let entry = if BID { self.outside.last_key_value() } else { self.outside.first_key_value() };
        entry.map(|(&price, &qty)| Level { price, qty })
    }

    #[inline]
    fn best(&self) -> Option<Level> {
        match (self.window_best(), self.outside_best()) {
            (Some(inside), Some(outside)) => {
                Some(if Self::better(outside.price, inside.price) { outside } else { inside })
            }
            (inside, outside) => inside.or(outside),
        }
    }

    fn len(&self) -> usize {
        self.count + self.outside.len()
    }

    /// Sets the size at `price` (absolute; 0 deletes the level).
    #[inline]
    fn set(&mut self, level: Level) {
        let Some(i) = self.index(level.price) else {
            if level.qty == 0 {
                self.outside.remove(&level.price);
                return;
            }
            self.outside.insert(level.price, level.qty);
            // The touch left the window: move the window to it.
            if self.window_best().is_none_or(|inside| Self::better(level.price, inside.price)) {
                self.recenter();
            }
            return;
        };
        let old = std::mem::replace(&mut self.qty[i], level.qty);
        match (old > 0, level.qty > 0) {
            (false, true) => {
                self.occupied.insert(i);
                self.count += 1;
                if self.count == 1 || Self::better(i as i64, self.best as i64) {
                    self.best = i;
                }
            }
            (true, false) => {
                self.occupied.remove(i);
                self.count -= 1;
                if i == self.best && self.count > 0 {
                    // The count guarantees a next level, and it is past the old best.
                    self.best = self.next_level(i).expect("a level beyond the old best");
                }
            }
            _ => {}
        }
    }

    /// Rebuilds the window around the current best level, four times as wide as the span of the levels nearest the
    /// touch (within bounds), with a quarter of it on the far side of the touch for the price to move into.
    fn recenter(&mut self) {
        let levels: Vec<Level> = self.best_first().collect();
        self.place(&levels);
    }

    /// Empties the side and puts `levels` (best first, positive sizes, distinct prices) back, the window placed
    /// around the first.
    fn place(&mut self, levels: &[Level]) {
        self.outside.clear();
        self.count = 0;
        let Some(touch) = levels.first() else {
            self.qty.clear();
            self.occupied.reset(0);
            return;
        };
        let span = levels.iter().take(SIZING_LEVELS).map(|l| l.price.abs_diff(touch.price)).max().unwrap_or(0);
        let width = usize::try_from(span.saturating_mul(4)).unwrap_or(MAX_WINDOW).clamp(MIN_WINDOW, MAX_WINDOW);
        let width = width.next_power_of_two().min(MAX_WINDOW);
        let room = (width / 4) as i64;
        self.lo = if BID { touch.price.saturating_sub(width as i64 - room) } else { touch.price.saturating_sub(room) };
        self.qty.clear();
        self.qty.resize(width, 0);
        self.occupied.reset(width);
        for &level in levels {
            match self.index(level.price) {
                Some(i) => {
                    self.qty[i] = level.qty;
                    self.occupied.insert(i);
                    self.count += 1;
                }
                None => {
                    self.outside.insert(level.price, level.qty);
                }
            }
        }
        if let Some(i) = self.index(touch.price) {
            self.best = i;
        }
    }

    /// Replaces every level: the positive ones; a price given twice keeps its last quantity, as successive inserts
    /// would.
    fn replace(&mut self, levels: &[Level]) {
        let mut sorted: Vec<Level> = levels.iter().filter(|l| l.qty > 0).copied().collect();
        // Best first; the stable sort keeps the input order of equal prices, and the dedup keeps the later one.
        sorted.sort_by_key(|level| if BID { -level.price } else { level.price });
        sorted.dedup_by(|later, kept| {
            let same = later.price == kept.price;
            if same {
                kept.qty = later.qty;
            }
            same
        });
        self.place(&sorted);
    }

    /// The window's next level after slot `i`, away from the touch.
    #[inline]
    fn next_level(&self, i: usize) -> Option<usize> {
        if BID { self.occupied.prev_from(i.checked_sub(1)?) } else { self.occupied.next_from(i + 1) }
    }

    /// Levels from the best outwards: the outside ones beyond the window on the touch's side, the window's, then the
    /// outside ones beyond it on the far side.
    fn best_first(&self) -> impl Iterator<Item = Level> + '_ {
        let hi = self.lo.saturating_add(self.qty.len() as i64);
        // The window's scan starts at its best level: the slots on the far side of the touch are empty by
        // definition, and there can be thousands of them.
        let (start, end) = match (self.count > 0, BID) {
            (false, _) => (0, 0),
            (true, true) => (0, self.best + 1),
            (true, false) => (self.best, self.qty.len()),
        };
        let window = self.qty[start..end].iter().enumerate().filter(|(_, q)| **q > 0);
        let window = window.map(move |(i, &qty)| Level { price: self.lo + (start + i) as i64, qty });
        let level = |(&price, &qty): (&i64, &i64)| Level { price, qty };
        let (near, inside, far): (Levels<'_>, Levels<'_>, Levels<'_>) = if BID {
            (
                Box::new(self.outside.range(hi..).rev().map(level)),
                Box::new(window.rev()),
                Box::new(self.outside.range(..self.lo).rev().map(level)),
            )
        } else {
            (
                Box::new(self.outside.range(..self.lo).map(level)),
                Box::new(window),
                Box::new(self.outside.range(hi..).map(level)),
            )
        };
        near.chain(inside).chain(far)
    }

    /// Hands `visit` the levels in [`Ladder::best_first`]'s order until it returns false. The top-of-book readers run
    /// on every update and stop after a few levels: this path has none of the boxed iterators' allocations and
    /// dynamic calls.
    #[inline]
    fn each_best_first(&self, mut visit: impl FnMut(Level) -> bool) {
        let hi = self.lo.saturating_add(self.qty.len() as i64);
        let level = |(&price, &qty): (&i64, &i64)| Level { price, qty };
        // Most books have nothing outside the window: skip the map's range searches then.
        let outside = !self.outside.is_empty();
        let near = || if BID { self.outside.range(hi..) } else { self.outside.range(..self.lo) };
        let far = || if BID { self.outside.range(..self.lo) } else { self.outside.range(hi..) };
        if outside {
            let stopped =
                if BID { !near().rev().map(level).all(&mut visit) } else { !near().map(level).all(&mut visit) };
            if stopped {
                return;
            }
        }
        let mut slot = (self.count > 0).then_some(self.best);
        while let Some(i) = slot {
            if !visit(Level { price: self.lo + i as i64, qty: self.qty[i] }) {
                return;
            }
            slot = self.next_level(i);
        }
        if outside {
            if BID {
                far().rev().map(level).all(&mut visit);
            } else {
                far().map(level).all(&mut visit);
            }
        }
    }

    /// The best `n` levels, best first, appended to `out`.
    fn top_into(&self, n: usize, out: &mut Vec<Level>) {
        if n == 0 {
            return;
        }
        let end = out.len().saturating_add(n);
        self.each_best_first(|level| {
            out.push(level);
            out.len() < end
        });
    }
}

/// An L2 book for one symbol: bids and asks in integer price and quantity units, each side a dense price-indexed
/// window around the touch (plus a map for the levels beyond it), so an update is an index and a store and reading
/// the best level is O(1).
#[derive(Debug, Clone)]
pub struct L2Book {
    price_scale: Scale,
    qty_scale: Scale,
    bids: Ladder<true>,
    asks: Ladder<false>,
    state: SyncState,
    last_seq: i64,
    last_ts: i64,
    stats: BookStats,
}

impl L2Book {
    #[must_use]
    pub fn new(price_scale: Scale, qty_scale: Scale) -> L2Book {
        L2Book {
            price_scale,
            qty_scale,
            bids: Ladder::default(),
            asks: Ladder::default(),
            state: SyncState::AwaitingFirstSnapshot,
            last_seq: 0,
            last_ts: 0,
            stats: BookStats::default(),
        }
    }

    /// Applies one V5 message. `bids` and `asks` are absolute sizes per price; a size of 0 deletes the level.
    ///
    /// # Errors
    /// `Gap` or `AwaitingSnapshot` for deltas out of sequence (the book is left untouched), `NegativeQty` for a
    /// malformed level (untouched), `Crossed` when the applied update leaves the book crossed (applied).
    pub fn apply(
        &mut self,
        kind: UpdateKind,
        update_id: u64,
        seq: i64,
        ts: i64,
        bids: &[Level],
        asks: &[Level],
    ) -> Result<Applied, BookError> {
        if let Some(bad) = bids.iter().chain(asks).find(|level| level.qty < 0) {
            return Err(BookError::NegativeQty { update_id, price: bad.price, qty: bad.qty });
        }
        let applied = match kind {
            UpdateKind::Snapshot => {
                let rebased = match self.state {
                    SyncState::AwaitingFirstSnapshot => false,
                    SyncState::Synced { last_update_id } | SyncState::Stale { last_update_id } => {
                        update_id < last_update_id || update_id == 1
                    }
                };
                self.bids.replace(bids);
                self.asks.replace(asks);
                self.stats.snapshots += 1;
                self.stats.rebases += u64::from(rebased);
                Applied::Snapshot { rebased }
            }
            UpdateKind::Delta => match self.state {
                SyncState::AwaitingFirstSnapshot => {
                    self.stats.dropped_before_snapshot += 1;
                    return Ok(Applied::DroppedBeforeSnapshot);
                }
                SyncState::Stale { .. } => {
                    self.stats.refused_while_stale += 1;
                    return Err(BookError::AwaitingSnapshot { got: update_id });
                }
                SyncState::Synced { last_update_id } => {
                    let expected = last_update_id.wrapping_add(1);
                    if update_id != expected {
                        self.stats.gaps += 1;
                        self.state = SyncState::Stale { last_update_id };
                        return Err(BookError::Gap { expected, got: update_id });
                    }
                    for &level in bids {
                        self.bids.set(level);
                    }
                    for &level in asks {
                        self.asks.set(level);
                    }
                    self.stats.deltas += 1;
                    Applied::Delta
                }
            },
        };
        self.state = SyncState::Synced { last_update_id: update_id };
        self.last_seq = seq;
        self.last_ts = ts;
        if let (Some(bid), Some(ask)) = (self.bids.best(), self.asks.best())
            && bid.price >= ask.price
        {
            self.stats.crossed += 1;
            return Err(BookError::Crossed { update_id, best_bid: bid.price, best_ask: ask.price });
        }
        Ok(applied)
    }

    #[must_use]
    pub fn price_scale(&self) -> Scale {
        self.price_scale
    }

    #[must_use]
    pub fn qty_scale(&self) -> Scale {
        self.qty_scale
    }

    #[must_use]
    pub fn state(&self) -> SyncState {
        self.state
    }

    /// True when the book mirrors the venue: a snapshot was applied and no gap has been seen since.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        matches!(self.state, SyncState::Synced { .. })
    }

    #[must_use]
    pub fn stats(&self) -> BookStats {
        self.stats
    }

    #[must_use]
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    #[must_use]
    pub fn last_ts(&self) -> i64 {
        self.last_ts
    }

    #[must_use]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best()
    }

    #[must_use]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best()
    }

    #[must_use]
    pub fn best(&self, side: Side) -> Option<Level> {
        match side {
            Side::Buy => self.bids.best(),
            Side::Sell => self.asks.best(),
        }
    }

    /// Number of levels on one side.
    #[must_use]
    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Buy => self.bids.len(),
            Side::Sell => self.asks.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bids.len() == 0 && self.asks.len() == 0
    }

    /// Levels of one side from the best outwards.
    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = Level> + '_> {
        match side {
            Side::Buy => Box::new(self.bids.best_first()),
            Side::Sell => Box::new(self.asks.best_first()),
        }
    }

    /// The best `n` levels of one side, best first, written into `out` (cleared first) to avoid allocation.
    pub fn top_n_into(&self, side: Side, n: usize, out: &mut Vec<Level>) {
        out.clear();
        match side {
            Side::Buy => self.bids.top_into(n, out),
            Side::Sell => self.asks.top_into(n, out),
        }
    }

    /// The best `n` levels of one side, best first.
    #[must_use]
    pub fn top_n(&self, side: Side, n: usize) -> Vec<Level> {
        let mut out = Vec::with_capacity(n.min(self.len(side)));
        self.top_n_into(side, n, &mut out);
        out
    }

    /// Total quantity units over the best `n` levels of one side.
    #[must_use]
    pub fn depth_levels(&self, side: Side, n: usize) -> i64 {
        let (mut total, mut left) = (0, n);
        let add = |level: Level| {
            total += level.qty;
            left -= 1;
            left > 0
        };
        if n > 0 {
            match side {
                Side::Buy => self.bids.each_best_first(add),
                Side::Sell => self.asks.each_best_first(add),
            }
        }
        total
    }

    /// Mid price in price units (half-units possible), when both sides exist.
    #[must_use]
    pub fn mid_units(&self) -> Option<f64> {
        match (self.bids.best(), self.asks.best()) {
            (Some(bid), Some(ask)) => Some((bid.price as f64 + ask.price as f64) / 2.0),
            _ => None,
        }
    }

    /// Total quantity units on one side at prices within `bps` basis points of the mid (inclusive).
    /// Zero when either side is empty.
    #[must_use]
    pub fn depth_within_bps(&self, side: Side, bps: f64) -> i64 {
        let Some(mid) = self.mid_units() else { return 0 };
        let band = mid * bps / 10_000.0;
        match side {
            Side::Buy => {
                let floor = mid - band;
                self.bids.best_first().take_while(|l| l.price as f64 >= floor).map(|l| l.qty).sum()
            }
            Side::Sell => {
                let ceiling = mid + band;
                self.asks.best_first().take_while(|l| l.price as f64 <= ceiling).map(|l| l.qty).sum()
            }
        }
    }

    /// CRC-32 of the best `n` levels, interleaved bid then ask per depth (`bid_price:bid_qty:ask_price:ask_qty:…`,
    /// exact decimals; a side that runs out is skipped), the layout OKX documents for its book checksum. Two books
    /// with the same top `n` have the same checksum whatever their history.
    #[must_use]
    pub fn checksum(&self, n: usize) -> u32 {
        let bids = self.top_n(Side::Buy, n);
        let asks = self.top_n(Side::Sell, n);
        let mut text = String::with_capacity(n * 40);
        for depth in 0..n {
            for level in [bids.get(depth), asks.get(depth)].into_iter().flatten() {
                if !text.is_empty() {
                    text.push(':');
                }
                text.push_str(&self.price_scale.format(level.price));
                text.push(':');
                text.push_str(&self.qty_scale.format(level.qty));
            }
        }
        crc32fast::hash(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> L2Book {
        L2Book::new(Scale::new(2).unwrap(), Scale::new(3).unwrap())
    }

    fn lv(price: i64, qty: i64) -> Level {
        Level::new(price, qty)
    }

    #[test]
    fn snapshot_then_contiguous_deltas() {
        let mut b = book();
        assert_eq!(b.apply(UpdateKind::Delta, 5, 0, 0, &[lv(100, 1)], &[]), Ok(Applied::DroppedBeforeSnapshot));
        assert_eq!(b.stats().dropped_before_snapshot, 1);
        b.apply(UpdateKind::Snapshot, 10, 0, 0, &[lv(100, 5), lv(99, 7)], &[lv(101, 3), lv(102, 4)]).unwrap();
        assert_eq!(b.best_bid(), Some(lv(100, 5)));
        assert_eq!(b.best_ask(), Some(lv(101, 3)));
        b.apply(UpdateKind::Delta, 11, 0, 0, &[lv(100, 0), lv(98, 2)], &[lv(101, 9)]).unwrap();
        assert_eq!(b.best_bid(), Some(lv(99, 7)));
        assert_eq!(b.best_ask(), Some(lv(101, 9)));
        assert_eq!(b.top_n(Side::Buy, 5), vec![lv(99, 7), lv(98, 2)]);
        assert_eq!(b.depth_levels(Side::Sell, 2), 13);
    }

    #[test]
    fn gap_is_reported_and_not_applied_until_next_snapshot() {
        let mut b = book();
        b.apply(UpdateKind::Snapshot, 100, 0, 0, &[lv(100, 5)], &[lv(101, 3)]).unwrap();
        for bad in [102, 100, 99] {
            let mut fresh = b.clone();
            assert!(matches!(
                fresh.apply(UpdateKind::Delta, bad, 0, 0, &[lv(100, 1)], &[]),
                Err(BookError::Gap { expected: 101, .. })
            ));
            assert_eq!(fresh.best_bid(), Some(lv(100, 5)));
            assert_eq!(
                fresh.apply(UpdateKind::Delta, 101, 0, 0, &[], &[]),
                Err(BookError::AwaitingSnapshot { got: 101 })
            );
            assert_eq!(
                fresh.apply(UpdateKind::Snapshot, 1, 0, 0, &[lv(90, 1)], &[lv(91, 1)]),
                Ok(Applied::Snapshot { rebased: true })
            );
            assert!(fresh.is_synced());
        }
    }

    #[test]
    fn lower_snapshot_rebases_and_delete_of_absent_level_is_noop() {
        let mut b = book();
        b.apply(UpdateKind::Snapshot, 100, 0, 0, &[lv(100, 5)], &[lv(101, 3)]).unwrap();
        assert_eq!(
            b.apply(UpdateKind::Snapshot, 90, 0, 0, &[lv(100, 5)], &[lv(101, 3)]),
            Ok(Applied::Snapshot { rebased: true })
        );
        assert_eq!(b.apply(UpdateKind::Delta, 91, 0, 0, &[lv(50, 0)], &[]), Ok(Applied::Delta));
        assert_eq!(b.len(Side::Buy), 1);
    }

    #[test]
    fn snapshot_in_any_order_keeps_the_last_positive_quantity_of_a_price() {
        let mut b = book();
        let bids = [lv(98, 1), lv(100, 5), lv(99, 2), lv(100, 6), lv(97, 0), lv(99, 0)];
        let asks = [lv(104, 1), lv(101, 3), lv(103, 2), lv(101, 4)];
        b.apply(UpdateKind::Snapshot, 1, 0, 0, &bids, &asks).unwrap();
        // A zero in a snapshot is no level (it does not delete the earlier 99 either), as inserting the positive
        // levels one by one would give.
        assert_eq!(b.top_n(Side::Buy, 10), vec![lv(100, 6), lv(99, 2), lv(98, 1)]);
        assert_eq!(b.top_n(Side::Sell, 10), vec![lv(101, 4), lv(103, 2), lv(104, 1)]);
        // Deltas far from the touch go through the binary search, near ones through the scan from the best.
        let far: Vec<Level> = (0..40).map(|i| lv(50 + i, 1)).collect();
        b.apply(UpdateKind::Delta, 2, 0, 0, &far, &[]).unwrap();
        b.apply(UpdateKind::Delta, 3, 0, 0, &[lv(55, 0), lv(60, 9), lv(99, 0), lv(70, 0), lv(70, 3)], &[]).unwrap();
        let bids: Vec<i64> = b.levels(Side::Buy).map(|l| l.price).collect();
        let mut expected: Vec<i64> = (50..90).filter(|&p| p != 55).chain([98, 100]).collect();
        expected.reverse();
        assert_eq!(bids, expected);
        assert_eq!(b.levels(Side::Buy).find(|l| l.price == 60), Some(lv(60, 9)));
        assert_eq!(b.levels(Side::Buy).find(|l| l.price == 70), Some(lv(70, 3)));
    }

    #[test]
    fn crossed_book_is_reported_after_applying() {
        let mut b = book();
        b.apply(UpdateKind::Snapshot, 1, 0, 0, &[lv(100, 5)], &[lv(101, 3)]).unwrap();
        let err = b.apply(UpdateKind::Delta, 2, 0, 0, &[lv(101, 1)], &[]).unwrap_err();
        assert_eq!(err, BookError::Crossed { update_id: 2, best_bid: 101, best_ask: 101 });
        assert_eq!(b.stats().crossed, 1);
    }

    #[test]
    fn negative_quantity_is_refused() {
        let mut b = book();
        assert!(matches!(
            b.apply(UpdateKind::Snapshot, 1, 0, 0, &[lv(100, -5)], &[]),
            Err(BookError::NegativeQty { .. })
        ));
        assert_eq!(b.state(), SyncState::AwaitingFirstSnapshot);
    }

    #[test]
    fn depth_within_bps_of_mid() {
        let mut b = L2Book::new(Scale::new(0).unwrap(), Scale::new(0).unwrap());
        b.apply(
            UpdateKind::Snapshot,
            1,
            0,
            0,
            &[lv(9_990, 1), lv(9_980, 2), lv(9_000, 4)],
            &[lv(10_010, 1), lv(10_020, 2), lv(11_000, 4)],
        )
        .unwrap();
        // mid 10_000; 20 bps = 20 units either side.
        assert_eq!(b.depth_within_bps(Side::Buy, 20.0), 3);
        assert_eq!(b.depth_within_bps(Side::Sell, 20.0), 3);
        assert_eq!(b.depth_within_bps(Side::Sell, 10.0), 1);
    }

    #[test]
    fn checksum_depends_only_on_top_levels() {
        let mut a = book();
        let mut b = book();
        a.apply(UpdateKind::Snapshot, 1, 0, 0, &[lv(100, 5), lv(99, 1)], &[lv(101, 3)]).unwrap();
        b.apply(UpdateKind::Snapshot, 7, 0, 0, &[lv(100, 5), lv(98, 1)], &[lv(101, 3)]).unwrap();
        assert_eq!(a.checksum(1), b.checksum(1));
        assert_ne!(a.checksum(2), b.checksum(2));
        // "1.00:0.005:1.01:0.003"
        assert_eq!(a.checksum(1), crc32fast::hash(b"1.00:0.005:1.01:0.003"));
    }
}
