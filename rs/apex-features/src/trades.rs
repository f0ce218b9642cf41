//! Per-trade features: signed volume and trade flow imbalance over rolling time windows, streaming and batch.
//!
//! `tfi_w` at a trade at time t is `sum(side * size) / sum(size)` over the trades of the same symbol with ts in
//! `(t - w, t]` that came before it or are it (table order): a trade never sees later trades, even at the same ts.
//! Sizes are summed in exact integer units of the size scale, so the sums never drift.

use std::collections::{BTreeMap, VecDeque};

use apex_core::{Scale, TradeRows, infer_decimals_where};

use crate::{FeatureError, SECOND, duration_label};

/// Default TFI windows: 1 s, 10 s, 60 s.
pub const DEFAULT_WINDOWS: [i64; 3] = [SECOND, 10 * SECOND, 60 * SECOND];

/// The `trades` table's columns, borrowed; `symbol` holds small integer codes, `side` is +1 buy / -1 sell taker.
#[derive(Debug, Clone, Copy)]
pub struct TradeColumns<'a> {
    pub ts: &'a [i64],
    pub symbol: &'a [u32],
    pub side: &'a [i8],
    pub price: &'a [f64],
    pub size: &'a [f64],
}

apex_core::row_count!(TradeColumns<'_>);

impl<'a> From<&'a TradeRows> for TradeColumns<'a> {
    fn from(rows: &'a TradeRows) -> Self {
        TradeColumns { ts: &rows.ts, symbol: &rows.symbol, side: &rows.side, price: &rows.price, size: &rows.size }
    }
}

impl TradeColumns<'_> {
    /// Checks lengths, sides, finite positive prices and sizes, and time order within each symbol.
    ///
    /// # Errors
    /// The first problem found, naming the column and the row.
    pub fn validate(&self) -> Result<(), FeatureError> {
        let expected = self.ts.len();
        if let Some((column, got)) = apex_core::short_column!(self, expected; symbol, side, price, size) {
            return Err(FeatureError::Length { table: "trades", column, expected, got });
        }
        let mut last_ts: BTreeMap<u32, i64> = BTreeMap::new();
        for row in 0..expected {
            let bad =
                |column, value: f64, expected| FeatureError::Value { table: "trades", row, column, value, expected };
            if self.side[row] != 1 && self.side[row] != -1 {
                return Err(bad("side", f64::from(self.side[row]), "+1 (buy) or -1 (sell)"));
            }
            if !(self.price[row].is_finite() && self.price[row] > 0.0) {
                return Err(bad("price", self.price[row], "a finite positive price"));
            }
            if !(self.size[row].is_finite() && self.size[row] > 0.0) {
                return Err(bad("size", self.size[row], "a finite positive size"));
            }
            let ts = self.ts[row];
            if let Some(&previous) = last_ts.get(&self.symbol[row])
                && ts < previous
            {
                return Err(FeatureError::Unsorted { table: "trades", row, ts, previous });
            }
            last_ts.insert(self.symbol[row], ts);
        }
        Ok(())
    }

    /// The size scale: the fewest decimals on whose grid every size lies.
    ///
    /// # Panics
    /// Never: inferred decimals stay within the supported maximum.
    #[must_use]
    pub fn infer_size_scale(&self) -> Scale {
        Scale::new(size_decimals(self.size)).expect("inferred decimals are bounded")
    }
}

/// The fewest decimals on whose grid every finite size of `sizes` lies: those of a table are the largest of its
/// pieces'.
#[must_use]
pub fn size_decimals(sizes: &[f64]) -> u32 {
    infer_decimals_where(sizes, |_| true)
}

/// One window's running sums over a shared queue of trades.
#[derive(Debug, Clone)]
struct Window {
    length: i64,
    /// Absolute index (trades pushed since the start) of the oldest trade inside the window.
    start: u64,
    signed: i64,
    total: i64,
}

/// Streaming trade flow of one symbol: push trades in time order, read the TFI of each window.
#[derive(Debug, Clone)]
pub struct TradeFlow {
    qty_scale: Scale,
    windows: Vec<Window>,
    /// (ts, signed units, size units) of the trades still inside the longest window.
    queue: VecDeque<(i64, i64, i64)>,
    /// Absolute index of `queue[0]`.
    dropped: u64,
    tfi: Vec<f64>,
    signed_volume: f64,
}

