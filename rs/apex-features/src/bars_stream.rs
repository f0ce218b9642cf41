//! Streaming bar features: one closed kline at a time in, the rows of the batch [`bar_features`] over klines out,
//! bit for bit (the simulator and the live engine decide on these rows; evolution scored trees on the batch ones).
//!
//! Every float operation mirrors `bars.rs` in the same order: CLV from the bar alone, `ret` from the previous close,
//! `rv` as the square root of the squared returns summed oldest to newest. Higher-timeframe bars are merged from the
//! klines as they arrive and read only once closed, so no row waits for a future kline.
//!
//! [`bar_features`]: crate::bars::bar_features

use std::collections::VecDeque;
use std::iter::once;

use crate::FeatureError;
use crate::bars::{Atom, BAR_COLUMNS, Bar, BarParams, MTFA_COLUMNS, column_names};

/// One closed kline of a single symbol (prices in quote units, `ts` = bar open in nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kline {
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub turnover: f64,
}

impl Kline {
    fn atom(&self) -> Atom {
        Atom {
            ts: self.ts,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            turnover: self.turnover,
            n_trades: f64::NAN,
            buy_volume: f64::NAN,
        }
    }
}

/// The regular bar series of one interval as it grows: the bar in progress, and what the next bar's `ret`/`rv` need.
#[derive(Debug, Clone)]
struct GrowingSeries {
    interval: i64,
    rv_window: usize,
    /// The open bar (OHLCV only) and its open time.
    current: Option<(i64, Bar)>,
    /// Bars completed so far (the index of `current` in the batch series).
    completed: usize,
    previous_close: f64,
    /// The returns of the last `rv_window` completed bars, oldest first.
    returns: VecDeque<f64>,
    /// Completed bars (open time, bar with CLV/ret/rv) that a later row may still read.
    closed: VecDeque<(i64, Bar)>,
}

impl GrowingSeries {
    fn new(interval: i64, rv_window: usize) -> GrowingSeries {
        GrowingSeries {
            interval,
            rv_window,
            current: None,
            completed: 0,
            previous_close: f64::NAN,
            returns: VecDeque::with_capacity(rv_window + 1),
            closed: VecDeque::new(),
        }
    }

    /// `bar` with the derived columns it gets as the next bar of the series (the series is not changed).
    fn derive(&self, mut bar: Bar) -> Bar {
        let range = bar.high - bar.low;
        bar.clv = if range > 0.0 { ((bar.close - bar.low) - (bar.high - bar.close)) / range } else { 0.0 };
        if self.completed > 0 {
            bar.ret = (bar.close / self.previous_close).ln();
        }
        if self.completed >= self.rv_window {
            let skip = usize::from(self.returns.len() == self.rv_window);
            let ret = bar.ret;
            bar.rv = self.returns.iter().skip(skip).chain(once(&ret)).map(|r| r * r).sum::<f64>().sqrt();
        }
        bar
    }

    /// Completes `bar` as the next bar of the series and returns it with its derived columns.
    fn complete(&mut self, bar: Bar) -> Bar {
        let bar = self.derive(bar);
        self.previous_close = bar.close;
        self.returns.push_back(bar.ret);
        if self.returns.len() > self.rv_window {
            self.returns.pop_front();
        }
        self.completed += 1;
        bar
    }

    /// Adds one atom to the bar it falls in; bars it skips over are closed, gaps filled flat as the batch does.
    fn add(&mut self, atom: &Atom) {
        let open = atom.ts.div_euclid(self.interval) * self.interval;
        match self.current.take() {
            Some((current_open, mut bar)) if current_open == open => {
                bar.merge(atom);
                self.current = Some((open, bar));
                return;
            }
            Some((mut current_open, bar)) => {
                let mut last = self.complete(bar);
                self.closed.push_back((current_open, last));
                while current_open + self.interval < open {
                    current_open += self.interval;
                    last = self.complete(Bar::empty_after(&last));
                    self.closed.push_back((current_open, last));
                }
            }
            None => {}
        }
        self.current = Some((open, Bar::from_atom(atom)));
    }

