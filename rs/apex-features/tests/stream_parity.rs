//! Parity of the streaming `BarFeatureEngine` with the batch features, bit for bit, on random trade and book streams
//! of two symbols (sequence gaps, snapshots and rebases, crossed and one-sided books, empty bars, book messages
//! before the first and after the last trade, clock ticks between events); and of the batch with an independent
//! whole-series reference (the algorithm the batch used before it ran the stream).

use std::collections::BTreeMap;

use apex_book::{BookColumns, Level, MessageHeader};
use apex_core::{BookRows, MessageHead, Scale, TradeRows};
use apex_features::bars::{BarParams, BarSource, BarTable, UpdateSeries, bar_features};
use apex_features::engine::{BarFeatureEngine, EngineConfig, Trade};
use apex_features::trades::TradeColumns;
use apex_features::update::{UpdateParams, update_features};
use apex_features::vmd::{VmdParams, rolling_vmd};
use apex_features::{MINUTE, SECOND};
use proptest::prelude::*;

const PRICE_DECIMALS: u32 = 1;
const QTY_DECIMALS: u32 = 2;

#[derive(Debug, Clone)]
enum Event {
    Trade {
        symbol: u32,
        side: i8,
        price: i64,
        size: i64,
    },
    Book {
        symbol: u32,
        snapshot: bool,
        id_step: i64,
        bids: Vec<(i64, i64)>,
        asks: Vec<(i64, i64)>,
    },
    /// The exchange clock, this far (ns) towards the next event's time.
    Clock {
        fraction: f64,
    },
}

fn event() -> impl Strategy<Value = Event> {
    let levels = || prop::collection::vec((990_i64..1010, 0_i64..40), 0..5);
    prop_oneof![
        4 => (0_u32..2, any::<bool>(), 995_i64..1006, 1_i64..500)
            .prop_map(|(symbol, buy, price, size)| Event::Trade { symbol, side: if buy { 1 } else { -1 }, price, size }),
        4 => (0_u32..2, prop::bool::weighted(0.1), prop_oneof![20 => Just(1_i64), 1 => Just(2), 1 => Just(-3)], levels(), levels())
            .prop_map(|(symbol, snapshot, id_step, bids, asks)| {
                // Bids mostly below 1000 and asks mostly above, so books are usually sane and sometimes crossed.
                let bids = bids.into_iter().map(|(p, q)| (p - 5, q)).collect();
                let asks = asks.into_iter().map(|(p, q)| (p + 5, q)).collect();
                Event::Book { symbol, snapshot, id_step, bids, asks }
            }),
        1 => (0.0_f64..1.0).prop_map(|fraction| Event::Clock { fraction }),
    ]
}

/// Time steps between events: mostly seconds, sometimes minutes of silence (empty bars), sometimes none.
fn step() -> impl Strategy<Value = i64> {
    prop_oneof![10 => 0_i64..20 * SECOND, 2 => Just(0_i64), 1 => MINUTE..12 * MINUTE]
}

fn params() -> impl Strategy<Value = (BarParams, bool)> {
    (prop_oneof![Just(MINUTE), Just(30 * SECOND)], 1_usize..5, any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(interval, rv_window, mtfa, vmd, book)| {
            let higher = if mtfa { vec![2 * interval, 5 * interval] } else { vec![] };
            let vmd = vmd.then(|| VmdParams { modes: 2, window: 6, max_iter: 60, ..VmdParams::default() });
            (BarParams { interval, rv_window, higher, vmd }, book)
        },
    )
}

/// A stream of timed events, time never going back.
fn stream() -> impl Strategy<Value = Vec<(i64, Event)>> {
    prop::collection::vec((step(), event()), 1..160).prop_map(|steps| {
        let mut now = 1_700_000_000 * SECOND + 7 * SECOND;
        steps
            .into_iter()
            .map(|(dt, e)| {
                now += dt;
                (now, e)
            })
            .collect()
    })
}

/// The events as `trades` and `book` tables (columns), in event order.
#[derive(Debug, Default)]
struct Tables {
    trades: TradeRows,
    book: BookRows,
}

