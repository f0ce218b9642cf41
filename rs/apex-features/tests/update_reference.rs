//! Property test: per-update features against a naive reference (`apex_book::naive`'s plain Vec books, the formulas
//! written out again), and the streaming engine against the batch function, on random multi-symbol streams.

use std::collections::BTreeMap;

use apex_book::naive::{Levels, NaiveBook, NaiveOutcome};
use apex_book::{BookColumns, Level, MessageHeader, UpdateKind};
use apex_core::Scale;
use apex_features::update::{UPDATE_FLOAT_COLUMNS, UpdateEngine, UpdateParams, UpdateReplay, update_features};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Msg {
    symbol: u32,
    snapshot: bool,
    u: u64,
    bids: Vec<(i64, i64)>,
    asks: Vec<(i64, i64)>,
}

/// The naive book of one symbol, and its sorted (best first) top levels after the previous message when that left a
/// usable book.
#[derive(Default)]
struct Reference {
    book: NaiveBook,
    before: Option<(Levels, Levels)>,
}

const PRICE_DECIMALS: u32 = 1;
const TICK: i64 = 5;

/// Expected features of one message (NaN where undefined), in `UPDATE_FLOAT_COLUMNS` order.
fn reference_row(reference: &mut Reference, msg: &Msg) -> Vec<f64> {
    let book = &mut reference.book;
    let rebased = msg.snapshot && book.last.is_some_and(|last| msg.u < last || msg.u == 1);
    let applied = book.apply(msg.snapshot, msg.u, &msg.bids, &msg.asks) == NaiveOutcome::Applied;
    let (bids, asks) = (book.sorted_bids(), book.sorted_asks());
    let usable = applied && !bids.is_empty() && !asks.is_empty() && bids[0].0 < asks[0].0;
    let mut row = vec![f64::NAN; UPDATE_FLOAT_COLUMNS.len()];
    if !usable {
        reference.before = None;
        return row;
    }
    let price = |units: i64| units as f64 / 10.0;
    let (bid, ask) = (bids[0], asks[0]);
    let mid = (price(bid.0) + price(ask.0)) / 2.0;
    let spread = price(ask.0) - price(bid.0);
    row[0] = price(bid.0);
    row[1] = price(ask.0);
    row[2] = mid;
    row[3] = spread;
    row[4] = (ask.0 - bid.0) as f64 / TICK as f64;
    row[5] = spread / mid * 1e4;
    row[6] = (price(bid.0) * ask.1 as f64 + price(ask.0) * bid.1 as f64) / (bid.1 + ask.1) as f64;
    for (slot, depth) in [(14, 1), (15, 5), (16, 10)] {
        let b: i64 = bids.iter().take(depth).map(|l| l.1).sum();
        let a: i64 = asks.iter().take(depth).map(|l| l.1).sum();
        row[slot] = (b - a) as f64 / (b + a) as f64;
    }
    if let Some((bids0, asks0)) = reference.before.take().filter(|_| !rebased) {
        let mut total = 0.0;
        for m in 0..5 {
            let e_bid = match (bids.get(m), bids0.get(m)) {
                (Some(&(p, q)), Some(&(p0, q0))) => (if p >= p0 { q } else { 0 }) - (if p <= p0 { q0 } else { 0 }),
                (Some(&(_, q)), None) => q,
                (None, Some(&(_, q0))) => -q0,
                (None, None) => 0,
            };
            let e_ask = match (asks.get(m), asks0.get(m)) {
                (Some(&(p, q)), Some(&(p0, q0))) => (if p >= p0 { q0 } else { 0 }) - (if p <= p0 { q } else { 0 }),
                (Some(&(_, q)), None) => -q,
                (None, Some(&(_, q0))) => q0,
                (None, None) => 0,
            };
            let e = (e_bid + e_ask) as f64;
            row[9 + m] = e;
            total += e;
        }
        row[7] = row[9];
        row[8] = total;
    }
    reference.before = Some((bids, asks));
    row
}

fn side_levels(range: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::btree_map(range, prop_oneof![Just(0_i64), 1_i64..50], 0..6).prop_map(|m| m.into_iter().collect())
}

/// Streams over two symbols with in-order deltas, skips, repeats, snapshots, rebases and occasional crossings.
fn stream() -> impl Strategy<Value = Vec<Msg>> {
    let step = (0_u32..2, 0_u8..10, side_levels(985..=1002), side_levels(1000..=1015));
    prop::collection::vec(step, 1..80).prop_map(|steps| {
        let mut last = [10_u64, 10];
        steps
            .into_iter()
            .map(|(symbol, action, bids, asks)| {
                let u = &mut last[symbol as usize];
                let snapshot = matches!(action, 0 | 1 | 9);
                *u = match action {
                    7 => *u + 2,
                    8 => *u,
                    9 => (*u / 2).max(1),
                    _ => *u + 1,
                };
                Msg { symbol, snapshot, u: *u, bids, asks }
            })
            .collect()
    })
}

struct Owned {
    ts: Vec<i64>,
    symbol: Vec<u32>,
    kind: Vec<u8>,
    side: Vec<i8>,
    price: Vec<f64>,
    size: Vec<f64>,
    update_id: Vec<i64>,
    seq: Vec<i64>,
}

