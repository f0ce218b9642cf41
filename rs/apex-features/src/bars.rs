//! Per-bar features from trades or klines: OHLCV, CLV, returns, realized volatility, book aggregates and MTFA.
//!
//! Bars open at multiples of the interval in UTC (`ts` = open, nanoseconds) and cover `[ts, ts + interval)`.
//! Empty bars between a symbol's first and last bar are filled (OHLC = previous close, volume 0), so every series
//! is regular. Higher-timeframe (MTFA) columns on a base row come from the **last closed** higher bar only: the
//! higher bar `[H, H + h)` is used on the base row opening at `ts` only if `H + h <= ts + interval` (the base row's
//! close), so no value on a row depends on anything after that row's close. VMD columns decompose the closes of the
//! window of bars ending at the row.
//!
//! The batch [`bar_features`] runs the streaming engine's bar builder ([`crate::bar_stream`]) over the tables, so a
//! live [`crate::engine::BarFeatureEngine`] fed the same trades and book produces the same rows; [`BarTableStream`]
//! takes the tables in pieces, so a week of trades and book is never held whole.

use std::collections::{BTreeMap, VecDeque};

use crate::bar_stream::{Atom, BarStream, UpdateValues};
use crate::trades::TradeColumns;
use crate::vmd::{VmdParams, rolling_vmd};
use crate::{FeatureError, FeatureOptions, HOUR, MINUTE, duration_label};

/// The bar intervals the CLI offers.
pub const STANDARD_INTERVALS: [i64; 4] = [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR];

/// Names of the per-bar float columns, in output order.
pub const BAR_COLUMNS: [&str; 11] =
    ["open", "high", "low", "close", "volume", "turnover", "n_trades", "buy_volume", "clv", "ret", "rv"];

/// Bar columns repeated for each higher timeframe as `<name>_<interval label>` (e.g. `clv_5m`).
pub const MTFA_COLUMNS: [&str; 5] = ["close", "volume", "clv", "ret", "rv"];

/// The book levels a feature column reads (`ofi_l5_sum`, `pressure_5_last`, `pressure_10`: 5, 5, 10), `None` for
/// a column that reads no levels beyond the touch or no book at all: a book kept to fewer levels gives such a column
/// another meaning.
#[must_use]
pub fn book_levels_read(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("ofi_l").or_else(|| name.strip_prefix("pressure_"))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&levels| levels > 1)
}

/// Update-level features aggregated into each bar when a book is given.
pub const BOOK_COLUMNS: [&str; 4] = ["ofi_l1_sum", "ofi_l5_sum", "pressure_5_last", "spread_bps_mean"];

/// A Bybit klines (`bars`) table, borrowed; every row has the same `interval` (nanoseconds).
#[derive(Debug, Clone, Copy)]
pub struct KlineColumns<'a> {
    pub ts: &'a [i64],
    pub symbol: &'a [u32],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
    pub turnover: &'a [f64],
    pub interval: i64,
}

/// Where bars come from.
#[derive(Debug, Clone, Copy)]
pub enum BarSource<'a> {
    Trades(TradeColumns<'a>),
    Klines(KlineColumns<'a>),
}

/// The update features [`bar_features`] aggregates per bar, borrowed (see `UpdateColumns::series`); symbol codes
/// must mean the same symbols as the bar source's.
#[derive(Debug, Clone, Copy)]
pub struct UpdateSeries<'a> {
    pub ts: &'a [i64],
    pub symbol: &'a [u32],
    pub ofi_l1: &'a [f64],
    pub ofi_l5: &'a [f64],
    pub pressure_5: &'a [f64],
    pub spread_bps: &'a [f64],
}

impl UpdateSeries<'_> {
    fn check(&self) -> Result<(), FeatureError> {
        let expected = self.ts.len();
        if let Some((column, got)) =
            apex_core::short_column!(self, expected; symbol, ofi_l1, ofi_l5, pressure_5, spread_bps)
        {
            return Err(FeatureError::Length { table: "update features", column, expected, got });
        }
        Ok(())
    }

    pub(crate) fn values(&self, row: usize) -> UpdateValues {
        UpdateValues {
            ofi_l1: self.ofi_l1[row],
            ofi_l5: self.ofi_l5[row],
            pressure_5: self.pressure_5[row],
            spread_bps: self.spread_bps[row],
        }
    }
}

