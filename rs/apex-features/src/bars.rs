//! Per-bar features from trades or klines: OHLCV, CLV, returns, realized volatility, book aggregates and MTFA.
//!
//! Bars open at multiples of the interval in UTC (`ts` = open, nanoseconds) and cover `[ts, ts + interval)`.
//! Empty bars between a symbol's first and last bar are filled (OHLC = previous close, volume 0), so every series
//! is regular. Higher-timeframe (MTFA) columns on a base row come from the **last closed** higher bar only: the
//! higher bar `[H, H + h)` is used on the base row opening at `ts` only if `H + h <= ts + interval` (the base row's
//! close), so no value on a row depends on anything after that row's close.

use std::collections::BTreeMap;

use crate::trades::TradeColumns;
use crate::{FeatureError, HOUR, MINUTE, duration_label};

/// The bar intervals the CLI offers.
pub const STANDARD_INTERVALS: [i64; 4] = [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR];

/// Names of the per-bar float columns, in output order.
pub const BAR_COLUMNS: [&str; 11] =
    ["open", "high", "low", "close", "volume", "turnover", "n_trades", "buy_volume", "clv", "ret", "rv"];

/// Bar columns repeated for each higher timeframe as `<name>_<interval label>` (e.g. `clv_5m`).
pub const MTFA_COLUMNS: [&str; 5] = ["close", "volume", "clv", "ret", "rv"];

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
        for (column, got) in [
            ("symbol", self.symbol.len()),
            ("ofi_l1", self.ofi_l1.len()),
            ("ofi_l5", self.ofi_l5.len()),
            ("pressure_5", self.pressure_5.len()),
            ("spread_bps", self.spread_bps.len()),
        ] {
            if got != expected {
                return Err(FeatureError::Length { table: "update features", column, expected, got });
            }
        }
        Ok(())
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
}

impl BarParams {
    /// `interval` with rv over 30 returns and every standard interval above it as MTFA.
    #[must_use]
    pub fn new(interval: i64) -> BarParams {
        BarParams {
            interval,
            rv_window: 30,
            higher: STANDARD_INTERVALS.iter().copied().filter(|&h| h > interval && h % interval == 0).collect(),
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
        Ok(())
    }
}

/// Bar features of every symbol: rows grouped by symbol code (ascending), then by bar open time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarTable {
    pub ts: Vec<i64>,
    pub symbol: Vec<u32>,
    /// `(name, values)` in output order: [`BAR_COLUMNS`], MTFA columns per higher interval, [`BOOK_COLUMNS`].
    pub columns: Vec<(String, Vec<f64>)>,
}

impl BarTable {
    #[must_use]
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    #[must_use]
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }
}

/// The float column names [`bar_features`] outputs for `params`, in order: [`BAR_COLUMNS`], the MTFA columns of each
/// higher interval, then [`BOOK_COLUMNS`] when `with_book`.
#[must_use]
pub fn column_names(params: &BarParams, with_book: bool) -> Vec<String> {
    let mut names: Vec<String> = BAR_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    for &h in &params.higher {
        names.extend(MTFA_COLUMNS.iter().map(|name| format!("{name}_{}", duration_label(h))));
    }
    if with_book {
        names.extend(BOOK_COLUMNS.iter().map(|s| (*s).to_owned()));
    }
    names
}

/// One input unit: a trade (OHLC all equal to its price) or a kline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Atom {
    pub(crate) ts: i64,
    pub(crate) open: f64,
    pub(crate) high: f64,
    pub(crate) low: f64,
    pub(crate) close: f64,
    pub(crate) volume: f64,
    pub(crate) turnover: f64,
    pub(crate) n_trades: f64,
    pub(crate) buy_volume: f64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bar {
    pub(crate) open: f64,
    pub(crate) high: f64,
    pub(crate) low: f64,
    pub(crate) close: f64,
    pub(crate) volume: f64,
    pub(crate) turnover: f64,
    pub(crate) n_trades: f64,
    pub(crate) buy_volume: f64,
    pub(crate) clv: f64,
    pub(crate) ret: f64,
    pub(crate) rv: f64,
}

impl Bar {
    pub(crate) fn from_atom(a: &Atom) -> Bar {
        Bar {
            open: a.open,
            high: a.high,
            low: a.low,
            close: a.close,
            volume: a.volume,
            turnover: a.turnover,
            n_trades: a.n_trades,
            buy_volume: a.buy_volume,
            clv: f64::NAN,
            ret: f64::NAN,
            rv: f64::NAN,
        }
    }