fn to_columns(msgs: &[Msg]) -> Owned {
    let mut o = Owned {
        ts: vec![],
        symbol: vec![],
        kind: vec![],
        side: vec![],
        price: vec![],
        size: vec![],
        update_id: vec![],
        seq: vec![],
    };
    for (i, m) in msgs.iter().enumerate() {
        let mut levels: Vec<(i8, i64, i64)> = m.bids.iter().map(|&(p, q)| (1, p, q)).collect();
        levels.extend(m.asks.iter().map(|&(p, q)| (-1, p, q)));
        if levels.is_empty() {
            levels.push((0, 0, 0));
        }
        for (side, p, q) in levels {
            o.ts.push(i as i64 * 1000);
            o.symbol.push(m.symbol);
            o.kind.push(u8::from(!m.snapshot));
            o.side.push(side);
            o.price.push(if side == 0 { f64::NAN } else { p as f64 / 10.0 });
            o.size.push(if side == 0 { f64::NAN } else { q as f64 });
            o.update_id.push(m.u as i64);
            o.seq.push(i as i64);
        }
    }
    o
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn batch_matches_reference_and_streaming(msgs in stream()) {
        let o = to_columns(&msgs);
        let cols = BookColumns {
            ts: &o.ts, symbol: &o.symbol, kind: &o.kind, side: &o.side, price: &o.price, size: &o.size,
            update_id: &o.update_id, seq: &o.seq,
        };
        let scales = (Scale::new(PRICE_DECIMALS).unwrap(), Scale::new(0).unwrap());
        let params = UpdateParams { tick_units: [(0, TICK), (1, TICK)].into_iter().collect() };
        let batch = update_features(&cols, scales, &params).unwrap();
        prop_assert_eq!(batch.len(), msgs.len());

        let mut naive: BTreeMap<u32, Reference> = BTreeMap::new();
        let mut engines: BTreeMap<u32, UpdateEngine> = BTreeMap::new();
        for (i, m) in msgs.iter().enumerate() {
            let expected = reference_row(naive.entry(m.symbol).or_default(), m);
            for (c, name) in UPDATE_FLOAT_COLUMNS.iter().enumerate() {
                let got = batch.values[c][i];
                prop_assert!(close(got, expected[c]), "message {} column {}: got {} expected {}", i, name, got, expected[c]);
            }
            prop_assert_eq!(batch.update_id[i], m.u as i64);
            prop_assert_eq!(batch.symbol[i], m.symbol);

            // The streaming engine, fed the same message directly, gives bit-identical values.
            let engine = engines.entry(m.symbol).or_insert_with(|| UpdateEngine::new(scales.0, scales.1).with_tick_units(TICK));
            let header = MessageHeader {
                first_row: 0, symbol: m.symbol,
                kind: if m.snapshot { UpdateKind::Snapshot } else { UpdateKind::Delta },
                update_id: m.u, seq: i as i64, ts: i as i64 * 1000,
            };
            let bids: Vec<Level> = m.bids.iter().map(|&(p, q)| Level::new(p, q)).collect();
            let asks: Vec<Level> = m.asks.iter().map(|&(p, q)| Level::new(p, q)).collect();
            let _ = engine.push(&header, &bids, &asks);
            let row = engine.row().unwrap();
            for (c, value) in row.values().iter().enumerate() {
                prop_assert_eq!(value.to_bits(), batch.values[c][i].to_bits(), "streaming differs at {} {}", i, UPDATE_FLOAT_COLUMNS[c]);
            }
        }
    }

    #[test]
    fn a_table_replayed_in_pieces_gives_the_rows_of_the_whole(msgs in stream(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5)) {
        let o = to_columns(&msgs);
        let cols = |range: std::ops::Range<usize>| BookColumns {
            ts: &o.ts[range.clone()], symbol: &o.symbol[range.clone()], kind: &o.kind[range.clone()],
            side: &o.side[range.clone()], price: &o.price[range.clone()], size: &o.size[range.clone()],
            update_id: &o.update_id[range.clone()], seq: &o.seq[range],
        };
        let scales = (Scale::new(PRICE_DECIMALS).unwrap(), Scale::new(0).unwrap());
        let params = UpdateParams { tick_units: [(0, TICK), (1, TICK)].into_iter().collect() };
        let whole = update_features(&cols(0..o.ts.len()), scales, &params).unwrap();
        // Cut only where the timestamp changes: a message's rows share one.
        let starts: Vec<usize> = (1..o.ts.len()).filter(|&row| o.ts[row] != o.ts[row - 1]).collect();
        let mut bounds: Vec<usize> = cuts.iter().filter(|_| !starts.is_empty()).map(|cut| starts[cut.index(starts.len())]).collect();
        bounds.extend([0, o.ts.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut replay = UpdateReplay::new(scales, params).unwrap();
        let mut pieces = UpdateColumnsParts { values: vec![Vec::new(); UPDATE_FLOAT_COLUMNS.len()], ..Default::default() };
        for pair in bounds.windows(2) {
            let piece = replay.push(&cols(pair[0]..pair[1])).unwrap();
            pieces.ts.extend(&piece.ts);
            pieces.update_id.extend(&piece.update_id);
            pieces.incidents.extend(piece.incidents.iter().map(|(row, _)| row + pair[0]));
            for (c, column) in piece.values.iter().enumerate() {
                pieces.values[c].extend(column.iter().map(|v| v.to_bits()));
            }
        }
        prop_assert_eq!(pieces.ts, whole.ts.clone());
        prop_assert_eq!(pieces.update_id, whole.update_id.clone());
        prop_assert_eq!(pieces.incidents, whole.incidents.iter().map(|(row, _)| *row).collect::<Vec<_>>());
        let bits: Vec<Vec<u64>> = whole.values.iter().map(|c| c.iter().map(|v| v.to_bits()).collect()).collect();
        prop_assert_eq!(pieces.values, bits);
    }
}

/// The columns of a replay in pieces, joined, with values as bits (NaN equals NaN).
#[derive(Default)]
struct UpdateColumnsParts {
    ts: Vec<i64>,
    update_id: Vec<i64>,
    values: Vec<Vec<u64>>,
    incidents: Vec<usize>,
}
