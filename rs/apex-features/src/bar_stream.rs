//! The bar builder both the batch [`bar_features`] and the streaming [`BarFeatureEngine`] run: trades or klines
//! (atoms), update features and the clock go in, one completed bar row comes out per bar as time passes its close.
//!
//! Time semantics, shared by batch and stream: a bar `[open, open + interval)` closes when the time reaches
//! `open + interval` (an atom, an update or the clock at or after it). A closed bar with no atom is flat at the
//! previous close (volume 0), so the series is regular from the first atom on. Update features before the first atom
//! count only towards the first atom's bar. Higher-timeframe bars are built the same way and a row reads the last
//! higher bar closed at its own close. Every float operation happens in the same order whatever drives the builder,
//! which is what makes the streaming rows equal to the batch ones bit for bit.
//!
//! [`bar_features`]: crate::bars::bar_features
//! [`BarFeatureEngine`]: crate::engine::BarFeatureEngine

use std::collections::VecDeque;
use std::iter::once;

use crate::bars::{BAR_COLUMNS, BOOK_COLUMNS, BarParams, MTFA_COLUMNS};

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

impl Atom {
    /// A trade of `size` at `price`, taker `side` (+1 buy).
    pub(crate) fn trade(ts: i64, side: i8, price: f64, size: f64) -> Atom {
        Atom {
            ts,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: size,
            turnover: price * size,
            n_trades: 1.0,
            buy_volume: if side > 0 { size } else { 0.0 },
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bar {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    turnover: f64,
    n_trades: f64,
    buy_volume: f64,
    clv: f64,
    ret: f64,
    rv: f64,
}

impl Bar {
    fn from_atom(a: &Atom) -> Bar {
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
    fn empty_after(previous: &Bar) -> Bar {
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

    fn merge(&mut self, a: &Atom) {
        self.high = self.high.max(a.high);
        self.low = self.low.min(a.low);
        self.close = a.close;
        self.volume += a.volume;
        self.turnover += a.turnover;
        self.n_trades += a.n_trades;
        self.buy_volume += a.buy_volume;
    }

    /// The values of [`BAR_COLUMNS`], in that order.
    fn values(&self) -> [f64; BAR_COLUMNS.len()] {
        [
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.turnover,
            self.n_trades,
            self.buy_volume,
            self.clv,
            self.ret,
            self.rv,
        ]
    }

    /// The values of [`MTFA_COLUMNS`], in that order.
    fn mtfa_values(&self) -> [f64; MTFA_COLUMNS.len()] {
        [self.close, self.volume, self.clv, self.ret, self.rv]
    }
}

/// The regular bar series of one interval as time passes: the bar in progress and what the next `ret`/`rv` need.
#[derive(Debug, Clone)]
struct Series {
    interval: i64,
    rv_window: usize,
    /// Open time of the bar in progress; `None` before the first atom.
    open: Option<i64>,
    /// The bar in progress; `None` while its interval has no atom (it then closes flat).
    bar: Option<Bar>,
    /// The last completed bar (with CLV/ret/rv) and its open time.
    last: Option<(i64, Bar)>,
    /// Bars completed so far.
    completed: usize,
    /// The returns of the last `rv_window` completed bars, oldest first.
    returns: VecDeque<f64>,
}

impl Series {
    fn new(interval: i64, rv_window: usize) -> Series {
        Series {
            interval,
            rv_window,
            open: None,
            bar: None,
            last: None,
            completed: 0,
            returns: VecDeque::with_capacity(rv_window + 1),
        }
    }

    /// Completes `bar` as the next bar of the series: CLV from the bar alone, `ret` from the previous close, `rv` as
    /// the square root of the squared returns summed oldest to newest.
    fn complete(&mut self, mut bar: Bar) -> Bar {
        let range = bar.high - bar.low;
        bar.clv = if range > 0.0 { ((bar.close - bar.low) - (bar.high - bar.close)) / range } else { 0.0 };
        if let Some((_, previous)) = &self.last {
            bar.ret = (bar.close / previous.close).ln();
        }
        if self.completed >= self.rv_window {
            let skip = usize::from(self.returns.len() == self.rv_window);
            let ret = bar.ret;
            bar.rv = self.returns.iter().skip(skip).chain(once(&ret)).map(|r| r * r).sum::<f64>().sqrt();
        }
        self.returns.push_back(bar.ret);
        if self.returns.len() > self.rv_window {
            self.returns.pop_front();
        }
        self.completed += 1;
        bar
    }

    /// Closes every bar that ends at or before `now` (flat when it holds no atom), oldest first, calling
    /// `closed(open, bar)` on each.
    fn advance(&mut self, now: i64, mut closed: impl FnMut(i64, &Bar)) {
        while let Some(open) = self.open
            && open + self.interval <= now
        {
            let bar = match self.bar.take() {
                Some(bar) => bar,
                None => Bar::empty_after(&self.last.expect("a bar without atoms follows a completed one").1),
            };
            let bar = self.complete(bar);
            self.last = Some((open, bar));
            self.open = Some(open + self.interval);
            closed(open, &bar);
        }
    }

    /// Adds `atom` (not earlier than the bar in progress) to its bar, closing the bars before it.
    fn add(&mut self, atom: &Atom) {
        self.advance(atom.ts, |_, _| {});
        match &mut self.bar {
            Some(bar) => bar.merge(atom),
            None => {
                self.open.get_or_insert(atom.ts.div_euclid(self.interval) * self.interval);
                self.bar = Some(Bar::from_atom(atom));
            }
        }
    }

    /// The completed bar opening at `open`, if it is the last one completed.
    fn closed_at(&self, open: i64) -> Option<&Bar> {
        self.last.as_ref().filter(|(o, _)| *o == open).map(|(_, bar)| bar)
    }
}

/// The update features a bar aggregates, from one book message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpdateValues {
    pub(crate) ofi_l1: f64,
    pub(crate) ofi_l5: f64,
    pub(crate) pressure_5: f64,
    pub(crate) spread_bps: f64,
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

    /// Sums of the defined OFIs, the last defined pressure, and the defined spreads for their mean.
    fn add(&mut self, u: &UpdateValues) {
        add_defined(&mut self.ofi_l1, u.ofi_l1);
        add_defined(&mut self.ofi_l5, u.ofi_l5);
        if !u.pressure_5.is_nan() {
            self.pressure_5 = u.pressure_5;
        }
        if !u.spread_bps.is_nan() {
            self.spread_sum += u.spread_bps;
            self.spread_count += 1;
        }
    }

    /// The values of [`BOOK_COLUMNS`], in that order (NaN where the bar had no defined value).
    fn values(&self) -> [f64; BOOK_COLUMNS.len()] {
        let mean = if self.spread_count > 0 { self.spread_sum / f64::from(self.spread_count) } else { f64::NAN };
        [self.ofi_l1, self.ofi_l5, self.pressure_5, mean]
    }
}

fn add_defined(sum: &mut f64, value: f64) {
    if !value.is_nan() {
        *sum = if sum.is_nan() { value } else { *sum + value };
    }
}

/// Where an event fell relative to the bars: into the open bar (or the one it opens), or into one already closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    InBar,
    /// Before the bar in progress: its bar was already emitted, so the event changes no row.
    Late {
        open: i64,
    },
}

/// The bar rows of one symbol as events arrive (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct BarStream {
    interval: i64,
    base: Series,
    higher: Vec<Series>,
    /// Book aggregates of the bar in progress, or, before the first atom, of the bar the last update fell in.
    book: Option<(i64, BookAggregate)>,
    with_book: bool,
    /// The row being emitted: bar columns, MTFA, book, then `extra` values the caller fills.
    row: Vec<f64>,
    /// Width of the part of `row` this builder writes.
    width: usize,
}

impl BarStream {
    /// A builder for `params` (already checked) whose rows carry `extra` trailing values for the caller to fill.
    pub(crate) fn new(params: &BarParams, with_book: bool, extra: usize) -> BarStream {
        let width = BAR_COLUMNS.len()
            + MTFA_COLUMNS.len() * params.higher.len()
            + if with_book { BOOK_COLUMNS.len() } else { 0 };
        BarStream {
            interval: params.interval,
            base: Series::new(params.interval, params.rv_window),
            higher: params.higher.iter().map(|&h| Series::new(h, params.rv_window)).collect(),
            book: None,
            with_book,
            row: vec![f64::NAN; width + extra],
            width,
        }
    }

    /// Open time of the bar in progress, `None` before the first atom.
    pub(crate) fn open(&self) -> Option<i64> {
        self.base.open
    }

    fn bar_open(&self, ts: i64) -> i64 {
        ts.div_euclid(self.interval) * self.interval
    }

    /// Closes every bar ending at or before `now`, calling `emit(open, row)` on each row (the caller may fill the
    /// trailing `extra` values before passing the row on).
    pub(crate) fn advance(&mut self, now: i64, emit: &mut impl FnMut(i64, &mut [f64])) {
        let Self { interval, base, higher, book, row, .. } = self;
        let interval = *interval;
        base.advance(now, |open, bar| {
            let mut at = 0;
            let mut put = |values: &[f64]| {
                row[at..at + values.len()].copy_from_slice(values);
                at += values.len();
            };
            put(&bar.values());
            let close = open + interval;
            for series in higher.iter_mut() {
                series.advance(close, |_, _| {});
                let last_closed = close.div_euclid(series.interval) * series.interval - series.interval;
                put(&series.closed_at(last_closed).map_or([f64::NAN; MTFA_COLUMNS.len()], Bar::mtfa_values));
            }
            if let Some((_, aggregate)) = book.as_mut() {
                put(&aggregate.values());
                *aggregate = BookAggregate::EMPTY;
            }
            emit(open, row);
        });
        if let Some((open, _)) = book.as_mut()
            && let Some(current) = base.open
        {
            *open = current;
        }
    }

    /// Adds a trade or kline. Its time must not be before the previous atom's (the caller checks).
    pub(crate) fn on_atom(&mut self, atom: &Atom, emit: &mut impl FnMut(i64, &mut [f64])) -> Placed {
        if let Some(open) = self.base.open
            && atom.ts < open
        {
            return Placed::Late { open };
        }
        self.advance(atom.ts, emit);
        for series in &mut self.higher {
            series.add(atom);
        }
        let started = self.base.open.is_some();
        self.base.add(atom);
        if self.with_book && !started {
            // The first bar keeps the aggregates of the updates that came before its first atom.
            let open = self.bar_open(atom.ts);
            let kept = self.book.filter(|(o, _)| *o == open).map_or(BookAggregate::EMPTY, |(_, a)| a);
            self.book = Some((open, kept));
        }
        Placed::InBar
    }

    /// Adds the update features of one book message at `ts`.
    pub(crate) fn on_update(
        &mut self,
        ts: i64,
        values: &UpdateValues,
        emit: &mut impl FnMut(i64, &mut [f64]),
    ) -> Placed {
        let open = self.bar_open(ts);
        match (self.base.open, self.book) {
            (Some(current), _) if ts < current => return Placed::Late { open: current },
            (None, Some((pending, _))) if open < pending => return Placed::Late { open: pending },
            _ => {}
        }
        self.advance(ts, emit);
        if !self.with_book {
            return Placed::InBar;
        }
        match &mut self.book {
            Some((o, aggregate)) if *o == open => aggregate.add(values),
            slot => {
                let mut aggregate = BookAggregate::EMPTY;
                aggregate.add(values);
                *slot = Some((open, aggregate));
            }
        }
        Placed::InBar
    }

    /// Closes the bar in progress as if time had reached its close (the end of a batch table).
    pub(crate) fn finish(&mut self, emit: &mut impl FnMut(i64, &mut [f64])) {
        if let Some(open) = self.base.open {
            self.advance(open + self.interval, emit);
        }
    }

    /// Width of the row without the caller's `extra` values.
    pub(crate) fn width(&self) -> usize {
        self.width
    }
}
