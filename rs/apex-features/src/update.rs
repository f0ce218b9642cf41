//! Per-book-update features: mid, spread, microprice, multi-level order flow imbalance and book pressure.
//!
//! One row per book message (snapshot or delta), computed from the book state before and after the message by a
//! streaming [`UpdateEngine`]; [`update_features`] drives the same engine over a whole `book` table, [`UpdateReplay`]
//! over one given in pieces.
//!
//! Conventions:
//! - Every value is NaN when the book after the message is not usable: not synced (before the first snapshot, a
//!   gap, a delta refused while stale), crossed, or with an empty side.
//! - OFI (Cont, Kukanov & Stoikov 2014), at level m from the m-th best levels (Xu, Gould & Howison 2019):
//!   `e = 1{Pb>=Pb'}qb - 1{Pb<=Pb'}qb' - 1{Pa<=Pa'}qa + 1{Pa>=Pa'}qa'`, primed = the state before the message.
//!   A level that does not exist on one side (fewer than m levels) counts as an empty level beyond the far end of
//!   the book: a bid at price -inf with size 0, an ask at +inf with size 0. So a level that appears contributes its
//!   full size, one that vanishes contributes minus its former size, and one absent on both sides contributes 0.
//! - OFI is NaN when there is no usable "before" state: the first snapshot, the first message after an unusable
//!   state (gap, refused delta, crossed or one-sided book), and a rebasing snapshot (the venue restarted its
//!   sequence, so the previous book is not this book's past). Otherwise it is computed for snapshots too.
//! - Sizes are in base units; prices in quote units; `spread_ticks` is the spread over the tick size (the price
//!   scale's unit unless a tick is given per symbol).

use std::collections::BTreeMap;

use apex_book::{Applied, BookColumns, BookError, L2Book, Level, MessageHeader};
use apex_core::{Scale, Side};

use crate::FeatureError;
use crate::bars::UpdateSeries;

/// Number of levels of the multi-level OFI.
pub const OFI_LEVELS: usize = 5;
/// Depths (levels per side) of the book-pressure features.
pub const PRESSURE_DEPTHS: [usize; 3] = [1, 5, 10];
const TOP: usize = 10;

/// Names of the float columns of an update row, in the order of [`UpdateRow::values`].
pub const UPDATE_FLOAT_COLUMNS: [&str; 17] = [
    "best_bid",
    "best_ask",
    "mid",
    "spread",
    "spread_ticks",
    "spread_bps",
    "microprice",
    "ofi_l1",
    "ofi_l5",
    "ofi_1",
    "ofi_2",
    "ofi_3",
    "ofi_4",
    "ofi_5",
    "pressure_1",
    "pressure_5",
    "pressure_10",
];

/// The features after one book message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateRow {
    pub ts: i64,
    pub symbol: u32,
    pub update_id: i64,
    pub best_bid: f64,
    pub best_ask: f64,
    pub mid: f64,
    /// Best ask minus best bid, in price units.
    pub spread: f64,
    pub spread_ticks: f64,
    pub spread_bps: f64,
    /// `(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty)` at the touch.
    pub microprice: f64,
    /// OFI at the best level (equals `ofi[0]`).
    pub ofi_l1: f64,
    /// Sum of the per-level OFIs over the top [`OFI_LEVELS`] levels.
    pub ofi_l5: f64,
    /// OFI per level, best first.
    pub ofi: [f64; OFI_LEVELS],
    /// `(bid_depth - ask_depth) / (bid_depth + ask_depth)` over the top 1, 5 and 10 levels.
    pub pressure: [f64; 3],
}

impl UpdateRow {
    fn empty(header: &MessageHeader) -> UpdateRow {
        UpdateRow {
            ts: header.ts,
            symbol: header.symbol,
            update_id: header.update_id as i64,
            best_bid: f64::NAN,
            best_ask: f64::NAN,
            mid: f64::NAN,
            spread: f64::NAN,
            spread_ticks: f64::NAN,
            spread_bps: f64::NAN,
            microprice: f64::NAN,
            ofi_l1: f64::NAN,
            ofi_l5: f64::NAN,
            ofi: [f64::NAN; OFI_LEVELS],
            pressure: [f64::NAN; 3],
        }
    }

