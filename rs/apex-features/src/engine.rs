//! The streaming feature engine of one symbol: book messages, trades and the exchange clock in; the bar rows of
//! `apexctl features --grain <bar>` out, bit for bit, as each bar closes; and the latest book message's update
//! features (the top-of-book view execution decides on).
//!
//! One engine serves the simulator's strategy slot and the live engine. It runs on exchange time only: a bar closes
//! when an event or [`BarFeatureEngine::on_clock`] reaches its close, so an accelerated or replayed stream gives the
//! same rows as a live one. The hot path allocates nothing once the VMD window is full.
//!
//! Rows equal the batch [`bar_features`] over the same trades and book because both run the same bar builder:
//! - events must come in exchange-time order across trades and book (per symbol); an event for a bar already
//!   emitted is late: a late book message still updates the book, a late trade is refused ([`FeatureError::Late`]);
//! - the batch emits a symbol's last bar at the table's end, a stream when the clock passes its close; a stream that
//!   runs on past the last trade emits the flat bars the batch would fill if a later trade came.
//!
//! [`bar_features`]: crate::bars::bar_features

use apex_book::{Applied, BookError, L2Book, Level, MessageHeader};
use apex_core::Scale;

use crate::FeatureError;
use crate::bar_stream::{Atom, BarStream, Placed, UpdateValues};
use crate::bars::{BarParams, column_names};
use crate::update::{UpdateEngine, UpdateRow};
use crate::vmd::RollingVmd;

/// One trade as the public trade stream reports it (taker `side` +1 buy / -1 sell; price and size in quote and base
/// units; `ts` exchange time in nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    pub ts: i64,
    pub side: i8,
    pub price: f64,
    pub size: f64,
}

/// What an engine computes.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Bar interval, rv window, MTFA intervals and VMD.
    pub bars: BarParams,
    /// Scales of the integer price and quantity units of the levels given to [`BarFeatureEngine::on_book`].
    pub price_scale: Scale,
    pub qty_scale: Scale,
    /// Aggregate the book per bar (`ofi_l1_sum`, `ofi_l5_sum`, `pressure_5_last`, `spread_bps_mean`); without them,
    /// book messages still keep the book (and its update features) current and advance the clock.
    pub book_columns: bool,
}

/// Streaming bar features of one symbol (see the module documentation).
#[derive(Debug, Clone)]
pub struct BarFeatureEngine {
    config: EngineConfig,
    names: Vec<String>,
    bars: BarStream,
    updates: UpdateEngine,
    vmd: Option<RollingVmd>,
    last_trade_ts: Option<i64>,
    trades: usize,
    late: u64,
    rows: u64,
}

impl BarFeatureEngine {
    /// An engine that has seen nothing yet.
    ///
    /// # Errors
    /// `Params`/`Vmd` for a bad interval, rv window, higher timeframe or VMD setting (as the batch reports them).
    pub fn new(config: EngineConfig) -> Result<BarFeatureEngine, FeatureError> {
        config.bars.check()?;
        let names = column_names(&config.bars, config.book_columns);
        let vmd = config.bars.vmd.clone().map(RollingVmd::new).transpose()?;
        let modes = config.bars.vmd.as_ref().map_or(0, |v| v.modes);
        Ok(BarFeatureEngine {
            bars: BarStream::new(&config.bars, config.book_columns, modes),
            updates: UpdateEngine::new(config.price_scale, config.qty_scale),
            names,
            vmd,
            config,
            last_trade_ts: None,
            trades: 0,
            late: 0,
            rows: 0,
        })
    }

    /// The names of a row's values, in order (the batch table's float columns).
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The settings the engine was made with.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Rows emitted so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Events that came after their bar was emitted (late book messages updated the book, late trades were refused).
    #[must_use]
    pub fn late_events(&self) -> u64 {
        self.late
    }

    /// Open time of the bar in progress, `None` before the first trade.
    #[must_use]
    pub fn bar_open(&self) -> Option<i64> {
        self.bars.open()
    }

    /// The book as of the last message.
    #[must_use]
    pub fn book(&self) -> &L2Book {
        self.updates.book()
    }

    /// The update features (touch, spread, microprice, OFI, pressure) after the last book message; `None` before it.
    #[must_use]
    pub fn update(&self) -> Option<&UpdateRow> {
        self.updates.row()
    }

