//! Criterion benchmarks: per-update features over a long depth-200 delta stream, the engine against a naive
//! baseline; and the streaming bar engine per event (trades + L2 messages of 6 hours, rows with MTFA, book
//! aggregates and VMD) against recomputing the batch bar features over the last 64 bars at every bar close.

use apex_book::synthetic::{Sides, ob200_stream};
use apex_book::{Level, MessageHeader, UpdateKind};
use apex_core::Scale;
use apex_features::bars::{BarParams, BarSource, UpdateSeries, bar_features};
use apex_features::engine::{BarFeatureEngine, EngineConfig, Trade};
use apex_features::trades::TradeColumns;
use apex_features::update::UpdateEngine;
use apex_features::{MINUTE, SECOND};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn header(kind: UpdateKind, update_id: u64) -> MessageHeader {
    MessageHeader { first_row: 0, symbol: 0, kind, update_id, seq: update_id as i64, ts: update_id as i64 }
}

/// The naive way: unsorted Vec sides, sort a copy after every message, recompute every feature from it.
fn naive(snapshot: &Sides, deltas: &[Sides]) -> f64 {
    let mut bids: Vec<(i64, i64)> = snapshot.0.iter().map(|l| (l.price, l.qty)).collect();
    let mut asks: Vec<(i64, i64)> = snapshot.1.iter().map(|l| (l.price, l.qty)).collect();
    let sorted = |bids: &[(i64, i64)], asks: &[(i64, i64)]| {
        let mut b = bids.to_vec();
        b.sort_by_key(|l| std::cmp::Reverse(l.0));
        let mut a = asks.to_vec();
        a.sort_by_key(|l| l.0);
        (b, a)
    };
    let mut before = sorted(&bids, &asks);
    let mut checksum = 0.0;
    for (delta_bids, delta_asks) in deltas {
        for (side, levels) in [(&mut bids, delta_bids), (&mut asks, delta_asks)] {
            for level in levels {
                side.retain(|&(p, _)| p != level.price);
                if level.qty > 0 {
                    side.push((level.price, level.qty));
                }
            }
        }
        let after = sorted(&bids, &asks);
        let (b, a) = (after.0[0], after.1[0]);
        let mid = (b.0 + a.0) as f64 / 2.0;
        let micro = (b.0 as f64 * a.1 as f64 + a.0 as f64 * b.1 as f64) / (a.1 + b.1) as f64;
        let mut ofi = 0;
        for m in 0..5 {
            let (pb, qb) = after.0[m];
            let (pb0, qb0) = before.0[m];
            let (pa, qa) = after.1[m];
            let (pa0, qa0) = before.1[m];
            ofi += if pb >= pb0 { qb } else { 0 } - if pb <= pb0 { qb0 } else { 0 };
            ofi += if pa >= pa0 { qa0 } else { 0 } - if pa <= pa0 { qa } else { 0 };
        }
        let mut pressure = 0.0;
        for n in [1, 5, 10] {
            let vb: i64 = after.0.iter().take(n).map(|l| l.1).sum();
            let va: i64 = after.1.iter().take(n).map(|l| l.1).sum();
            pressure += (vb - va) as f64 / (vb + va) as f64;
        }
        checksum += mid + micro + ofi as f64 + pressure;
        before = after;
    }
    checksum
}

fn bench_update_features(c: &mut Criterion) {
    let (snapshot, deltas) = ob200_stream(100_000);
    let scales = (Scale::new(1).unwrap(), Scale::new(3).unwrap());
    let mut group = c.benchmark_group("update_features_100k_deltas");
    group.throughput(Throughput::Elements(deltas.len() as u64));
    group.sample_size(10);
    group.bench_function("apex_features_engine", |b| {
        b.iter(|| {
            let mut engine = UpdateEngine::new(scales.0, scales.1);
            engine.push(&header(UpdateKind::Snapshot, 1), &snapshot.0, &snapshot.1).unwrap();
            let mut checksum = 0.0;
            for (i, (bids, asks)) in deltas.iter().enumerate() {
                let _ = engine.push(&header(UpdateKind::Delta, i as u64 + 2), bids, asks);
                let row = engine.row().expect("a row after a push");
                checksum += row.mid + row.microprice + row.ofi_l5 + row.pressure.iter().sum::<f64>();
            }
            checksum
        });
    });
    group.bench_function("naive_sorted_copy", |b| b.iter(|| naive(&snapshot, &deltas)));
    group.finish();
}

/// One event of a timed one-symbol market.
enum Event {
    Trade(Trade),
    Book(MessageHeader, Vec<Level>, Vec<Level>),
}

const HOURS: i64 = 6;
const WINDOW_BARS: i64 = 64;