impl Tables {
    fn of(events: &[(i64, Event)]) -> Tables {
        let mut t = Tables::default();
        let mut ids = [0_i64; 2];
        for (i, (ts, e)) in events.iter().enumerate() {
            match e {
                Event::Trade { symbol, side, price, size } => {
                    t.trades.push(*ts, *symbol, *side, *price as f64 / 10.0, *size as f64 / 100.0, "");
                }
                Event::Book { symbol, snapshot, id_step, bids, asks } => {
                    let id = &mut ids[*symbol as usize];
                    *id = (*id + id_step).max(1);
                    let head = MessageHead {
                        ts: *ts,
                        symbol: *symbol,
                        kind: u8::from(!snapshot),
                        update_id: *id,
                        seq: i as i64,
                    };
                    let level = |side: i8| move |&(p, q): &(i64, i64)| (side, p as f64 / 10.0, q as f64 / 100.0);
                    t.book.push_message(head, bids.iter().map(level(1)).chain(asks.iter().map(level(-1))));
                }
                Event::Clock { .. } => {}
            }
        }
        t
    }

    fn trades(&self) -> TradeColumns<'_> {
        TradeColumns::from(&self.trades)
    }

    fn book(&self) -> BookColumns<'_> {
        BookColumns::from(&self.book)
    }
}

fn scales() -> (Scale, Scale) {
    (Scale::new(PRICE_DECIMALS).unwrap(), Scale::new(QTY_DECIMALS).unwrap())
}

/// The batch: update features of the book table, then bars of the trades with their aggregates.
fn batch(tables: &Tables, params: &BarParams, with_book: bool) -> BarTable {
    let updates = update_features(&tables.book(), scales(), &UpdateParams::default()).unwrap();
    let series = updates.series();
    bar_features(&BarSource::Trades(tables.trades()), with_book.then_some(&series), params).unwrap()
}