    /// Takes one trade and calls `emit(open_ts, row)` for every bar its time closes, oldest first.
    ///
    /// # Errors
    /// `Value` for a side other than +-1 or a price or size that is not finite and positive; `Unsorted` for a trade
    /// before the previous one; `Late` for a trade in a bar already emitted. The trade is then ignored.
    pub fn on_trade(&mut self, trade: &Trade, emit: impl FnMut(i64, &[f64])) -> Result<(), FeatureError> {
        let row = self.trades;
        let bad = |column, value: f64, expected| FeatureError::Value { table: "trades", row, column, value, expected };
        if trade.side != 1 && trade.side != -1 {
            return Err(bad("side", f64::from(trade.side), "+1 (buy) or -1 (sell)"));
        }
        if !(trade.price.is_finite() && trade.price > 0.0) {
            return Err(bad("price", trade.price, "a finite positive price"));
        }
        if !(trade.size.is_finite() && trade.size > 0.0) {
            return Err(bad("size", trade.size, "a finite positive size"));
        }
        if let Some(previous) = self.last_trade_ts
            && trade.ts < previous
        {
            return Err(FeatureError::Unsorted { table: "trades", row, ts: trade.ts, previous });
        }
        let atom = Atom::trade(trade.ts, trade.side, trade.price, trade.size);
        let Self { bars, vmd, rows, .. } = self;
        if let Placed::Late { open } = bars.on_atom(&atom, &mut with_vmd(vmd, rows, emit)) {
            self.late += 1;
            return Err(FeatureError::Late { what: "trade", ts: trade.ts, open });
        }
        self.last_trade_ts = Some(trade.ts);
        self.trades += 1;
        Ok(())
    }

    /// Applies one book message (levels in the configured integer units) and calls `emit(open_ts, row)` for every
    /// bar its time closes, oldest first; then its update features count towards the bar in progress.
    ///
    /// # Errors
    /// The book's verdict (gap, refused delta, crossed book), as [`UpdateEngine::push`]: the message's update
    /// features are then NaN, and time still advances.
    pub fn on_book(
        &mut self,
        header: &MessageHeader,
        bids: &[Level],
        asks: &[Level],
        emit: impl FnMut(i64, &[f64]),
    ) -> Result<Applied, BookError> {
        let outcome = self.updates.push(header, bids, asks);
        self.aggregate_update(header.ts, emit);
        outcome
    }

    /// As [`BarFeatureEngine::on_book`], from the top levels of the book after the message (best first) rather than
    /// the message: for a source that holds the book itself, in sequence and never crossed (see
    /// [`crate::update::UpdateEngine::push_top`]).
    pub fn on_book_top(
        &mut self,
        header: &MessageHeader,
        bids: &[Level],
        asks: &[Level],
        emit: impl FnMut(i64, &[f64]),
    ) {
        self.updates.push_top(header, bids, asks);
        self.aggregate_update(header.ts, emit);
    }

    /// Folds the row of the message just pushed into its bar.
    fn aggregate_update(&mut self, ts: i64, emit: impl FnMut(i64, &[f64])) {
        let row = self.updates.row().expect("a row exists after a push");
        let values = UpdateValues {
            ofi_l1: row.ofi_l1,
            ofi_l5: row.ofi_l5,
            pressure_5: row.pressure[1],
            spread_bps: row.spread_bps,
        };
        let Self { bars, vmd, rows, .. } = self;
        if let Placed::Late { .. } = bars.on_update(ts, &values, &mut with_vmd(vmd, rows, emit)) {
            self.late += 1;
        }
    }

    /// Exchange time is now `ts` (e.g. a heartbeat or the venue's clock): calls `emit(open_ts, row)` for every bar
    /// that closed at or before it, oldest first; empty bars come out flat.
    pub fn on_clock(&mut self, ts: i64, emit: impl FnMut(i64, &[f64])) {
        let Self { bars, vmd, rows, .. } = self;
        bars.advance(ts, &mut with_vmd(vmd, rows, emit));
    }
}

/// The row sink of the bar builder: fills the VMD values of the row (of its close, when finite) and passes it on.
fn with_vmd<'a>(
    vmd: &'a mut Option<RollingVmd>,
    rows: &'a mut u64,
    mut emit: impl FnMut(i64, &[f64]) + 'a,
) -> impl FnMut(i64, &mut [f64]) + 'a {
    const CLOSE: usize = 3;
    move |open, row| {
        if let Some(vmd) = vmd.as_mut() {
            let modes = vmd.params().modes;
            let (bar, tail) = row.split_at_mut(row.len() - modes);
            let close = bar[CLOSE];
            if !(close.is_finite() && vmd.push_into(close, tail)) {
                tail.fill(f64::NAN);
            }
        }
        *rows += 1;
        emit(open, row);
    }
}