    /// The float features in the order of [`UPDATE_FLOAT_COLUMNS`].
    #[must_use]
    pub fn values(&self) -> [f64; 17] {
        let [o1, o2, o3, o4, o5] = self.ofi;
        let [p1, p5, p10] = self.pressure;
        [
            self.best_bid,
            self.best_ask,
            self.mid,
            self.spread,
            self.spread_ticks,
            self.spread_bps,
            self.microprice,
            self.ofi_l1,
            self.ofi_l5,
            o1,
            o2,
            o3,
            o4,
            o5,
            p1,
            p5,
            p10,
        ]
    }
}

/// The top levels of both sides, best first.
#[derive(Debug, Clone, Default)]
struct Top {
    bids: Vec<Level>,
    asks: Vec<Level>,
}

/// Streaming features of one symbol: owns the book, takes one decoded message at a time.
#[derive(Debug, Clone)]
pub struct UpdateEngine {
    book: L2Book,
    tick_units: i64,
    before: Top,
    before_usable: bool,
    after: Top,
    row: Option<UpdateRow>,
}

impl UpdateEngine {
    /// An engine with an empty book; the tick for `spread_ticks` is one unit of `price_scale`.
    #[must_use]
    pub fn new(price_scale: Scale, qty_scale: Scale) -> UpdateEngine {
        UpdateEngine {
            book: L2Book::new(price_scale, qty_scale),
            tick_units: 1,
            before: Top::default(),
            before_usable: false,
            after: Top::default(),
            row: None,
        }
    }

    /// Sets the tick size, in units of the price scale, that `spread_ticks` counts.
    ///
    /// # Panics
    /// When `tick_units` is not positive.
    #[must_use]
    pub fn with_tick_units(mut self, tick_units: i64) -> UpdateEngine {
        assert!(tick_units > 0, "tick size must be positive, got {tick_units} units");
        self.tick_units = tick_units;
        self
    }

    /// The book as it stands after the last message.
    #[must_use]
    pub fn book(&self) -> &L2Book {
        &self.book
    }

    /// The features after the last message, `None` before the first.
    #[must_use]
    pub fn row(&self) -> Option<&UpdateRow> {
        self.row.as_ref()
    }

    /// Applies one message to the book and computes its feature row (read it with [`UpdateEngine::row`]).
    ///
    /// # Errors
    /// The book's verdict on the message (gap, refused delta, crossed book): the row is still produced (all NaN);
    /// the caller decides whether to log, resubscribe or stop.
    pub fn push(&mut self, header: &MessageHeader, bids: &[Level], asks: &[Level]) -> Result<Applied, BookError> {
        let outcome = self.book.apply(header.kind, header.update_id, header.seq, header.ts, bids, asks);
        let applied = matches!(outcome, Ok(Applied::Snapshot { .. } | Applied::Delta));
        let usable =
            applied && self.book.is_synced() && self.book.best_bid().is_some() && self.book.best_ask().is_some();
        if usable {
            self.book.top_n_into(Side::Buy, TOP, &mut self.after.bids);
            self.book.top_n_into(Side::Sell, TOP, &mut self.after.asks);
        }
        let rebased = matches!(outcome, Ok(Applied::Snapshot { rebased: true }));
        self.finish_row(header, usable, rebased);
        outcome
    }

    /// The row [`UpdateEngine::push`] makes for a message, from the levels of the book after it (best first, at least
    /// the best 10 where the book has them) instead of the message: for a source that holds the book itself, in
    /// sequence and never crossed (the simulator's matching engine), so no copy of it is kept up to date here.
    pub fn push_top(&mut self, header: &MessageHeader, bids: &[Level], asks: &[Level]) {
        let usable = !bids.is_empty() && !asks.is_empty();
        if usable {
            for (after, levels) in [(&mut self.after.bids, bids), (&mut self.after.asks, asks)] {
                after.clear();
                after.extend_from_slice(&levels[..levels.len().min(TOP)]);
            }
        }
        // Such a source never restarts its sequence: no snapshot rebases.
        self.finish_row(header, usable, false);
    }