impl TradeFlow {
    /// # Errors
    /// `Params` when there is no window or a window is not positive.
    pub fn new(qty_scale: Scale, windows: &[i64]) -> Result<TradeFlow, FeatureError> {
        if windows.is_empty() || windows.iter().any(|&w| w <= 0) {
            return Err(FeatureError::Params(format!("TFI windows must be positive durations, got {windows:?}")));
        }
        Ok(TradeFlow {
            qty_scale,
            windows: windows.iter().map(|&length| Window { length, start: 0, signed: 0, total: 0 }).collect(),
            queue: VecDeque::new(),
            dropped: 0,
            tfi: vec![f64::NAN; windows.len()],
            signed_volume: f64::NAN,
        })
    }

    /// Adds one trade (`side` +1 buy / -1 sell taker, `size_units` in the size scale) and updates every window.
    ///
    /// # Errors
    /// `Value` for a side other than +-1 or a size that is not positive, `Unsorted` when `ts` goes back in time;
    /// the trade is then ignored. Their `row` is 0 (a stream has no rows; [`trade_features`] fills in the table row).
    pub fn push(&mut self, ts: i64, side: i8, size_units: i64) -> Result<(), FeatureError> {
        let value =
            |column, value: f64, expected| FeatureError::Value { table: "trades", row: 0, column, value, expected };
        if side != 1 && side != -1 {
            return Err(value("side", f64::from(side), "+1 (buy) or -1 (sell)"));
        }
        if size_units <= 0 {
            return Err(value("size", self.qty_scale.to_f64(size_units), "a positive size"));
        }
        if let Some(&(previous, _, _)) = self.queue.back()
            && ts < previous
        {
            return Err(FeatureError::Unsorted { table: "trades", row: 0, ts, previous });
        }
        let signed = i64::from(side) * size_units;
        self.queue.push_back((ts, signed, size_units));
        for (window, tfi) in self.windows.iter_mut().zip(&mut self.tfi) {
            window.signed += signed;
            window.total += size_units;
            let horizon = ts.saturating_sub(window.length);
            loop {
                let (old_ts, old_signed, old_size) = self.queue[(window.start - self.dropped) as usize];
                if old_ts > horizon {
                    break;
                }
                window.signed -= old_signed;
                window.total -= old_size;
                window.start += 1;
            }
            *tfi = window.signed as f64 / window.total as f64;
        }
        let oldest_needed = self.windows.iter().map(|w| w.start).min().unwrap_or(self.dropped);
        while self.dropped < oldest_needed {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.signed_volume = self.qty_scale.to_f64(signed);
        Ok(())
    }

    /// TFI per window (in the order given at construction) after the last trade; NaN before the first.
    #[must_use]
    pub fn tfi(&self) -> &[f64] {
        &self.tfi
    }

    /// `side * size` of the last trade.
    #[must_use]
    pub fn signed_volume(&self) -> f64 {
        self.signed_volume
    }
}

/// Per-trade features of a whole `trades` table, one row per trade in table order.
#[derive(Debug, Clone, Default)]
pub struct TradeFeatureColumns {
    pub ts: Vec<i64>,
    pub symbol: Vec<u32>,
    pub signed_volume: Vec<f64>,
    /// `(tfi_<window label>, values)` per window, in the order given.
    pub tfi: Vec<(String, Vec<f64>)>,
}

/// Per-trade features of a `trades` table given in consecutive pieces in table order, one [`TradeFlow`] per symbol
/// carried from piece to piece: the rows of all pieces are those of the table in one piece.
#[derive(Debug, Clone)]
pub struct TradeFeatureStream {
    qty_scale: Scale,
    template: TradeFlow,
    flows: BTreeMap<u32, TradeFlow>,
    labels: Vec<String>,
}

impl TradeFeatureStream {
    /// `qty_scale` must hold every size of the table (the whole table's [`TradeColumns::infer_size_scale`]).
    ///
    /// # Errors
    /// `Params` for bad windows (see [`TradeFlow::new`]).
    pub fn new(qty_scale: Scale, windows: &[i64]) -> Result<TradeFeatureStream, FeatureError> {
        Ok(TradeFeatureStream {
            qty_scale,
            template: TradeFlow::new(qty_scale, windows)?,
            flows: BTreeMap::new(),
            labels: windows.iter().map(|&w| format!("tfi_{}", duration_label(w))).collect(),
        })
    }