/// Options of [`bar_features`].
#[derive(Debug, Clone, PartialEq)]
pub struct BarParams {
    /// Base bar length in nanoseconds.
    pub interval: i64,
    /// Number of log returns in the realized volatility `rv`.
    pub rv_window: usize,
    /// Higher timeframes (nanoseconds, multiples of `interval`) whose last closed bar is joined onto each row.
    pub higher: Vec<i64>,
    /// Rolling VMD of the close (`vmd_1..K`, `window` bars), or none.
    pub vmd: Option<VmdParams>,
}

impl BarParams {
    /// `interval` with the `features` command's defaults: rv over 30 returns, every standard interval above it as
    /// MTFA, and VMD of 3 modes over 64 bars.
    #[must_use]
    pub fn new(interval: i64) -> BarParams {
        BarParams::with_options(interval, &FeatureOptions::default())
    }

    /// `interval` with every standard interval above it as MTFA and the rv window and VMD of `options`: the bars of
    /// a table `apexctl features` made with those options, as the simulator and the live engine stream them.
    #[must_use]
    pub fn with_options(interval: i64, options: &FeatureOptions) -> BarParams {
        BarParams {
            interval,
            rv_window: options.rv_bars,
            higher: STANDARD_INTERVALS.iter().copied().filter(|&h| h > interval && h % interval == 0).collect(),
            vmd: options.vmd(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), FeatureError> {
        if self.interval <= 0 {
            return Err(FeatureError::Params(format!("bar interval must be positive, got {} ns", self.interval)));
        }
        if self.rv_window == 0 {
            return Err(FeatureError::Params("realized volatility needs at least 1 return (rv window 0)".into()));
        }
        if let Some(h) = self.higher.iter().find(|&&h| h <= self.interval || h % self.interval != 0) {
            return Err(FeatureError::Params(format!(
                "MTFA interval {} is not a multiple of the base interval {} greater than it",
                duration_label(*h),
                duration_label(self.interval)
            )));
        }
        if let Some(vmd) = &self.vmd {
            vmd.validate(vmd.window)?;
        }
        Ok(())
    }
}

/// Bar features of every symbol: rows grouped by symbol code (ascending), then by bar open time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarTable {
    pub ts: Vec<i64>,
    pub symbol: Vec<u32>,
    /// `(name, values)` in output order: [`BAR_COLUMNS`], MTFA columns per higher interval, [`BOOK_COLUMNS`],
    /// `vmd_1..K`.
    pub columns: Vec<(String, Vec<f64>)>,
}

apex_core::row_count!(BarTable);

impl BarTable {
    #[must_use]
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
}

/// The float column names [`bar_features`] outputs for `params`, in order: [`BAR_COLUMNS`], the MTFA columns of each
/// higher interval, [`BOOK_COLUMNS`] when `with_book`, then `vmd_1..K` when `params.vmd` is set.
#[must_use]
pub fn column_names(params: &BarParams, with_book: bool) -> Vec<String> {
    let mut names: Vec<String> = BAR_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    for &h in &params.higher {
        names.extend(MTFA_COLUMNS.iter().map(|name| format!("{name}_{}", duration_label(h))));
    }
    if with_book {
        names.extend(BOOK_COLUMNS.iter().map(|s| (*s).to_owned()));
    }
    if let Some(vmd) = &params.vmd {
        names.extend((1..=vmd.modes).map(|k| format!("vmd_{k}")));
    }
    names
}

/// Checks a source's rows (see [`TradeColumns::validate`] and the kline checks).
fn check_source(source: &BarSource<'_>, interval: i64) -> Result<(), FeatureError> {
    match source {
        BarSource::Trades(t) => t.validate(),
        BarSource::Klines(k) => check_klines(k, interval),
    }
}

impl BarSource<'_> {
    fn table(&self) -> &'static str {
        match self {
            BarSource::Trades(_) => "trades",
            BarSource::Klines(_) => "bars",
        }
    }

    fn rows(&self) -> (&[i64], &[u32]) {
        match self {
            BarSource::Trades(t) => (t.ts, t.symbol),
            BarSource::Klines(k) => (k.ts, k.symbol),
        }
    }
}

/// The atom of row `row` of a source: one trade, or one kline.
fn atom_at(source: &BarSource<'_>, row: usize) -> Atom {
    match source {
        BarSource::Trades(t) => Atom::trade(t.ts[row], t.side[row], t.price[row], t.size[row]),
        BarSource::Klines(k) => Atom {
            ts: k.ts[row],
            open: k.open[row],
            high: k.high[row],
            low: k.low[row],
            close: k.close[row],
            volume: k.volume[row],
            turnover: k.turnover[row],
            n_trades: f64::NAN,
            buy_volume: f64::NAN,
        },
    }
}

