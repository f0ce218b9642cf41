//! Criterion benchmark: per-update features over a long depth-200 delta stream, the engine against a naive baseline.

use apex_book::{Level, MessageHeader, UpdateKind};
use apex_core::Scale;
use apex_features::update::UpdateEngine;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Bid and ask levels of one message.
type Sides = (Vec<Level>, Vec<Level>);

/// A deterministic ob200-like stream: a snapshot, then deltas touching a few levels near the touch.
fn stream(count: usize) -> (Sides, Vec<Sides>) {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let snap_bids: Vec<Level> = (0..200).map(|i| Level::new(100_000 - i, 1 + (i % 17))).collect();
    let snap_asks: Vec<Level> = (0..200).map(|i| Level::new(100_001 + i, 1 + (i % 13))).collect();
    let deltas = (0..count)
        .map(|_| {
            let mut bids = Vec::new();
            let mut asks = Vec::new();
            for _ in 0..(1 + next() % 6) {
                let offset = (next() % 220) as i64;
                let qty = if next() % 4 == 0 { 0 } else { 1 + (next() % 500) as i64 };
                if next() % 2 == 0 {
                    bids.push(Level::new(100_000 - offset, qty));
                } else {
                    asks.push(Level::new(100_001 + offset, qty));
                }
            }
            (bids, asks)
        })
        .collect();
    ((snap_bids, snap_asks), deltas)
}

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
    let (snapshot, deltas) = stream(100_000);
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

criterion_group!(benches, bench_update_features);
criterion_main!(benches);