    /// The message's row from the top levels after it (`self.after`, when `usable`) and before it.
    fn finish_row(&mut self, header: &MessageHeader, usable: bool, rebased: bool) {
        let mut row = UpdateRow::empty(header);
        if usable {
            self.fill_book_features(&mut row);
            if self.before_usable && !rebased {
                self.fill_ofi(&mut row);
            }
            std::mem::swap(&mut self.before, &mut self.after);
        }
        self.before_usable = usable;
        self.row = Some(row);
    }

    fn fill_book_features(&self, row: &mut UpdateRow) {
        let ps = self.book.price_scale();
        let (bid, ask) = (self.after.bids[0], self.after.asks[0]);
        row.best_bid = ps.to_f64(bid.price);
        row.best_ask = ps.to_f64(ask.price);
        row.mid = (bid.price as f64 + ask.price as f64) / 2.0 / ps.factor() as f64;
        row.spread = ps.to_f64(ask.price - bid.price);
        row.spread_ticks = (ask.price - bid.price) as f64 / self.tick_units as f64;
        row.spread_bps = row.spread / row.mid * 10_000.0;
        let (bid_qty, ask_qty) = (bid.qty as f64, ask.qty as f64);
        row.microprice = (row.best_bid * ask_qty + row.best_ask * bid_qty) / (bid_qty + ask_qty);
        for (slot, &depth) in row.pressure.iter_mut().zip(&PRESSURE_DEPTHS) {
            let bid_depth: i64 = self.after.bids.iter().take(depth).map(|l| l.qty).sum();
            let ask_depth: i64 = self.after.asks.iter().take(depth).map(|l| l.qty).sum();
            *slot = (bid_depth - ask_depth) as f64 / (bid_depth + ask_depth) as f64;
        }
    }

    fn fill_ofi(&self, row: &mut UpdateRow) {
        let qs = self.book.qty_scale();
        let mut total = 0_i64;
        for (level, slot) in row.ofi.iter_mut().enumerate() {
            let units = level_ofi(&self.before, &self.after, level);
            total += units;
            *slot = qs.to_f64(units);
        }
        row.ofi_l1 = row.ofi[0];
        row.ofi_l5 = qs.to_f64(total);
    }
}

/// CKS order flow imbalance at one level, in quantity units, with absent levels as empty levels at +-infinity.
fn level_ofi(before: &Top, after: &Top, level: usize) -> i64 {
    let bid = |top: &Top| top.bids.get(level).map_or((i64::MIN, 0), |l| (l.price, l.qty));
    let ask = |top: &Top| top.asks.get(level).map_or((i64::MAX, 0), |l| (l.price, l.qty));
    let ((pb, qb), (pb0, qb0)) = (bid(after), bid(before));
    let ((pa, qa), (pa0, qa0)) = (ask(after), ask(before));
    let mut e = 0;
    if pb >= pb0 {
        e += qb;
    }
    if pb <= pb0 {
        e -= qb0;
    }
    if pa <= pa0 {
        e -= qa;
    }
    if pa >= pa0 {
        e += qa0;
    }
    e
}

/// Per-update features of a whole `book` table, one row per message in table order.
#[derive(Debug, Clone, Default)]
pub struct UpdateColumns {
    pub ts: Vec<i64>,
    pub symbol: Vec<u32>,
    pub update_id: Vec<i64>,
    /// One column per name of [`UPDATE_FLOAT_COLUMNS`], in that order.
    pub values: Vec<Vec<f64>>,
    /// (first row of the message, what the book said) for every gap, refused delta and crossed book.
    pub incidents: Vec<(usize, BookError)>,
}

apex_core::row_count!(UpdateColumns);

impl UpdateColumns {
    fn with_capacity(n: usize) -> UpdateColumns {
        UpdateColumns {
            ts: Vec::with_capacity(n),
            symbol: Vec::with_capacity(n),
            update_id: Vec::with_capacity(n),
            values: (0..UPDATE_FLOAT_COLUMNS.len()).map(|_| Vec::with_capacity(n)).collect(),
            incidents: Vec::new(),
        }
    }

