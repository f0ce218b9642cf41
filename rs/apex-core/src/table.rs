//! Tables of columns: the row count every table shares (the length of its `ts` column), and the owned `book` and
//! `trades` tables that the V5 line parser and the simulator fill (times in UTC ns, symbols as codes).

/// Implements `len` (the rows: the length of the `ts` column) and `is_empty` for tables of columns (owned `Vec`s
/// or borrowed slices), so each table type declares only its columns.
#[macro_export]
macro_rules! row_count {
    ($($table:ty),+ $(,)?) => {
        $(
            impl $table {
                /// Number of rows (the length of `ts`; the other columns are checked against it).
                #[must_use]
                pub fn len(&self) -> usize {
                    self.ts.len()
                }

                /// Whether there are no rows.
                #[must_use]
                pub fn is_empty(&self) -> bool {
                    self.ts.is_empty()
                }
            }
        )+
    };
}

/// The first of a table's columns whose length is not `expected`, as `Some((name, length))`: every table checks
/// its columns against `ts` in the same order and names the first one that is off.
///
/// `apex_core::short_column!(table, expected; a, b, c)` looks at `table.a`, `table.b`, `table.c` (anything with a
/// `len()`) and names each by its field name.
#[macro_export]
macro_rules! short_column {
    ($table:expr, $expected:expr; $($column:ident),+ $(,)?) => {
        [$((stringify!($column), $table.$column.len())),+].into_iter().find(|&(_, got)| got != $expected)
    };
}

/// The `book` table's columns, owned: one row per level of each L2 message (`side` +1 bid, -1 ask), or one marker
/// row (`side` 0, NaN price and size) for a message without levels. `kind` is 0 snapshot, 1 delta; `symbol` holds
/// codes into the producer's list of names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookRows {
    pub ts: Vec<i64>,
    pub symbol: Vec<u32>,
    pub kind: Vec<u8>,
    pub side: Vec<i8>,
    pub price: Vec<f64>,
    pub size: Vec<f64>,
    pub update_id: Vec<i64>,
    pub seq: Vec<i64>,
}

/// The fields every row of one L2 message shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHead {
    pub ts: i64,
    pub symbol: u32,
    pub kind: u8,
    pub update_id: i64,
    pub seq: i64,
}

/// The `trades` table's columns, owned: `side` is +1 buy / -1 sell taker, `symbol` codes as in [`BookRows`]. Trade
/// ids are stored Arrow-style: one UTF-8 buffer plus `len + 1` offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeRows {
    pub ts: Vec<i64>,
    pub symbol: Vec<u32>,
    pub side: Vec<i8>,
    pub price: Vec<f64>,
    pub size: Vec<f64>,
    pub trade_id_data: String,
    pub trade_id_offsets: Vec<i64>,
}

row_count!(BookRows, TradeRows);

impl BookRows {
    /// Appends one message: a row per `(side, price, size)` level, or the marker row when there is none.
    pub fn push_message(&mut self, message: MessageHead, levels: impl IntoIterator<Item = (i8, f64, f64)>) {
        let before = self.len();
        for (side, price, size) in levels {
            self.push_row(message, side, price, size);
        }
        if self.len() == before {
            self.push_row(message, 0, f64::NAN, f64::NAN);
        }
    }

    #[inline]
    fn push_row(&mut self, message: MessageHead, side: i8, price: f64, size: f64) {
        self.ts.push(message.ts);
        self.symbol.push(message.symbol);
        self.kind.push(message.kind);
        self.side.push(side);
        self.price.push(price);
        self.size.push(size);
        self.update_id.push(message.update_id);
        self.seq.push(message.seq);
    }

    /// Appends the rows of `other`, its symbol code `c` becoming `recode[c]`.
    ///
    /// # Panics
    /// When a code of `other` is not an index of `recode`.
    pub fn append(&mut self, other: BookRows, recode: &[u32]) {
        self.ts.extend(other.ts);
        self.symbol.extend(other.symbol.iter().map(|&c| recode[c as usize]));
        self.kind.extend(other.kind);
        self.side.extend(other.side);
        self.price.extend(other.price);
        self.size.extend(other.size);
        self.update_id.extend(other.update_id);
        self.seq.extend(other.seq);
    }
}