#[cfg(test)]
mod tests {
    use apex_book::UpdateKind;

    use super::*;
    use crate::bars::{BAR_COLUMNS, BOOK_COLUMNS};
    use crate::{MINUTE, SECOND};

    fn engine(book_columns: bool) -> BarFeatureEngine {
        let bars = BarParams { interval: MINUTE, rv_window: 2, higher: vec![2 * MINUTE], vmd: None };
        let scale = Scale::new(0).unwrap();
        BarFeatureEngine::new(EngineConfig { bars, price_scale: scale, qty_scale: scale, book_columns }).unwrap()
    }

    fn trade(ts: i64, price: f64) -> Trade {
        Trade { ts, side: 1, price, size: 1.0 }
    }

    #[test]
    fn the_clock_closes_bars_and_fills_empty_ones_flat() {
        let mut e = engine(false);
        let mut rows: Vec<(i64, Vec<f64>)> = Vec::new();
        let mut keep = |ts: i64, row: &[f64]| rows.push((ts, row.to_vec()));
        e.on_trade(&trade(10 * SECOND, 100.0), &mut keep).unwrap();
        e.on_clock(MINUTE - 1, &mut keep);
        e.on_clock(3 * MINUTE, &mut keep);
        assert_eq!(rows.iter().map(|(ts, _)| *ts).collect::<Vec<_>>(), vec![0, MINUTE, 2 * MINUTE]);
        let volume = BAR_COLUMNS.iter().position(|&n| n == "volume").unwrap();
        assert_eq!([rows[0].1[volume], rows[1].1[volume], rows[2].1[volume]], [1.0, 0.0, 0.0]);
        assert_eq!(rows[2].1[3], 100.0, "flat at the last close");
        assert_eq!(e.rows(), 3);
    }

    #[test]
    fn bad_and_late_trades_are_refused_and_change_nothing() {
        let mut e = engine(false);
        let mut n = 0;
        e.on_trade(&trade(MINUTE + 5, 100.0), |_, _| n += 1).unwrap();
        assert!(matches!(e.on_trade(&trade(MINUTE, 100.0), |_, _| n += 1), Err(FeatureError::Unsorted { .. })));
        let nan = Trade { price: f64::NAN, ..trade(MINUTE + 6, 1.0) };
        assert!(matches!(e.on_trade(&nan, |_, _| n += 1), Err(FeatureError::Value { column: "price", .. })));
        e.on_clock(3 * MINUTE, |_, _| n += 1);
        assert_eq!(n, 2);
        let late = e.on_trade(&trade(2 * MINUTE + 1, 100.0), |_, _| n += 1).unwrap_err();
        assert!(matches!(late, FeatureError::Late { open, .. } if open == 3 * MINUTE), "{late}");
        assert_eq!((e.late_events(), e.rows()), (1, 2));
    }

    #[test]
    fn book_messages_before_the_first_trade_count_only_in_its_bar() {
        let mut e = engine(true);
        let header = |update_id: u64, ts: i64| MessageHeader {
            first_row: 0,
            symbol: 0,
            kind: UpdateKind::Snapshot,
            update_id,
            seq: 0,
            ts,
        };
        let book = |e: &mut BarFeatureEngine, id: u64, ts: i64, bid_qty: i64| {
            e.on_book(&header(id, ts), &[Level::new(99, bid_qty)], &[Level::new(101, 1)], |_, _| {}).unwrap();
        };
        book(&mut e, 1, 5 * SECOND, 1); // a bar with no trade before the first: dropped
        book(&mut e, 2, MINUTE + 1, 3);
        book(&mut e, 3, MINUTE + 2, 4); // OFI +2 then +1 in the first trade's bar
        assert_eq!(e.update().unwrap().best_bid, 99.0);
        let mut rows = Vec::new();
        e.on_trade(&trade(MINUTE + 30 * SECOND, 100.0), |_, _| {}).unwrap();
        e.on_clock(2 * MINUTE, |ts, row| rows.push((ts, row.to_vec())));
        let at = |name| BAR_COLUMNS.len() + 5 + BOOK_COLUMNS.iter().position(|&n| n == name).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1[at("ofi_l1_sum")], 3.0, "the snapshots of the first trade's bar, not the one before");
        assert_eq!(rows[0].1[at("pressure_5_last")], (4.0 - 1.0) / 5.0);
        assert_eq!(e.names().len(), rows[0].1.len());
    }
}