/// The stream: one engine per symbol fed every event in order, each book message decoded from the book table, the
/// clock ticking between events; at the end the clock reaches the close of every symbol's last batch bar.
fn stream_rows(
    events: &[(i64, Event)],
    tables: &Tables,
    params: &BarParams,
    with_book: bool,
    end: &BTreeMap<u32, i64>,
) -> BTreeMap<u32, Vec<(i64, Vec<f64>)>> {
    let (price_scale, qty_scale) = scales();
    let config = EngineConfig { bars: params.clone(), price_scale, qty_scale, book_columns: with_book };
    let mut engines = [BarFeatureEngine::new(config.clone()).unwrap(), BarFeatureEngine::new(config).unwrap()];
    let mut rows: BTreeMap<u32, Vec<(i64, Vec<f64>)>> = BTreeMap::new();
    let book = tables.book();
    let mut messages = book.messages();
    let (mut bids, mut asks): (Vec<Level>, Vec<Level>) = (Vec::new(), Vec::new());
    for (i, (ts, e)) in events.iter().enumerate() {
        match e {
            Event::Trade { symbol, side, price, size } => {
                let trade = Trade { ts: *ts, side: *side, price: *price as f64 / 10.0, size: *size as f64 / 100.0 };
                let out = rows.entry(*symbol).or_default();
                engines[*symbol as usize].on_trade(&trade, |o, r| out.push((o, r.to_vec()))).unwrap();
            }
            Event::Book { symbol, .. } => {
                let range = messages.next().expect("one message per book event");
                let header: MessageHeader = book.decode(range, price_scale, qty_scale, &mut bids, &mut asks).unwrap();
                assert_eq!((header.symbol, header.ts), (*symbol, *ts));
                let out = rows.entry(*symbol).or_default();
                let _verdict =
                    engines[*symbol as usize].on_book(&header, &bids, &asks, |o, r| out.push((o, r.to_vec())));
            }
            Event::Clock { fraction } => {
                let next = events.get(i + 1).map_or(*ts, |(t, _)| *t);
                let at = ts + ((next - ts) as f64 * fraction) as i64;
                for (symbol, engine) in engines.iter_mut().enumerate() {
                    let out = rows.entry(symbol as u32).or_default();
                    engine.on_clock(at, |o, r| out.push((o, r.to_vec())));
                }
            }
        }
    }
    for (&symbol, &close) in end {
        let out = rows.entry(symbol).or_default();
        engines[symbol as usize].on_clock(close, |o, r| out.push((o, r.to_vec())));
    }
    rows
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn stream_equals_batch_bit_for_bit((params, with_book) in params(), events in stream()) {
        let tables = Tables::of(&events);
        prop_assume!(!tables.trades.is_empty());
        let table = batch(&tables, &params, with_book);
        let mut end: BTreeMap<u32, i64> = BTreeMap::new();
        for (&symbol, &ts) in table.symbol.iter().zip(&table.ts) {
            end.insert(symbol, ts + params.interval);
        }
        let streamed = stream_rows(&events, &tables, &params, with_book, &end);
        for (&symbol, &last_close) in &end {
            let rows: Vec<usize> = (0..table.len()).filter(|&r| table.symbol[r] == symbol).collect();
            let got = &streamed[&symbol];
            prop_assert!(got.len() >= rows.len(), "symbol {}: {} rows streamed, {} in the batch", symbol, got.len(), rows.len());
            for (k, &r) in rows.iter().enumerate() {
                prop_assert_eq!(got[k].0, table.ts[r]);
                let expected: Vec<f64> = table.columns.iter().map(|(_, c)| c[r]).collect();
                prop_assert_eq!(bits(&got[k].1), bits(&expected), "symbol {} row {} at {}", symbol, k, table.ts[r]);
            }
            // Rows past the batch's last come only from book messages or ticks after the last trade: flat bars.
            for (open, row) in &got[rows.len()..] {
                prop_assert!(*open >= last_close);
                prop_assert_eq!(row[4], 0.0, "volume of a bar after the last trade");
            }
        }
    }

    #[test]
    fn batch_equals_the_whole_series_reference((params, with_book) in params(), events in stream()) {
        let tables = Tables::of(&events);
        prop_assume!(!tables.trades.is_empty());
        let table = batch(&tables, &params, with_book);
        let updates = update_features(&tables.book(), scales(), &UpdateParams::default()).unwrap();
        let series = updates.series();
        let expected = reference::bar_features(&tables.trades(), with_book.then_some(&series), &params);
        prop_assert_eq!(&table.ts, &expected.ts);
        prop_assert_eq!(&table.symbol, &expected.symbol);
        prop_assert_eq!(table.columns.len(), expected.columns.len());
        for ((name, got), (reference_name, want)) in table.columns.iter().zip(&expected.columns) {
            prop_assert_eq!(name, reference_name);
            prop_assert_eq!(bits(got), bits(want), "column {}", name);
        }
    }
}

/// The batch bar features computed the direct way, one whole regular series per symbol and interval (how the crate
/// computed them before the batch ran the streaming builder), kept here as the reference.
mod reference {
    use super::*;
    use apex_features::bars::column_names;

    #[derive(Debug, Clone, Copy)]
    struct Bar {
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

    struct Series {
        start: i64,
        interval: i64,
        bars: Vec<Bar>,
    }

