//! The `book` table in columnar form: row validation, grouping rows into V5 messages, and replay per symbol.

use std::collections::BTreeMap;
use std::ops::Range;

use apex_core::{BookRows, Scale, ScaleError, infer_decimals_where};
use thiserror::Error;

use crate::{Applied, BookError, BookStats, L2Book, Level, UpdateKind};

/// `kind` column codes.
pub const KIND_SNAPSHOT: u8 = 0;
pub const KIND_DELTA: u8 = 1;

/// The `book` table's columns, borrowed. `symbol` holds small integer codes (a categorical's physical values);
/// `side` is +1 bid, -1 ask, 0 for the single marker row of a message that carries no levels.
#[derive(Debug, Clone, Copy)]
pub struct BookColumns<'a> {
    pub ts: &'a [i64],
    pub symbol: &'a [u32],
    pub kind: &'a [u8],
    pub side: &'a [i8],
    pub price: &'a [f64],
    pub size: &'a [f64],
    pub update_id: &'a [i64],
    pub seq: &'a [i64],
}

apex_core::row_count!(BookColumns<'_>);

/// A row that cannot be turned into a book update; `row` is the 0-based row index in the table.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ColumnError {
    #[error("column '{column}' has {got} rows, expected {expected}")]
    Length { column: &'static str, expected: usize, got: usize },
    #[error("row {row}: column 'kind' holds code {code}, expected 0 (snapshot) or 1 (delta)")]
    Kind { row: usize, code: u8 },
    #[error("row {row}: column 'side' holds {side}, expected +1 (bid), -1 (ask) or 0 (no-level marker)")]
    Side { row: usize, side: i8 },
    #[error("row {row}: column 'update_id' holds {value}, expected a non-negative id")]
    UpdateId { row: usize, value: i64 },
    #[error("row {row}: column '{column}': {source}")]
    Value { row: usize, column: &'static str, source: ScaleError },
}

impl<'a> From<&'a BookRows> for BookColumns<'a> {
    fn from(rows: &'a BookRows) -> Self {
        BookColumns {
            ts: &rows.ts,
            symbol: &rows.symbol,
            kind: &rows.kind,
            side: &rows.side,
            price: &rows.price,
            size: &rows.size,
            update_id: &rows.update_id,
            seq: &rows.seq,
        }
    }
}

impl<'a> BookColumns<'a> {
    /// Checks lengths and the codes of `kind`, `side` and `update_id`; values are checked when decoded.
    ///
    /// # Errors
    /// The first problem found, naming the column and the row.
    pub fn validate(&self) -> Result<(), ColumnError> {
        let expected = self.ts.len();
        if let Some((column, got)) =
            apex_core::short_column!(self, expected; symbol, kind, side, price, size, update_id, seq)
        {
            return Err(ColumnError::Length { column, expected, got });
        }
        for row in 0..expected {
            if self.kind[row] > KIND_DELTA {
                return Err(ColumnError::Kind { row, code: self.kind[row] });
            }
            if !(-1..=1).contains(&self.side[row]) {
                return Err(ColumnError::Side { row, side: self.side[row] });
            }
            if self.update_id[row] < 0 {
                return Err(ColumnError::UpdateId { row, value: self.update_id[row] });
            }
        }
        Ok(())
    }

    /// Row ranges of consecutive rows that belong to one message: same symbol, kind, update id, seq and ts.
    pub fn messages(&self) -> impl Iterator<Item = Range<usize>> + 'a {
        let cols = *self;
        let mut start = 0;
        std::iter::from_fn(move || {
            if start >= cols.len() {
                return None;
            }
            let key = |row: usize| (cols.symbol[row], cols.kind[row], cols.update_id[row], cols.seq[row], cols.ts[row]);
            let first = key(start);
            let mut end = start + 1;
            while end < cols.len() && key(end) == first {
                end += 1;
            }
            let range = start..end;
            start = end;
            Some(range)
        })
    }

    /// Scales inferred from the decimals present in the price and size columns (marker rows ignored).
    ///
    /// # Panics
    /// Never: inferred decimals stay within the supported maximum.
    #[must_use]
    pub fn infer_scales(&self) -> (Scale, Scale) {
        level_scales(self.side, self.price, self.size)
    }

    /// Decodes the rows of one message into integer levels (into reusable buffers).
    ///
    /// # Errors
    /// `Value` for a NaN, infinite, negative-zero-free off-grid price or size.
    pub fn decode(
        &self,
        rows: Range<usize>,
        price_scale: Scale,
        qty_scale: Scale,
        bids: &mut Vec<Level>,
        asks: &mut Vec<Level>,
    ) -> Result<MessageHeader, ColumnError> {
        bids.clear();
        asks.clear();
        let first = rows.start;
        for row in rows {
            if self.side[row] == 0 {
                continue;
            }
            let price = price_scale.from_f64(self.price[row]).map_err(|source| ColumnError::Value {
                row,
                column: "price",
                source,
            })?;
            let qty = qty_scale.from_f64(self.size[row]).map_err(|source| ColumnError::Value {
                row,
                column: "size",
                source,
            })?;
            let level = Level::new(price, qty);
            if self.side[row] > 0 { bids.push(level) } else { asks.push(level) }
        }
        Ok(MessageHeader {
            first_row: first,
            symbol: self.symbol[first],
            kind: if self.kind[first] == KIND_SNAPSHOT { UpdateKind::Snapshot } else { UpdateKind::Delta },
            update_id: self.update_id[first] as u64,
            seq: self.seq[first],
            ts: self.ts[first],
        })
    }
}