fn check_klines(k: &KlineColumns<'_>, interval: i64) -> Result<(), FeatureError> {
    let expected = k.ts.len();
    let columns: [(&'static str, &[f64]); 6] = [
        ("open", k.open),
        ("high", k.high),
        ("low", k.low),
        ("close", k.close),
        ("volume", k.volume),
        ("turnover", k.turnover),
    ];
    if let Some((column, got)) = apex_core::short_column!(k, expected; symbol, open, high, low, close, volume, turnover)
    {
        return Err(FeatureError::Length { table: "bars", column, expected, got });
    }
    if k.interval <= 0 || interval % k.interval != 0 {
        return Err(FeatureError::Params(format!(
            "klines of {} cannot make bars of {}: the bar interval must be a multiple of the kline interval",
            duration_label(k.interval),
            duration_label(interval)
        )));
    }
    let mut last_ts: BTreeMap<u32, i64> = BTreeMap::new();
    for row in 0..expected {
        for (column, values) in columns {
            let value = values[row];
            let ok = if column == "volume" || column == "turnover" { value >= 0.0 } else { value > 0.0 };
            if !(value.is_finite() && ok) {
                let expected = if ok { "a finite number" } else { "a finite positive (or non-negative) number" };
                return Err(FeatureError::Value { table: "bars", row, column, value, expected });
            }
        }
        let ts = k.ts[row];
        if ts.rem_euclid(k.interval) != 0 {
            return Err(FeatureError::Unaligned { table: "bars", row, ts, interval: k.interval });
        }
        if let Some(&previous) = last_ts.get(&k.symbol[row])
            && ts <= previous
        {
            return Err(FeatureError::Unsorted { table: "bars", row, ts, previous });
        }
        last_ts.insert(k.symbol[row], ts);
    }
    Ok(())
}

/// Row indices of `updates` per symbol code, each in table order; checks that time never goes back per symbol.
/// Bars of `params.interval` from trades or klines, with CLV, log return, realized volatility, MTFA columns of the
/// last closed higher bars, and, when `updates` is given, the update features aggregated per bar: sums of the
/// defined `ofi_l1`/`ofi_l5`, the last defined `pressure_5` and the mean defined `spread_bps` (NaN when the bar
/// has none); then, when `params.vmd` is set, `vmd_1..K`: the rolling VMD of each symbol's closes. Symbol codes of
/// `updates` must mean the same symbols as the source's.
///
/// `ret` is NaN on a symbol's first bar; `rv` is NaN until `rv_window` returns exist; VMD until a full window.
///
/// This is the streaming [`BarFeatureEngine`](crate::engine::BarFeatureEngine)'s bar builder run over the tables:
/// per symbol, the atoms and the update rows merged in time order, then the last bar closed at the table's end.
/// Updates after a symbol's last bar change nothing, as they would not in a stream that stopped there. It is a
/// [`BarTableStream`] given each table in one piece.
///
/// # Errors
/// `Params`/`Vmd` for bad intervals, windows or VMD settings, `Value`/`Length`/`Unsorted`/`Unaligned` for malformed
/// input rows (update rows must not go back in time per symbol).
pub fn bar_features(
    source: &BarSource<'_>,
    updates: Option<&UpdateSeries<'_>>,
    params: &BarParams,
) -> Result<BarTable, FeatureError> {
    params.check()?;
    check_source(source, params.interval)?;
    let (ts, symbols) = source.rows();
    let mut last: BTreeMap<u32, i64> = BTreeMap::new();
    for (&symbol, &ts) in symbols.iter().zip(ts) {
        last.insert(symbol, ts);
    }
    let mut stream = BarTableStream::new(params.clone(), updates.is_some(), &last)?;
    stream.push_source(source)?;
    if let Some(updates) = updates {
        stream.push_updates(updates)?;
    }
    stream.finish()
}

/// The rows of one symbol of a [`BarTableStream`]: its bar builder, the rows it has made, and the source rows and
/// updates pushed but not yet built.
#[derive(Debug)]
struct SymbolBars {
    stream: BarStream,
    /// Where the symbol's last bar ends: updates at or after it change nothing.
    end: i64,
    ts: Vec<i64>,
    rows: Vec<Vec<f64>>,
    atoms: VecDeque<Atom>,
    updates: VecDeque<(i64, UpdateValues)>,
}

impl SymbolBars {
    /// Builds the pushed atoms and updates in the order of the batch (the updates at or before an atom's time, then
    /// the atom) with times before `below`, or all of them.
    fn build(&mut self, below: Option<i64>) {
        let Self { stream, ts, rows, atoms, updates, .. } = self;
        let mut emit = row_sink(ts, rows);
        loop {
            let (at, update_first) = match (updates.front(), atoms.front()) {
                (Some(&(u, _)), Some(atom)) if u <= atom.ts => (u, true),
                (_, Some(atom)) => (atom.ts, false),
                (Some(&(u, _)), None) => (u, true),
                (None, None) => break,
            };
            if below.is_some_and(|below| at >= below) {
                break;
            }
            if update_first {
                let (u, values) = updates.pop_front().expect("an update is pending");
                stream.on_update(u, &values, &mut emit);
            } else {
                let atom = atoms.pop_front().expect("an atom is pending");
                stream.on_atom(&atom, &mut emit);
            }
        }
    }

    /// Completes the last bar, once every row is built.
    fn finish(&mut self) {
        let Self { stream, ts, rows, .. } = self;
        stream.finish(&mut row_sink(ts, rows));
    }
}

/// Appends each emitted row to `ts` and the `rows` columns.
fn row_sink<'a>(ts: &'a mut Vec<i64>, rows: &'a mut [Vec<f64>]) -> impl FnMut(i64, &mut [f64]) + 'a {
    move |open, row| {
        ts.push(open);
        for (column, &value) in rows.iter_mut().zip(row.iter()) {
            column.push(value);
        }
    }
}

/// [`bar_features`] of a source and its book updates given in consecutive pieces, so neither is ever held whole:
/// `push_source` and `push_updates` in any interleaving, then `finish` for the table. Each input's pieces come in
/// time order: a piece's rows are at or after the latest time of the input's earlier pieces (`Unsorted` if not);
/// within a piece, each symbol's rows are in time order. Rows are built as soon as both inputs have reached past
/// them (an input with nothing more to give says so with `close_source` / `close_updates`), so a caller that feeds
/// the input behind in time first holds about a piece of each.
#[derive(Debug)]
pub struct BarTableStream {
    params: BarParams,
    with_book: bool,
    symbols: BTreeMap<u32, SymbolBars>,
    /// The latest time of each input's pushed rows (`i64::MAX` once closed, or for updates without a book).
    source_reached: Option<i64>,
    updates_reached: Option<i64>,
}

impl BarTableStream {
    /// Bars of the symbols of `last_ts` (each symbol's last source row time: its bars end with that row's bar).
    ///
    /// # Errors
    /// `Params`/`Vmd` for bad intervals, windows or VMD settings.
    pub fn new(params: BarParams, with_book: bool, last_ts: &BTreeMap<u32, i64>) -> Result<Self, FeatureError> {
        params.check()?;
        let width = BarStream::new(&params, with_book, 0).width();
        let symbols = last_ts
            .iter()
            .map(|(&symbol, &last)| {
                let bars = SymbolBars {
                    stream: BarStream::new(&params, with_book, 0),
                    end: (last.div_euclid(params.interval) * params.interval).saturating_add(params.interval),
                    ts: Vec::new(),
                    rows: vec![Vec::new(); width],
                    atoms: VecDeque::new(),
                    updates: VecDeque::new(),
                };
                (symbol, bars)
            })
            .collect();
        let updates_reached = if with_book { None } else { Some(i64::MAX) };
        Ok(BarTableStream { params, with_book, symbols, source_reached: None, updates_reached })
    }

    /// Adds source rows (trades or klines).
    ///
    /// # Errors
    /// As [`bar_features`] for malformed rows, `Unsorted` for a row before the latest of an earlier piece or of its
    /// symbol, `Params` for a symbol `new` was not given; rows counted from the piece's first.
    pub fn push_source(&mut self, piece: &BarSource<'_>) -> Result<(), FeatureError> {
        check_source(piece, self.params.interval)?;
        let (ts, symbols) = piece.rows();
        let table = piece.table();
        let reached = checked_order(table, ts, self.source_reached)?;
        for (row, (&symbol, &ts)) in symbols.iter().zip(ts).enumerate() {
            if row & 0xFFFF == 0 {
                apex_cancel::checkpoint(); // an interrupted caller stops a long table within milliseconds
            }
            let bars = self.symbols.get_mut(&symbol).ok_or_else(|| {
                FeatureError::Params(format!("{table} row {row}: symbol code {symbol} was not among those announced"))
            })?;
            if let Some(previous) = bars.atoms.back().map(|a| a.ts)
                && ts < previous
            {
                return Err(FeatureError::Unsorted { table, row, ts, previous });
            }
            bars.atoms.push_back(atom_at(piece, row));
        }
        self.source_reached = reached.or(self.source_reached);
        self.build();
        Ok(())
    }

    /// Adds the update features of book messages; those of symbols without source rows, or after a symbol's last
    /// bar, change nothing.
    ///
    /// # Errors
    /// `Length` for columns of different lengths, `Unsorted` as for `push_source`.
    pub fn push_updates(&mut self, piece: &UpdateSeries<'_>) -> Result<(), FeatureError> {
        piece.check()?;
        let table = "update features";
        let reached = checked_order(table, piece.ts, self.updates_reached)?;
        for row in 0..piece.ts.len() {
            if row & 0xFFFF == 0 {
                apex_cancel::checkpoint();
            }
            let ts = piece.ts[row];
            let Some(bars) = self.symbols.get_mut(&piece.symbol[row]) else { continue };
            if let Some(&(previous, _)) = bars.updates.back()
                && ts < previous
            {
                return Err(FeatureError::Unsorted { table, row, ts, previous });
            }
            if ts < bars.end {
                bars.updates.push_back((ts, piece.values(row)));
            }
        }
        self.updates_reached = reached.or(self.updates_reached);
        self.build();
        Ok(())
    }

    /// No more source rows will come.
    pub fn close_source(&mut self) {
        self.source_reached = Some(i64::MAX);
        self.build();
    }

    /// No more updates will come.
    pub fn close_updates(&mut self) {
        self.updates_reached = Some(i64::MAX);
        self.build();
    }

    /// Builds what both inputs have passed: every row before the earlier of the times they have reached (a row at
    /// that time may still be joined by one of the other input).
    fn build(&mut self) {
        let (Some(source), Some(updates)) = (self.source_reached, self.updates_reached) else { return };
        let below = source.min(updates);
        for bars in self.symbols.values_mut() {
            bars.build((below < i64::MAX).then_some(below));
        }
    }

    /// The table: rows grouped by symbol code, then by bar open time, as [`bar_features`] gives them.
    ///
    /// # Errors
    /// `Vmd` when the decomposition fails.
    pub fn finish(mut self) -> Result<BarTable, FeatureError> {
        let names = column_names(&self.params, self.with_book);
        let mut table =
            BarTable { columns: names.into_iter().map(|n| (n, Vec::new())).collect(), ..BarTable::default() };
        let close_column = BAR_COLUMNS.iter().position(|&n| n == "close").expect("close is a bar column");
        for (symbol, mut bars) in std::mem::take(&mut self.symbols) {
            bars.build(None);
            bars.finish();
            let first_row = table.ts.len();
            table.symbol.extend(std::iter::repeat_n(symbol, bars.ts.len()));
            table.ts.extend(bars.ts);
            let width = bars.rows.len();
            for ((_, column), values) in table.columns[..width].iter_mut().zip(bars.rows) {
                column.extend(values);
            }
            if let Some(vmd) = &self.params.vmd {
                let rows = first_row..table.ts.len();
                let closes = &table.columns[close_column].1[rows.clone()];
                let finite: Vec<usize> = (0..closes.len()).filter(|&i| closes[i].is_finite()).collect();
                let series: Vec<f64> = finite.iter().map(|&i| closes[i]).collect();
                let modes = rolling_vmd(&series, vmd)?;
                for (k, mode) in modes.iter().enumerate() {
                    let column = &mut table.columns[width + k].1;
                    column.resize(rows.end, f64::NAN);
                    for (&i, &value) in finite.iter().zip(mode) {
                        column[rows.start + i] = value;
                    }
                }
            }
        }
        Ok(table)
    }
}

/// The latest time of a piece's rows (None without rows), or `Unsorted` naming its first row before `reached`.
fn checked_order(table: &'static str, ts: &[i64], reached: Option<i64>) -> Result<Option<i64>, FeatureError> {
    if let Some(previous) = reached
        && let Some(row) = ts.iter().position(|&t| t < previous)
    {
        return Err(FeatureError::Unsorted { table, row, ts: ts[row], previous });
    }
    Ok(ts.iter().copied().max().map(|latest| reached.map_or(latest, |r| r.max(latest))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SECOND;

    fn trades(ts: &[i64], price: &[f64], size: &[f64], side: &[i8]) -> BarTable {
        let symbol = vec![0; ts.len()];
        let cols = TradeColumns { ts, symbol: &symbol, side, price, size };
        let params = BarParams { interval: MINUTE, rv_window: 2, higher: vec![2 * MINUTE], vmd: None };
        bar_features(&BarSource::Trades(cols), None, &params).unwrap()
    }

    #[test]
    fn book_columns_name_the_levels_they_read() {
        let read: Vec<_> =
            ["ofi_l1_sum", "ofi_l5_sum", "pressure_5_last", "pressure_10", "pressure_1", "spread_bps_mean"]
                .iter()
                .map(|name| book_levels_read(name))
                .collect();
        assert_eq!(read, [None, Some(5), Some(5), Some(10), None, None]);
    }

    #[test]
    fn ohlcv_clv_gap_fill_and_returns() {
        let m = MINUTE;
        let t = trades(
            &[10 * SECOND, 20 * SECOND, 30 * SECOND, 3 * m + 5 * SECOND],
            &[100.0, 104.0, 101.0, 110.0],
            &[1.0, 2.0, 0.5, 1.0],
            &[1, -1, 1, 1],
        );
        assert_eq!(t.ts, vec![0, m, 2 * m, 3 * m]);
        assert_eq!(t.column("open").unwrap(), &[100.0, 101.0, 101.0, 110.0]);
        assert_eq!(t.column("high").unwrap()[0], 104.0);
        assert_eq!(t.column("volume").unwrap(), &[3.5, 0.0, 0.0, 1.0]);
        assert_eq!(t.column("buy_volume").unwrap(), &[1.5, 0.0, 0.0, 1.0]);
        assert_eq!(t.column("n_trades").unwrap(), &[3.0, 0.0, 0.0, 1.0]);
        assert_eq!(t.column("turnover").unwrap()[0], 100.0 + 208.0 + 50.5);
        assert_eq!(t.column("clv").unwrap(), &[((101.0 - 100.0) - (104.0 - 101.0)) / 4.0, 0.0, 0.0, 0.0]);
        let ret = t.column("ret").unwrap();
        assert!(ret[0].is_nan());
        assert_eq!(&ret[1..], &[0.0, 0.0, (110.0_f64 / 101.0).ln()]);
        let rv = t.column("rv").unwrap();
        assert!(rv[1].is_nan());
        assert_eq!(rv[3], (110.0_f64 / 101.0).ln().abs());
        // 2m bars: [0, 2m) closes at 2m; the base row opening at 1m closes at 2m and may use it; the row at 0 may
        // not. The row at 3m closes at 4m with the 2m bar [2m, 4m) that holds its own trade at 110.
        let close_2m = t.column("close_2m").unwrap();
        assert!(close_2m[0].is_nan());
        assert_eq!(&close_2m[1..], &[101.0, 101.0, 110.0]);
    }

    #[test]
    fn klines_aggregate_to_higher_bars() {
        let m = MINUTE;
        let k = KlineColumns {
            ts: &[0, m, 2 * m],
            symbol: &[3, 3, 3],
            open: &[10.0, 11.0, 12.0],
            high: &[11.0, 13.0, 12.5],
            low: &[9.0, 10.5, 11.0],
            close: &[11.0, 12.0, 11.5],
            volume: &[1.0, 2.0, 3.0],
            turnover: &[10.0, 20.0, 30.0],
            interval: m,
        };
        let params = BarParams { interval: 2 * m, rv_window: 30, higher: vec![], vmd: None };
        let t = bar_features(&BarSource::Klines(k), None, &params).unwrap();
        assert_eq!(t.ts, vec![0, 2 * m]);
        assert_eq!(t.symbol, vec![3, 3]);
        assert_eq!(t.column("high").unwrap(), &[13.0, 12.5]);
        assert_eq!(t.column("close").unwrap(), &[12.0, 11.5]);
        assert_eq!(t.column("volume").unwrap(), &[3.0, 3.0]);
        assert!(t.column("n_trades").unwrap()[0].is_nan());
        let bad = KlineColumns { interval: 7 * SECOND, ..k };
        assert!(matches!(bar_features(&BarSource::Klines(bad), None, &params), Err(FeatureError::Params(_))));
    }
}