    /// Frees the capacity beyond the rows (the columns were sized for a guess at the message count).
    fn shrink_to_fit(&mut self) {
        self.ts.shrink_to_fit();
        self.symbol.shrink_to_fit();
        self.update_id.shrink_to_fit();
        self.values.iter_mut().for_each(Vec::shrink_to_fit);
    }

    /// Appends one row.
    pub fn push(&mut self, row: &UpdateRow) {
        self.ts.push(row.ts);
        self.symbol.push(row.symbol);
        self.update_id.push(row.update_id);
        for (column, value) in self.values.iter_mut().zip(row.values()) {
            column.push(value);
        }
    }

    /// The columns bar aggregation needs, borrowed.
    ///
    /// # Panics
    /// Never: the names are fixed.
    #[must_use]
    pub fn series(&self) -> UpdateSeries<'_> {
        let col = |name| self.column(name).expect("update column names are fixed");
        UpdateSeries {
            ts: &self.ts,
            symbol: &self.symbol,
            ofi_l1: col("ofi_l1"),
            ofi_l5: col("ofi_l5"),
            pressure_5: col("pressure_5"),
            spread_bps: col("spread_bps"),
        }
    }

    /// The float column called `name` (one of [`UPDATE_FLOAT_COLUMNS`]).
    #[must_use]
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        UPDATE_FLOAT_COLUMNS.iter().position(|&n| n == name).map(|i| self.values[i].as_slice())
    }
}

/// Options of [`update_features`].
#[derive(Debug, Clone, Default)]
pub struct UpdateParams {
    /// Tick size in units of the price scale per symbol code; symbols not listed use one unit.
    pub tick_units: BTreeMap<u32, i64>,
}

/// Replays a `book` table through one [`UpdateEngine`] per symbol and returns one feature row per message.
///
/// # Errors
/// `Book` for malformed rows (bad codes, NaN or off-grid prices and sizes), `Params` for a non-positive tick.
/// Protocol incidents (gaps, crossed books) are not errors: their rows are NaN and they are listed in `incidents`.
pub fn update_features(
    cols: &BookColumns<'_>,
    scales: (Scale, Scale),
    params: &UpdateParams,
) -> Result<UpdateColumns, FeatureError> {
    UpdateReplay::new(scales, params.clone())?.push(cols)
}

/// [`update_features`] over a `book` table given in consecutive pieces: the engines of the symbols carry over from
/// one piece to the next, so the rows of all pieces are the rows of the whole table. A piece must end at a message's
/// end (its rows are never split), which a cut between two timestamps guarantees.
#[derive(Debug)]
pub struct UpdateReplay {
    scales: (Scale, Scale),
    params: UpdateParams,
    engines: BTreeMap<u32, UpdateEngine>,
}

impl UpdateReplay {
    /// A replay that has seen no message.
    ///
    /// # Errors
    /// `Params` for a non-positive tick.
    pub fn new(scales: (Scale, Scale), params: UpdateParams) -> Result<UpdateReplay, FeatureError> {
        if let Some((code, tick)) = params.tick_units.iter().find(|&(_, &t)| t <= 0) {
            return Err(FeatureError::Params(format!("tick size of symbol code {code} must be positive, got {tick}")));
        }
        Ok(UpdateReplay { scales, params, engines: BTreeMap::new() })
    }