impl Default for TradeRows {
    fn default() -> Self {
        Self {
            ts: Vec::new(),
            symbol: Vec::new(),
            side: Vec::new(),
            price: Vec::new(),
            size: Vec::new(),
            trade_id_data: String::new(),
            trade_id_offsets: vec![0],
        }
    }
}

impl TradeRows {
    /// Appends one trade.
    pub fn push(&mut self, ts: i64, symbol: u32, side: i8, price: f64, size: f64, trade_id: &str) {
        self.ts.push(ts);
        self.symbol.push(symbol);
        self.side.push(side);
        self.price.push(price);
        self.size.push(size);
        self.trade_id_data.push_str(trade_id);
        self.trade_id_offsets.push(i64::try_from(self.trade_id_data.len()).expect("ids fit in i64 bytes"));
    }

    /// The trade id of row `row`.
    ///
    /// # Panics
    /// When `row` is out of range.
    #[must_use]
    pub fn trade_id(&self, row: usize) -> &str {
        let start = usize::try_from(self.trade_id_offsets[row]).expect("offsets are non-negative");
        let end = usize::try_from(self.trade_id_offsets[row + 1]).expect("offsets are non-negative");
        &self.trade_id_data[start..end]
    }

    /// Appends the rows of `other`, its symbol code `c` becoming `recode[c]`.
    ///
    /// # Panics
    /// When a code of `other` is not an index of `recode`.
    pub fn append(&mut self, other: TradeRows, recode: &[u32]) {
        let base = *self.trade_id_offsets.last().expect("offsets start with 0");
        self.ts.extend(other.ts);
        self.symbol.extend(other.symbol.iter().map(|&c| recode[c as usize]));
        self.side.extend(other.side);
        self.price.extend(other.price);
        self.size.extend(other.size);
        self.trade_id_data.push_str(&other.trade_id_data);
        self.trade_id_offsets.extend(other.trade_id_offsets[1..].iter().map(|&o| o + base));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(update_id: i64) -> MessageHead {
        MessageHead { ts: 10 * update_id, symbol: 0, kind: 1, update_id, seq: update_id }
    }

    #[test]
    fn a_message_without_levels_is_one_marker_row() {
        let mut book = BookRows::default();
        book.push_message(message(1), [(1, 100.5, 2.0), (-1, 101.0, 0.0)]);
        book.push_message(message(2), []);
        assert_eq!(book.len(), 3);
        assert_eq!(book.side, [1, -1, 0]);
        assert!(book.price[2].is_nan() && book.size[2].is_nan());
        assert_eq!((book.ts[2], book.update_id[2], book.seq[2], book.kind[2]), (20, 2, 2, 1));
    }

    #[test]
    fn append_recodes_symbols_and_shifts_trade_id_offsets() {
        let mut first = TradeRows::default();
        first.push(1, 0, 1, 10.0, 1.0, "ab");
        let mut second = TradeRows::default();
        second.push(2, 0, -1, 11.0, 2.0, "7");
        second.push(3, 1, 1, 12.0, 3.0, "xyz");
        first.append(second, &[1, 0]);
        assert_eq!(first.symbol, [0, 1, 0]);
        assert_eq!((first.trade_id(0), first.trade_id(1), first.trade_id(2)), ("ab", "7", "xyz"));
        assert_eq!(first.trade_id_offsets, [0, 2, 3, 6]);

        let mut book = BookRows::default();
        book.push_message(message(1), [(1, 1.0, 1.0)]);
        let mut later = BookRows::default();
        later.push_message(MessageHead { symbol: 1, ..message(2) }, []);
        book.append(later, &[5, 3]);
        assert_eq!(book.symbol, [0, 3]);
    }
}