    /// The completed bar opening at `open` (the bar in progress counts as completed: the caller asks only for bars
    /// that closed at or before its row's close). Reads must come in non-decreasing `open` order.
    fn closed_at(&mut self, open: i64) -> Option<Bar> {
        while self.closed.front().is_some_and(|(o, _)| *o < open) {
            self.closed.pop_front();
        }
        if let Some((o, bar)) = self.closed.front()
            && *o == open
        {
            return Some(*bar);
        }
        match self.current {
            Some((o, bar)) if o == open => Some(self.derive(bar)),
            _ => None,
        }
    }
}

/// Bar features of one symbol's klines, a row per closed bar, equal to the batch [`crate::bars::bar_features`] over
/// the same klines with the same [`BarParams`] (no update features). The kline interval must be the bar interval.
#[derive(Debug, Clone)]
pub struct StreamingBarFeatures {
    params: BarParams,
    names: Vec<String>,
    base: GrowingSeries,
    higher: Vec<GrowingSeries>,
    last_open: Option<i64>,
    last_bar: Option<Bar>,
    klines: usize,
    rows: usize,
    row: Vec<f64>,
}

impl StreamingBarFeatures {
    /// A stream with no kline seen yet.
    ///
    /// # Errors
    /// `Params` for a bad interval, rv window or higher timeframe (as [`crate::bars::bar_features`]).
    pub fn new(params: BarParams) -> Result<StreamingBarFeatures, FeatureError> {
        params.check()?;
        let names = column_names(&params, false);
        let higher = params.higher.iter().map(|&h| GrowingSeries::new(h, params.rv_window)).collect();
        Ok(StreamingBarFeatures {
            base: GrowingSeries::new(params.interval, params.rv_window),
            row: vec![f64::NAN; names.len()],
            names,
            higher,
            params,
            last_open: None,
            last_bar: None,
            klines: 0,
            rows: 0,
        })
    }

    /// The feature names of a row, in row order (the batch table's float columns).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The parameters the stream was made with.
    pub fn params(&self) -> &BarParams {
        &self.params
    }

    /// Rows emitted so far (klines plus the flat rows filling gaps between them).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Takes the next closed kline and calls `emit(open_ts, row)` for each row it completes, oldest first: a flat
    /// row for every missing bar since the previous kline (as the batch fills gaps), then the kline's own row.
    ///
    /// # Errors
    /// `Value` for a non-finite or non-positive price or a negative volume/turnover, `Unaligned` for a `ts` off the
    /// bar grid, `Unsorted` for a `ts` not after the previous kline's; `row` is the 0-based kline count. A rejected
    /// kline leaves the stream unchanged.
    pub fn push(&mut self, kline: &Kline, mut emit: impl FnMut(i64, &[f64])) -> Result<(), FeatureError> {
        self.check(kline)?;
        let atom = kline.atom();
        for series in &mut self.higher {
            series.add(&atom);
        }
        if let (Some(mut open), Some(mut last)) = (self.last_open, self.last_bar) {
            while open + self.params.interval < kline.ts {
                open += self.params.interval;
                last = self.base.complete(Bar::empty_after(&last));
                self.emit_row(open, &last, &mut emit);
            }
        }
        let bar = self.base.complete(Bar::from_atom(&atom));
        self.emit_row(kline.ts, &bar, &mut emit);
        self.last_open = Some(kline.ts);
        self.last_bar = Some(bar);
        self.klines += 1;
        Ok(())
    }

    fn emit_row(&mut self, open: i64, bar: &Bar, emit: &mut impl FnMut(i64, &[f64])) {
        let mut values = self.row.iter_mut();
        for name in BAR_COLUMNS {
            *values.next().expect("one value per name") = bar.get(name);
        }
        let close = open + self.params.interval;
        for series in &mut self.higher {
            let last_closed = close.div_euclid(series.interval) * series.interval - series.interval;
            let higher = series.closed_at(last_closed);
            for name in MTFA_COLUMNS {
                *values.next().expect("one value per name") = higher.map_or(f64::NAN, |b| b.get(name));
            }
        }
        self.rows += 1;
        emit(open, &self.row);
    }