    /// Signed volume and TFI of each trade of `piece`, in its order.
    ///
    /// # Errors
    /// `Length`, `Value` or `Unsorted` for malformed columns (see [`TradeColumns::validate`]; a trade before its
    /// symbol's last one of an earlier piece is `Unsorted` too), `Scale` for a size off the scale; rows counted from
    /// the piece's first. The state is then unspecified.
    pub fn push(&mut self, piece: &TradeColumns<'_>) -> Result<TradeFeatureColumns, FeatureError> {
        piece.validate()?;
        let n = piece.len();
        let mut out = TradeFeatureColumns {
            ts: piece.ts.to_vec(),
            symbol: piece.symbol.to_vec(),
            signed_volume: Vec::with_capacity(n),
            tfi: self.labels.iter().map(|label| (label.clone(), Vec::with_capacity(n))).collect(),
        };
        for row in 0..n {
            if row & 0xFFFF == 0 {
                apex_cancel::checkpoint(); // an interrupted caller stops a long trade stream within milliseconds
            }
            let units = self.qty_scale.from_f64(piece.size[row]).map_err(|source| FeatureError::Scale {
                table: "trades",
                row,
                column: "size",
                source,
            })?;
            let flow = self.flows.entry(piece.symbol[row]).or_insert_with(|| self.template.clone());
            flow.push(piece.ts[row], piece.side[row], units).map_err(|e| with_row(e, row))?;
            out.signed_volume.push(flow.signed_volume());
            for ((_, column), &value) in out.tfi.iter_mut().zip(flow.tfi()) {
                column.push(value);
            }
        }
        Ok(out)
    }
}

/// Signed volume and TFI over each window (nanoseconds) for every trade of a whole table: a
/// [`TradeFeatureStream`] at the table's size scale fed the table in one piece.
///
/// # Errors
/// `Params` for bad windows, else as [`TradeFeatureStream::push`].
pub fn trade_features(cols: &TradeColumns<'_>, windows: &[i64]) -> Result<TradeFeatureColumns, FeatureError> {
    TradeFeatureStream::new(cols.infer_size_scale(), windows)?.push(cols)
}

fn with_row(error: FeatureError, at: usize) -> FeatureError {
    match error {
        FeatureError::Value { table, column, value, expected, .. } => {
            FeatureError::Value { table, row: at, column, value, expected }
        }
        FeatureError::Unsorted { table, ts, previous, .. } => FeatureError::Unsorted { table, row: at, ts, previous },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_half_open_on_the_left() {
        let mut flow = TradeFlow::new(Scale::new(0).unwrap(), &[10]).unwrap();
        flow.push(0, 1, 3).unwrap();
        assert_eq!(flow.tfi(), &[1.0]);
        flow.push(5, -1, 1).unwrap();
        assert_eq!(flow.tfi(), &[0.5]);
        flow.push(10, -1, 1).unwrap();
        // The trade at 0 is at t - w exactly: out.
        assert_eq!(flow.tfi(), &[-1.0]);
        assert_eq!(flow.signed_volume(), -1.0);
        assert!(matches!(flow.push(9, 1, 1), Err(FeatureError::Unsorted { .. })));
    }

    #[test]
    fn a_piece_going_back_in_time_is_refused_at_its_row() {
        let mut stream = TradeFeatureStream::new(Scale::new(0).unwrap(), &[10]).unwrap();
        let piece =
            |ts: &'static [i64]| TradeColumns { ts, symbol: &[0, 1], side: &[1, 1], price: &[1.0; 2], size: &[1.0; 2] };
        stream.push(&piece(&[5, 6])).unwrap();
        // Symbol 1 at 6 is fine after 6; symbol 0 at 4 goes back past its 5 of the earlier piece.
        let err = stream.push(&TradeColumns {
            ts: &[6, 4],
            symbol: &[1, 0],
            side: &[1, 1],
            price: &[1.0; 2],
            size: &[1.0; 2],
        });
        assert!(matches!(err, Err(FeatureError::Unsorted { row: 1, ts: 4, previous: 5, .. })), "{err:?}");
    }

    #[test]
    fn batch_reports_bad_rows() {
        let cols = TradeColumns { ts: &[1, 2], symbol: &[0, 0], side: &[1, 2], price: &[1.0, 1.0], size: &[1.0, 1.0] };
        let err = trade_features(&cols, &DEFAULT_WINDOWS).unwrap_err();
        assert!(err.to_string().contains("row 1: column 'side'"), "{err}");
        let cols = TradeColumns { ts: &[2, 1], symbol: &[0, 0], side: &[1, 1], price: &[1.0, 1.0], size: &[1.0, 1.0] };
        assert!(matches!(trade_features(&cols, &DEFAULT_WINDOWS), Err(FeatureError::Unsorted { row: 1, .. })));
    }
}
