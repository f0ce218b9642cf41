//! The L2 book itself: two sorted sides, the V5 snapshot/delta rules, and the depth queries features need.

use apex_core::{Scale, Side};
use thiserror::Error;

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

/// One side of the book: its levels in one contiguous array sorted so that the best level is the last one (bids by
/// ascending price, asks by descending price). Updates cluster at the touch, so finding a level usually takes a few
/// comparisons from the end and inserting or deleting one moves only the few levels above it; reading the best level
/// is a load, and walking the side from the best outwards reads consecutive memory.
#[derive(Debug, Clone, Default)]
struct Ladder<const BID: bool> {
    levels: Vec<Level>,
}

impl<const BID: bool> Ladder<BID> {
    /// Levels checked one by one from the touch before a binary search of the rest.
    const NEAR: usize = 8;

    /// The sort key: ascending keys put the best level last on both sides.
    #[inline]
    fn key(price: i64) -> i64 {
        if BID { price } else { -price }
    }

    /// The index of `price`, or where it would be inserted.
    #[inline]
    fn find(&self, price: i64) -> Result<usize, usize> {
        let key = Self::key(price);
        let n = self.levels.len();
        let far = n.saturating_sub(Self::NEAR);
        for i in (far..n).rev() {
            let here = Self::key(self.levels[i].price);
            if here == key {
                return Ok(i);
            }
            if here < key {
                return Err(i + 1);
            }
        }
        self.levels[..far].binary_search_by(|level| Self::key(level.price).cmp(&key))
    }

    /// Sets the quantity at `price` (absolute size; 0 deletes the level).
    #[inline]
    fn set(&mut self, level: Level) {
        match (self.find(level.price), level.qty) {
            (Ok(i), 0) => {
                self.levels.remove(i);
            }
            (Ok(i), _) => self.levels[i].qty = level.qty,
            (Err(_), 0) => {}
            (Err(i), _) => self.levels.insert(i, level),
        }
    }

    /// Replaces every level: the positive ones, sorted; a price given twice keeps its last quantity, as successive
    /// inserts would.
    fn replace(&mut self, levels: &[Level]) {
        self.levels.clear();
        self.levels.extend(levels.iter().filter(|l| l.qty > 0));
        // A stable sort keeps the input order of equal prices; the dedup then copies the later one over the earlier.
        self.levels.sort_by_key(|level| Self::key(level.price));
        self.levels.dedup_by(|later, kept| {
            let same = later.price == kept.price;
            if same {
                kept.qty = later.qty;
            }
            same
        });
    }

    #[inline]
    fn best(&self) -> Option<Level> {
        self.levels.last().copied()
    }

    /// Levels from the best outwards.
    fn best_first(&self) -> impl Iterator<Item = Level> + '_ {
        self.levels.iter().rev().copied()
    }
}

/// An L2 book for one symbol: bids and asks in integer price and quantity units, each side a sorted array with its
/// best level last, so reading the best level is O(1) and an update near the touch costs a few comparisons.
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
            Side::Buy => self.bids.levels.len(),
            Side::Sell => self.asks.levels.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bids.levels.is_empty() && self.asks.levels.is_empty()
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
            Side::Buy => out.extend(self.bids.best_first().take(n)),
            Side::Sell => out.extend(self.asks.best_first().take(n)),
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
        match side {
            Side::Buy => self.bids.best_first().take(n).map(|l| l.qty).sum(),
            Side::Sell => self.asks.best_first().take(n).map(|l| l.qty).sum(),
        }
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