/// The per-message fields shared by its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    pub first_row: usize,
    pub symbol: u32,
    pub kind: UpdateKind,
    pub update_id: u64,
    pub seq: i64,
    pub ts: i64,
}

/// Result of replaying a whole table: one book per symbol code, plus what went wrong where.
#[derive(Debug, Clone)]
pub struct Replay {
    pub books: BTreeMap<u32, L2Book>,
    pub messages: u64,
    /// (first row of the message, error) for every gap, refused delta and crossed book, in table order.
    pub incidents: Vec<(usize, BookError)>,
}

impl Replay {
    /// Sum of every book's counters.
    #[must_use]
    pub fn total_stats(&self) -> BookStats {
        let mut total = BookStats::default();
        for book in self.books.values() {
            let s = book.stats();
            total.snapshots += s.snapshots;
            total.deltas += s.deltas;
            total.rebases += s.rebases;
            total.dropped_before_snapshot += s.dropped_before_snapshot;
            total.gaps += s.gaps;
            total.refused_while_stale += s.refused_while_stale;
            total.crossed += s.crossed;
        }
        total
    }
}

/// Replays every message of the table through one book per symbol, calling `observe` after each message with the
/// book (as it stands after the message), the header and the outcome.
///
/// # Errors
/// A `ColumnError` for malformed rows; protocol problems (gaps, crossed books) are not errors here: they are
/// passed to `observe` and recorded in [`Replay::incidents`].
pub fn replay<F>(cols: &BookColumns<'_>, scales: (Scale, Scale), mut observe: F) -> Result<Replay, ColumnError>
where
    F: FnMut(&L2Book, &MessageHeader, &Result<Applied, BookError>),
{
    cols.validate()?;
    let (price_scale, qty_scale) = scales;
    let mut books: BTreeMap<u32, L2Book> = BTreeMap::new();
    let mut incidents = Vec::new();
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    let mut messages = 0;
    for rows in cols.messages() {
        let header = cols.decode(rows, price_scale, qty_scale, &mut bids, &mut asks)?;
        let book = books.entry(header.symbol).or_insert_with(|| L2Book::new(price_scale, qty_scale));
        let outcome = book.apply(header.kind, header.update_id, header.seq, header.ts, &bids, &asks);
        if let Err(error) = &outcome {
            incidents.push((header.first_row, error.clone()));
        }
        observe(book, &header, &outcome);
        messages += 1;
    }
    Ok(Replay { books, messages, incidents })
}

/// Scales inferred from the decimals present in the prices and sizes of the level rows (`side` not 0) of a `book`
/// table. The fewest decimals that hold every value, so those of a table are the largest of those of its pieces.
///
/// # Panics
/// Never: inferred decimals stay within the supported maximum.
#[must_use]
pub fn level_scales(side: &[i8], price: &[f64], size: &[f64]) -> (Scale, Scale) {
    let level = |row: usize| side.get(row).is_some_and(|&s| s != 0);
    let scale = |values| Scale::new(infer_decimals_where(values, level)).expect("inferred decimals are bounded");
    (scale(price), scale(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_rows_into_messages_and_replays() {
        // snapshot (2 rows), empty delta (marker), delta (1 row)
        let ts = [1, 1, 2, 3];
        let symbol = [0, 0, 0, 0];
        let kind = [0, 0, 1, 1];
        let side = [1, -1, 0, 1];
        let price = [100.5, 101.0, f64::NAN, 100.5];
        let size = [1.25, 2.0, f64::NAN, 0.0];
        let update_id = [7, 7, 8, 9];
        let seq = [1, 1, 2, 3];
        let cols = BookColumns {
            ts: &ts,
            symbol: &symbol,
            kind: &kind,
            side: &side,
            price: &price,
            size: &size,
            update_id: &update_id,
            seq: &seq,
        };
        assert_eq!(cols.messages().collect::<Vec<_>>(), vec![0..2, 2..3, 3..4]);
        let (ps, qs) = cols.infer_scales();
        assert_eq!((ps.decimals(), qs.decimals()), (1, 2));
        let mut seen = 0;
        let replay = replay(&cols, (ps, qs), |_, _, outcome| {
            assert!(outcome.is_ok());
            seen += 1;
        })
        .unwrap();
        assert_eq!(seen, 3);
        let book = &replay.books[&0];
        assert_eq!(book.best_bid(), None);
        assert_eq!(book.best_ask(), Some(Level::new(1010, 200)));
        assert!(replay.incidents.is_empty());
    }

    #[test]
    fn nan_price_names_the_row() {
        let cols = BookColumns {
            ts: &[1],
            symbol: &[0],
            kind: &[0],
            side: &[1],
            price: &[f64::NAN],
            size: &[1.0],
            update_id: &[1],
            seq: &[1],
        };
        let err = replay(&cols, (Scale::new(1).unwrap(), Scale::new(1).unwrap()), |_, _, _| {}).unwrap_err();
        assert!(matches!(err, ColumnError::Value { row: 0, column: "price", .. }), "{err}");
    }

    #[test]
    fn bad_codes_are_rejected() {
        let cols = BookColumns {
            ts: &[1],
            symbol: &[0],
            kind: &[3],
            side: &[1],
            price: &[1.0],
            size: &[1.0],
            update_id: &[1],
            seq: &[1],
        };
        assert_eq!(cols.validate(), Err(ColumnError::Kind { row: 0, code: 3 }));
    }
}