    /// An empty bar after `previous`: flat at its close, nothing traded (counts unknown stay unknown).
    pub(crate) fn empty_after(previous: &Bar) -> Bar {
        let zero_or_unknown = |v: f64| if v.is_nan() { f64::NAN } else { 0.0 };
        let c = previous.close;
        Bar {
            open: c,
            high: c,
            low: c,
            close: c,
            volume: 0.0,
            turnover: 0.0,
            n_trades: zero_or_unknown(previous.n_trades),
            buy_volume: zero_or_unknown(previous.buy_volume),
            clv: f64::NAN,
            ret: f64::NAN,
            rv: f64::NAN,
        }
    }

    pub(crate) fn merge(&mut self, a: &Atom) {
        self.high = self.high.max(a.high);
        self.low = self.low.min(a.low);
        self.close = a.close;
        self.volume += a.volume;
        self.turnover += a.turnover;
        self.n_trades += a.n_trades;
        self.buy_volume += a.buy_volume;
    }

    pub(crate) fn get(&self, name: &str) -> f64 {
        match name {
            "open" => self.open,
            "high" => self.high,
            "low" => self.low,
            "close" => self.close,
            "volume" => self.volume,
            "turnover" => self.turnover,
            "n_trades" => self.n_trades,
            "buy_volume" => self.buy_volume,
            "clv" => self.clv,
            "ret" => self.ret,
            "rv" => self.rv,
            _ => unreachable!("unknown bar column {name}"),
        }
    }
}

/// A regular (gap-filled) bar series of one symbol.
#[derive(Debug, Clone)]
struct Series {
    start: i64,
    interval: i64,
    bars: Vec<Bar>,
}

impl Series {
    fn build(atoms: &[Atom], interval: i64, rv_window: usize) -> Series {
        let mut bars: Vec<Bar> = Vec::new();
        let start = atoms.first().map_or(0, |a| a.ts.div_euclid(interval) * interval);
        for atom in atoms {
            let index = ((atom.ts.div_euclid(interval) * interval - start) / interval) as usize;
            if index + 1 == bars.len() {
                bars.last_mut().expect("index + 1 == len > 0").merge(atom);
                continue;
            }
            while bars.len() < index {
                let filler = Bar::empty_after(bars.last().expect("the first atom opens the series"));
                bars.push(filler);
            }
            bars.push(Bar::from_atom(atom));
        }
        for i in 0..bars.len() {
            let b = &mut bars[i];
            let range = b.high - b.low;
            b.clv = if range > 0.0 { ((b.close - b.low) - (b.high - b.close)) / range } else { 0.0 };
            if i > 0 {
                bars[i].ret = (bars[i].close / bars[i - 1].close).ln();
            }
            if i >= rv_window {
                bars[i].rv = bars[i + 1 - rv_window..=i].iter().map(|b| b.ret * b.ret).sum::<f64>().sqrt();
            }
        }
        Series { start, interval, bars }
    }

    fn ts(&self, index: usize) -> i64 {
        self.start + index as i64 * self.interval
    }

    /// Index of the bar opening at `open`, if the series has one.
    fn index_of(&self, open: i64) -> Option<usize> {
        if open < self.start {
            return None;
        }
        let index = ((open - self.start) / self.interval) as usize;
        (index < self.bars.len()).then_some(index)
    }
}