    /// `(ts, price, size, side)` of one symbol's trades into a gap-filled series with CLV, returns and rv.
    fn series(trades: &[(i64, f64, f64, i8)], interval: i64, rv_window: usize) -> Series {
        let start = trades[0].0.div_euclid(interval) * interval;
        let mut bars: Vec<Bar> = Vec::new();
        for &(ts, price, size, side) in trades {
            let index = ((ts.div_euclid(interval) * interval - start) / interval) as usize;
            let buy = if side > 0 { size } else { 0.0 };
            if index + 1 == bars.len() {
                let b = bars.last_mut().unwrap();
                b.high = b.high.max(price);
                b.low = b.low.min(price);
                b.close = price;
                b.volume += size;
                b.turnover += price * size;
                b.n_trades += 1.0;
                b.buy_volume += buy;
                continue;
            }
            while bars.len() < index {
                let c = bars.last().unwrap().close;
                let nan = f64::NAN;
                bars.push(Bar {
                    open: c,
                    high: c,
                    low: c,
                    close: c,
                    volume: 0.0,
                    turnover: 0.0,
                    n_trades: 0.0,
                    buy_volume: 0.0,
                    clv: nan,
                    ret: nan,
                    rv: nan,
                });
            }
            let nan = f64::NAN;
            bars.push(Bar {
                open: price,
                high: price,
                low: price,
                close: price,
                volume: size,
                turnover: price * size,
                n_trades: 1.0,
                buy_volume: buy,
                clv: nan,
                ret: nan,
                rv: nan,
            });
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

    fn index_of(s: &Series, open: i64) -> Option<usize> {
        if open < s.start {
            return None;
        }
        let index = ((open - s.start) / s.interval) as usize;
        (index < s.bars.len()).then_some(index)
    }

    pub(super) fn bar_features(
        t: &TradeColumns<'_>,
        updates: Option<&UpdateSeries<'_>>,
        params: &BarParams,
    ) -> BarTable {
        let mut by_symbol: BTreeMap<u32, Vec<(i64, f64, f64, i8)>> = BTreeMap::new();
        for r in 0..t.len() {
            by_symbol.entry(t.symbol[r]).or_default().push((t.ts[r], t.price[r], t.size[r], t.side[r]));
        }
        let names = column_names(params, updates.is_some());
        let mut out = BarTable { columns: names.into_iter().map(|n| (n, Vec::new())).collect(), ..BarTable::default() };
        for (&symbol, trades) in &by_symbol {
            let base = series(trades, params.interval, params.rv_window);
            let higher: Vec<Series> = params.higher.iter().map(|&h| series(trades, h, params.rv_window)).collect();
            // Per bar: sums of the defined OFIs, last defined pressure, mean of the defined spreads.
            let mut book = vec![(f64::NAN, f64::NAN, f64::NAN, 0.0, 0_u32); base.bars.len()];
            if let Some(u) = updates {
                for r in 0..u.ts.len() {
                    let Some(i) = (u.symbol[r] == symbol)
                        .then(|| index_of(&base, u.ts[r].div_euclid(params.interval) * params.interval))
                        .flatten()
                    else {
                        continue;
                    };
                    let a = &mut book[i];
                    let add = |sum: &mut f64, v: f64| {
                        if !v.is_nan() {
                            *sum = if sum.is_nan() { v } else { *sum + v };
                        }
                    };
                    add(&mut a.0, u.ofi_l1[r]);
                    add(&mut a.1, u.ofi_l5[r]);
                    if !u.pressure_5[r].is_nan() {
                        a.2 = u.pressure_5[r];
                    }
                    if !u.spread_bps[r].is_nan() {
                        a.3 += u.spread_bps[r];
                        a.4 += 1;
                    }
                }
            }
            let vmd = params.vmd.as_ref().map(|v| {
                let closes: Vec<f64> = base.bars.iter().map(|b| b.close).collect();
                rolling_vmd(&closes, v).unwrap()
            });
            for (i, b) in base.bars.iter().enumerate() {
                let open = base.start + i as i64 * params.interval;
                out.ts.push(open);
                out.symbol.push(symbol);
                let mut row = vec![
                    b.open,
                    b.high,
                    b.low,
                    b.close,
                    b.volume,
                    b.turnover,
                    b.n_trades,
                    b.buy_volume,
                    b.clv,
                    b.ret,
                    b.rv,
                ];
                let close = open + params.interval;
                for s in &higher {
                    let last_closed = close.div_euclid(s.interval) * s.interval - s.interval;
                    match index_of(s, last_closed).map(|k| s.bars[k]) {
                        Some(h) => row.extend([h.close, h.volume, h.clv, h.ret, h.rv]),
                        None => row.extend([f64::NAN; 5]),
                    }
                }
                if updates.is_some() {
                    let a = book[i];
                    row.extend([a.0, a.1, a.2, if a.4 > 0 { a.3 / f64::from(a.4) } else { f64::NAN }]);
                }
                if let Some(modes) = &vmd {
                    row.extend(modes.iter().map(|m| m[i]));
                }
                for ((_, column), value) in out.columns.iter_mut().zip(row) {
                    column.push(value);
                }
            }
        }
        out
    }
}