    /// The feature rows of the messages of `cols`, the next piece of the table; the rows of `incidents` count from
    /// the piece's first row.
    ///
    /// # Errors
    /// `Book` for malformed rows (bad codes, NaN or off-grid prices and sizes); the replay is then unusable.
    pub fn push(&mut self, cols: &BookColumns<'_>) -> Result<UpdateColumns, FeatureError> {
        cols.validate()?;
        let (price_scale, qty_scale) = self.scales;
        let mut out = UpdateColumns::with_capacity(cols.len() / 2);
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for (message, rows) in cols.messages().enumerate() {
            if message & 0xFFFF == 0 {
                apex_cancel::checkpoint(); // an interrupted caller stops a long replay within milliseconds
            }
            let header = cols.decode(rows, price_scale, qty_scale, &mut bids, &mut asks)?;
            let engine = self.engines.entry(header.symbol).or_insert_with(|| {
                let tick = self.params.tick_units.get(&header.symbol).copied().unwrap_or(1);
                UpdateEngine::new(price_scale, qty_scale).with_tick_units(tick)
            });
            if let Err(incident) = engine.push(&header, &bids, &asks) {
                out.incidents.push((header.first_row, incident));
            }
            out.push(engine.row().expect("a row exists after a push"));
        }
        // A caller may keep the columns of every piece (chimera keeps the touch of a week's book): a book has fewer
        // messages than the half of its rows guessed above (a tenth, for a simulated one).
        out.shrink_to_fit();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use apex_book::UpdateKind;

    use super::*;

    fn header(kind: UpdateKind, update_id: u64) -> MessageHeader {
        MessageHeader { first_row: 0, symbol: 0, kind, update_id, seq: 0, ts: update_id as i64 }
    }

    fn lv(price: i64, qty: i64) -> Level {
        Level::new(price, qty)
    }

    fn engine() -> UpdateEngine {
        UpdateEngine::new(Scale::new(1).unwrap(), Scale::new(0).unwrap())
    }

    #[test]
    fn touch_features_and_ofi_by_hand() {
        let mut e = engine();
        e.push(&header(UpdateKind::Snapshot, 1), &[lv(1000, 4), lv(999, 6)], &[lv(1002, 2), lv(1003, 8)]).unwrap();
        let r = *e.row().unwrap();
        assert_eq!((r.best_bid, r.best_ask, r.mid, r.spread_ticks), (100.0, 100.2, 100.1, 2.0));
        assert!((r.spread - 0.2).abs() < 1e-12);
        assert!((r.spread_bps - 0.2 / 100.1 * 1e4).abs() < 1e-9);
        assert!((r.microprice - (100.0 * 2.0 + 100.2 * 4.0) / 6.0).abs() < 1e-12);
        assert_eq!(r.pressure, [(4.0 - 2.0) / 6.0, 0.0, 0.0]);
        assert!(r.ofi_l1.is_nan(), "first snapshot has no before state");
        // Bid size up 4 -> 7 at the same price: +3. Ask price improves to 100.1 with 5: -5. Level 2: the ask
        // level 1002 (2) moves to position 2 from 1003 (8): Pa < Pa' so -2.
        e.push(&header(UpdateKind::Delta, 2), &[lv(1000, 7)], &[lv(1001, 5)]).unwrap();
        let r = *e.row().unwrap();
        assert_eq!(r.ofi[0], 3.0 - 5.0);
        assert_eq!(r.ofi[1], -2.0);
        // Level 3: the ask 1003 (8) appears at position 3 where no level was: -8. Bids: none before or after: 0.
        assert_eq!(r.ofi[2], -8.0);
        assert_eq!(r.ofi_l5, -2.0 - 2.0 - 8.0);
        // Best bid removed: level 1 bid price falls, so -7 (old size); level 2 bid vanishes: -6; asks unchanged.
        e.push(&header(UpdateKind::Delta, 3), &[lv(1000, 0)], &[]).unwrap();
        let r = *e.row().unwrap();
        assert_eq!((r.ofi[0], r.ofi[1], r.ofi_l5), (-7.0, -6.0, -13.0));
    }

    #[test]
    fn gap_makes_rows_nan_until_the_next_snapshot_and_that_snapshot_has_no_ofi() {
        let mut e = engine();
        e.push(&header(UpdateKind::Delta, 1), &[lv(1000, 1)], &[]).unwrap();
        assert!(e.row().unwrap().mid.is_nan(), "delta before the first snapshot");
        e.push(&header(UpdateKind::Snapshot, 5), &[lv(1000, 1)], &[lv(1001, 1)]).unwrap();
        e.push(&header(UpdateKind::Delta, 6), &[lv(1000, 2)], &[]).unwrap();
        assert_eq!(e.row().unwrap().ofi_l1, 1.0);
        assert!(e.push(&header(UpdateKind::Delta, 8), &[lv(1000, 3)], &[]).is_err());
        assert!(e.row().unwrap().mid.is_nan());
        e.push(&header(UpdateKind::Snapshot, 9), &[lv(1000, 3)], &[lv(1001, 1)]).unwrap();
        let r = *e.row().unwrap();
        assert_eq!(r.mid, 100.05);
        assert!(r.ofi_l1.is_nan());
        e.push(&header(UpdateKind::Snapshot, 10), &[lv(1000, 5)], &[lv(1001, 1)]).unwrap();
        assert_eq!(e.row().unwrap().ofi_l1, 2.0, "a snapshot in sequence has an OFI");
        e.push(&header(UpdateKind::Snapshot, 3), &[lv(1000, 5)], &[lv(1001, 1)]).unwrap();
        assert!(e.row().unwrap().ofi_l1.is_nan(), "a rebasing snapshot has no OFI");
    }

    /// One side of a book state, best first, at most `depth` levels: distinct offsets from `mid` (away from it).
    fn side(mid: i64, levels: &[(i64, i64)], sign: i64, depth: usize) -> Vec<Level> {
        let by_offset: BTreeMap<i64, i64> = levels.iter().copied().collect();
        by_offset.into_iter().take(depth).map(|(offset, qty)| lv(mid + sign * offset, qty)).collect()
    }

    /// The delta from `old` to `new` (best-first lists): changed or new levels, 0 for vanished ones.
    fn delta(old: &[Level], new: &[Level]) -> Vec<Level> {
        let mut changes: Vec<Level> = new.iter().filter(|n| !old.contains(n)).copied().collect();
        changes.extend(old.iter().filter(|o| !new.iter().any(|n| n.price == o.price)).map(|o| lv(o.price, 0)));
        changes
    }

    proptest::proptest! {
        /// Fed the book's top levels after each message, the engine makes the rows it makes from the messages of a
        /// depth-12 stream (snapshot, then deltas) of books that are never crossed, sides empty at times.
        #[test]
        fn rows_from_the_top_equal_rows_from_the_messages(
            states in proptest::collection::vec(
                (
                    990i64..1010,
                    proptest::collection::vec((1i64..30, 1i64..100), 0..16),
                    proptest::collection::vec((1i64..30, 1i64..100), 0..16),
                ),
                1..40,
            ),
        ) {
            const DEPTH: usize = 12;
            let (mut messages, mut tops) = (engine(), engine());
            let (mut old_bids, mut old_asks) = (Vec::new(), Vec::new());
            for (n, (mid, bid_levels, ask_levels)) in states.iter().enumerate() {
                let bids = side(*mid, bid_levels, -1, DEPTH);
                let asks = side(*mid, ask_levels, 1, DEPTH);
                let id = n as u64 + 1;
                if n == 0 {
                    let _ = messages.push(&header(UpdateKind::Snapshot, id), &bids, &asks);
                } else {
                    let (bid_delta, ask_delta) = (delta(&old_bids, &bids), delta(&old_asks, &asks));
                    let _ = messages.push(&header(UpdateKind::Delta, id), &bid_delta, &ask_delta);
                }
                tops.push_top(&header(if n == 0 { UpdateKind::Snapshot } else { UpdateKind::Delta }, id), &bids, &asks);
                let bits = |e: &UpdateEngine| e.row().unwrap().values().map(f64::to_bits);
                proptest::prop_assert_eq!(bits(&messages), bits(&tops), "message {}", n);
                (old_bids, old_asks) = (bids, asks);
            }
        }
    }

    #[test]
    fn one_sided_book_is_nan() {
        let mut e = engine();
        e.push(&header(UpdateKind::Snapshot, 1), &[lv(1000, 1)], &[]).unwrap();
        assert!(e.row().unwrap().best_bid.is_nan());
        e.push(&header(UpdateKind::Delta, 2), &[], &[lv(1001, 1)]).unwrap();
        let r = *e.row().unwrap();
        assert_eq!(r.best_ask, 100.1);
        assert!(r.ofi_l1.is_nan(), "the state before was one-sided");
    }
}