fn atoms_by_symbol(source: &BarSource<'_>, interval: i64) -> Result<BTreeMap<u32, Vec<Atom>>, FeatureError> {
    let mut out: BTreeMap<u32, Vec<Atom>> = BTreeMap::new();
    match source {
        BarSource::Trades(t) => {
            t.validate()?;
            for row in 0..t.len() {
                if row & 0xFFFF == 0 {
                    apex_cancel::checkpoint(); // an interrupted caller stops a long trade stream within milliseconds
                }
                let (price, size) = (t.price[row], t.size[row]);
                out.entry(t.symbol[row]).or_default().push(Atom {
                    ts: t.ts[row],
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    volume: size,
                    turnover: price * size,
                    n_trades: 1.0,
                    buy_volume: if t.side[row] > 0 { size } else { 0.0 },
                });
            }
        }
        BarSource::Klines(k) => {
            check_klines(k, interval)?;
            for row in 0..k.ts.len() {
                out.entry(k.symbol[row]).or_default().push(Atom {
                    ts: k.ts[row],
                    open: k.open[row],
                    high: k.high[row],
                    low: k.low[row],
                    close: k.close[row],
                    volume: k.volume[row],
                    turnover: k.turnover[row],
                    n_trades: f64::NAN,
                    buy_volume: f64::NAN,
                });
            }
        }
    }
    Ok(out)
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
    if k.symbol.len() != expected {
        return Err(FeatureError::Length { table: "bars", column: "symbol", expected, got: k.symbol.len() });
    }
    for (column, values) in columns {
        if values.len() != expected {
            return Err(FeatureError::Length { table: "bars", column, expected, got: values.len() });
        }
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

/// Book aggregates of one bar.
#[derive(Debug, Clone, Copy)]
struct BookAggregate {
    ofi_l1: f64,
    ofi_l5: f64,
    pressure_5: f64,
    spread_sum: f64,
    spread_count: u32,
}

impl BookAggregate {
    const EMPTY: BookAggregate =
        BookAggregate { ofi_l1: f64::NAN, ofi_l5: f64::NAN, pressure_5: f64::NAN, spread_sum: 0.0, spread_count: 0 };

    fn values(&self) -> [f64; 4] {
        let mean = if self.spread_count > 0 { self.spread_sum / f64::from(self.spread_count) } else { f64::NAN };
        [self.ofi_l1, self.ofi_l5, self.pressure_5, mean]
    }
}

fn add_defined(sum: &mut f64, value: f64) {
    if !value.is_nan() {
        *sum = if sum.is_nan() { value } else { *sum + value };
    }
}

fn aggregate_book(updates: &UpdateSeries<'_>, symbol: u32, series: &Series) -> Vec<BookAggregate> {
    let mut out = vec![BookAggregate::EMPTY; series.bars.len()];
    let UpdateSeries { ofi_l1, ofi_l5, pressure_5, spread_bps, .. } = *updates;
    for row in 0..updates.ts.len() {
        if row & 0xFFFF == 0 {
            apex_cancel::checkpoint(); // an interrupted caller stops a long book aggregation within milliseconds
        }
        if updates.symbol[row] != symbol {
            continue;
        }
        let open = updates.ts[row].div_euclid(series.interval) * series.interval;
        let Some(index) = series.index_of(open) else { continue };
        let agg = &mut out[index];
        add_defined(&mut agg.ofi_l1, ofi_l1[row]);
        add_defined(&mut agg.ofi_l5, ofi_l5[row]);
        if !pressure_5[row].is_nan() {
            agg.pressure_5 = pressure_5[row];
        }
        if !spread_bps[row].is_nan() {
            agg.spread_sum += spread_bps[row];
            agg.spread_count += 1;
        }
    }
    out
}

/// Bars of `params.interval` from trades or klines, with CLV, log return, realized volatility, MTFA columns of the
/// last closed higher bars, and, when `updates` is given, the update features aggregated per bar: sums of the
/// defined `ofi_l1`/`ofi_l5`, the last defined `pressure_5` and the mean defined `spread_bps` (NaN when the bar
/// has none). Symbol codes of `updates` must mean the same symbols as the source's.
///
/// `ret` is NaN on a symbol's first bar; `rv` is NaN until `rv_window` returns exist.
///
/// # Errors
/// `Params` for bad intervals or windows, `Value`/`Length`/`Unsorted`/`Unaligned` for malformed input rows.
pub fn bar_features(
    source: &BarSource<'_>,
    updates: Option<&UpdateSeries<'_>>,
    params: &BarParams,
) -> Result<BarTable, FeatureError> {
    params.check()?;
    if let Some(updates) = updates {
        updates.check()?;
    }
    let atoms = atoms_by_symbol(source, params.interval)?;
    let names = column_names(params, updates.is_some());
    let mut table = BarTable { columns: names.into_iter().map(|n| (n, Vec::new())).collect(), ..BarTable::default() };
    for (&symbol, atoms) in &atoms {
        let base = Series::build(atoms, params.interval, params.rv_window);
        let higher: Vec<Series> = params.higher.iter().map(|&h| Series::build(atoms, h, params.rv_window)).collect();
        let book = updates.map(|u| aggregate_book(u, symbol, &base));
        for (index, bar) in base.bars.iter().enumerate() {
            let open = base.ts(index);
            table.ts.push(open);
            table.symbol.push(symbol);
            let mut values = table.columns.iter_mut().map(|(_, v)| v);
            for name in BAR_COLUMNS {
                values.next().expect("one column per name").push(bar.get(name));
            }
            let close = open + params.interval;
            for series in &higher {
                let last_closed = close.div_euclid(series.interval) * series.interval - series.interval;
                let bar = series.index_of(last_closed).map(|i| series.bars[i]);
                for name in MTFA_COLUMNS {
                    values.next().expect("one column per name").push(bar.map_or(f64::NAN, |b| b.get(name)));
                }
            }
            if let Some(book) = &book {
                for value in book[index].values() {
                    values.next().expect("one column per name").push(value);
                }
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SECOND;

    fn trades(ts: &[i64], price: &[f64], size: &[f64], side: &[i8]) -> BarTable {
        let symbol = vec![0; ts.len()];
        let cols = TradeColumns { ts, symbol: &symbol, side, price, size };
        let params = BarParams { interval: MINUTE, rv_window: 2, higher: vec![2 * MINUTE] };
        bar_features(&BarSource::Trades(cols), None, &params).unwrap()
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
        let params = BarParams { interval: 2 * m, rv_window: 30, higher: vec![] };
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