/// 6 hours of a BTCUSDT-like market: an L2 message every 200 ms (a snapshot, then deltas of a few levels near a
/// random-walk mid), a trade every 2 s at the touch.
fn market() -> Vec<Event> {
    let mut rng = apex_core::XorShift64::new(0x2545_F491_4F6C_DD1D_u64);
    let mut next = move || rng.next_u64();
    let mut mid = 1_000_000_i64;
    let mut events = Vec::new();
    let step = 200_000_000;
    for (k, ts) in (0..HOURS * 3_600 * SECOND).step_by(step as usize).enumerate() {
        mid += (next() % 3) as i64 - 1;
        let size = |n: u64| 1 + (n % 500) as i64;
        let (bids, asks): (Vec<Level>, Vec<Level>) = if k == 0 {
            (
                (1..=50).map(|i| Level::new(mid - i, size(next()))).collect(),
                (1..=50).map(|i| Level::new(mid + i, size(next()))).collect(),
            )
        } else {
            (
                (1..=2).map(|i| Level::new(mid - i, size(next()))).collect(),
                (1..=2).map(|i| Level::new(mid + i, size(next()))).collect(),
            )
        };
        let kind = if k == 0 { UpdateKind::Snapshot } else { UpdateKind::Delta };
        let header = MessageHeader { first_row: 0, symbol: 0, kind, update_id: k as u64 + 1, seq: k as i64, ts };
        events.push(Event::Book(header, bids, asks));
        if k % 10 == 5 {
            let side = if next() % 2 == 0 { 1 } else { -1 };
            let price = (mid + i64::from(side)) as f64 / 10.0;
            events.push(Event::Trade(Trade { ts: ts + 1, side, price, size: (1 + next() % 90) as f64 / 1000.0 }));
        }
    }
    events
}

fn config() -> EngineConfig {
    EngineConfig {
        bars: BarParams::new(MINUTE),
        price_scale: Scale::new(1).unwrap(),
        qty_scale: Scale::new(3).unwrap(),
        book_columns: true,
    }
}

/// Every event through one engine; returns a checksum of the rows.
fn streaming(events: &[Event]) -> f64 {
    let mut engine = BarFeatureEngine::new(config()).unwrap();
    let mut checksum = 0.0;
    let mut sum = |_: i64, row: &[f64]| checksum += row.iter().filter(|v| v.is_finite()).sum::<f64>();
    for event in events {
        match event {
            Event::Trade(t) => engine.on_trade(t, &mut sum).unwrap(),
            Event::Book(h, b, a) => {
                let _ = engine.on_book(h, b, a, &mut sum);
            }
        }
    }
    checksum
}

/// The naive live way: update features streamed (they need the book anyway), and at every bar close the batch bar
/// features of the last 64 bars' trades and update rows; returns a checksum of each close's last row.
fn recompute(events: &[Event]) -> f64 {
    let config = config();
    let mut updates = UpdateEngine::new(config.price_scale, config.qty_scale);
    let (mut t_ts, mut t_side, mut t_price, mut t_size) = (vec![], vec![], vec![], vec![]);
    let (mut u_ts, mut u_ofi1, mut u_ofi5, mut u_p5, mut u_spread) = (vec![], vec![], vec![], vec![], vec![]);
    let mut next_close = MINUTE;
    let mut checksum = 0.0;
    for event in events {
        let ts = match event {
            Event::Trade(t) => t.ts,
            Event::Book(h, _, _) => h.ts,
        };
        if ts >= next_close && !t_ts.is_empty() {
            let from = next_close - WINDOW_BARS * MINUTE;
            let t0 = t_ts.partition_point(|&t| t < from);
            let u0 = u_ts.partition_point(|&t| t < from);
            let zeros = vec![0_u32; t_ts.len().max(u_ts.len())];
            let trades = TradeColumns {
                ts: &t_ts[t0..],
                symbol: &zeros[..t_ts.len() - t0],
                side: &t_side[t0..],
                price: &t_price[t0..],
                size: &t_size[t0..],
            };
            let series = UpdateSeries {
                ts: &u_ts[u0..],
                symbol: &zeros[..u_ts.len() - u0],
                ofi_l1: &u_ofi1[u0..],
                ofi_l5: &u_ofi5[u0..],
                pressure_5: &u_p5[u0..],
                spread_bps: &u_spread[u0..],
            };
            let table = bar_features(&BarSource::Trades(trades), Some(&series), &config.bars).unwrap();
            checksum += table.columns.iter().filter_map(|(_, c)| c.last()).filter(|v| v.is_finite()).sum::<f64>();
            next_close += MINUTE;
        }
        match event {
            Event::Trade(t) => {
                t_ts.push(t.ts);
                t_side.push(t.side);
                t_price.push(t.price);
                t_size.push(t.size);
            }
            Event::Book(h, b, a) => {
                let _ = updates.push(h, b, a);
                let row = updates.row().unwrap();
                u_ts.push(h.ts);
                u_ofi1.push(row.ofi_l1);
                u_ofi5.push(row.ofi_l5);
                u_p5.push(row.pressure[1]);
                u_spread.push(row.spread_bps);
            }
        }
    }
    checksum
}

fn bench_bar_engine(c: &mut Criterion) {
    let events = market();
    let mut group = c.benchmark_group("bar_engine_6h_trades_and_l2");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(10);
    group.bench_function("streaming_engine_per_event", |b| b.iter(|| streaming(&events)));
    group.bench_function("batch_last_64_bars_per_close", |b| b.iter(|| recompute(&events)));
    group.finish();
}

criterion_group!(benches, bench_update_features, bench_bar_engine);
criterion_main!(benches);