    fn check(&self, k: &Kline) -> Result<(), FeatureError> {
        let row = self.klines;
        let columns: [(&'static str, f64); 6] = [
            ("open", k.open),
            ("high", k.high),
            ("low", k.low),
            ("close", k.close),
            ("volume", k.volume),
            ("turnover", k.turnover),
        ];
        for (column, value) in columns {
            let ok = if column == "volume" || column == "turnover" { value >= 0.0 } else { value > 0.0 };
            if !(value.is_finite() && ok) {
                let expected = if ok { "a finite number" } else { "a finite positive (or non-negative) number" };
                return Err(FeatureError::Value { table: "bars", row, column, value, expected });
            }
        }
        if k.ts.rem_euclid(self.params.interval) != 0 {
            return Err(FeatureError::Unaligned { table: "bars", row, ts: k.ts, interval: self.params.interval });
        }
        if let Some(previous) = self.last_open
            && k.ts <= previous
        {
            return Err(FeatureError::Unsorted { table: "bars", row, ts: k.ts, previous });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MINUTE;
    use crate::bars::{BarSource, KlineColumns, bar_features};

    fn kline(ts: i64, close: f64) -> Kline {
        Kline { ts, open: close, high: close + 1.0, low: close - 1.0, close, volume: 1.0, turnover: close }
    }

    fn stream_all(params: &BarParams, klines: &[Kline]) -> Vec<(i64, Vec<f64>)> {
        let mut stream = StreamingBarFeatures::new(params.clone()).unwrap();
        let mut rows = Vec::new();
        for k in klines {
            stream.push(k, |ts, row| rows.push((ts, row.to_vec()))).unwrap();
        }
        rows
    }

    #[test]
    fn gaps_are_filled_and_higher_bars_read_once_closed() {
        let m = MINUTE;
        let params = BarParams { interval: m, rv_window: 2, higher: vec![2 * m] };
        let rows = stream_all(&params, &[kline(m, 10.0), kline(4 * m, 12.0)]);
        assert_eq!(rows.iter().map(|(ts, _)| *ts).collect::<Vec<_>>(), vec![m, 2 * m, 3 * m, 4 * m]);
        let close = |i: usize| rows[i].1[3];
        assert_eq!([close(0), close(1), close(2), close(3)], [10.0, 10.0, 10.0, 12.0]);
        // ret_2m: the rows at 1m and 2m read the 2m bar [0, 2m) (the first: NaN); the rows at 3m and 4m read the
        // flat filler [2m, 4m) (ret 0), not yet the bar [4m, 6m) holding the kline at 4m.
        let ret_2m = |i: usize| rows[i].1[BAR_COLUMNS.len() + 3];
        assert!(ret_2m(0).is_nan() && ret_2m(1).is_nan());
        assert_eq!([ret_2m(2), ret_2m(3)], [0.0, 0.0]);
    }

    #[test]
    fn bad_klines_are_rejected_without_changing_the_stream() {
        let params = BarParams::new(MINUTE);
        let mut stream = StreamingBarFeatures::new(params).unwrap();
        stream.push(&kline(MINUTE, 5.0), |_, _| {}).unwrap();
        let err = stream.push(&kline(MINUTE, 5.0), |_, _| {}).unwrap_err();
        assert!(matches!(err, FeatureError::Unsorted { row: 1, .. }));
        assert!(matches!(stream.push(&kline(MINUTE + 1, 5.0), |_, _| {}), Err(FeatureError::Unaligned { .. })));
        let nan = Kline { close: f64::NAN, ..kline(2 * MINUTE, 5.0) };
        assert!(matches!(stream.push(&nan, |_, _| {}), Err(FeatureError::Value { column: "close", .. })));
        assert_eq!(stream.rows(), 1);
        let bad = BarParams { rv_window: 0, ..BarParams::new(MINUTE) };
        assert!(matches!(StreamingBarFeatures::new(bad), Err(FeatureError::Params(_))));
    }

    #[test]
    fn names_match_the_batch_columns() {
        let params = BarParams::new(MINUTE);
        let k = KlineColumns {
            ts: &[0],
            symbol: &[0],
            open: &[1.0],
            high: &[1.0],
            low: &[1.0],
            close: &[1.0],
            volume: &[1.0],
            turnover: &[1.0],
            interval: MINUTE,
        };
        let batch = bar_features(&BarSource::Klines(k), None, &params).unwrap();
        let batch_names: Vec<&str> = batch.columns.iter().map(|(n, _)| n.as_str()).collect();
        let stream = StreamingBarFeatures::new(params).unwrap();
        assert_eq!(stream.names(), batch_names.as_slice());
    }
}
