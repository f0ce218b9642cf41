//! Criterion benchmark: applying a long stream of depth-200 deltas, the book against a sorted-Vec baseline.

use apex_book::{L2Book, Level, UpdateKind};
use apex_core::Scale;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Bid and ask levels of one message.
type Sides = (Vec<Level>, Vec<Level>);

/// A deterministic stream shaped like an ob200 archive: a snapshot, then deltas touching a few levels near the touch.
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

fn bench_apply(c: &mut Criterion) {
    let ((snap_bids, snap_asks), deltas) = stream(100_000);
    let mut group = c.benchmark_group("book_apply_100k_deltas");
    group.throughput(Throughput::Elements(deltas.len() as u64));
    group.bench_function("apex_book", |b| {
        b.iter_batched(
            || {
                let mut book = L2Book::new(Scale::new(1).unwrap(), Scale::new(3).unwrap());
                book.apply(UpdateKind::Snapshot, 1, 0, 0, &snap_bids, &snap_asks).unwrap();
                book
            },
            |mut book| {
                for (i, (bids, asks)) in deltas.iter().enumerate() {
                    let _ = book.apply(UpdateKind::Delta, i as u64 + 2, 0, 0, bids, asks);
                }
                book.best_bid()
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("naive_unsorted_vec", |b| {
        b.iter(|| {
            let mut bids: Vec<(i64, i64)> = snap_bids.iter().map(|l| (l.price, l.qty)).collect();
            let mut asks: Vec<(i64, i64)> = snap_asks.iter().map(|l| (l.price, l.qty)).collect();
            let mut best = 0;
            for (delta_bids, delta_asks) in &deltas {
                for (side, levels) in [(&mut bids, delta_bids), (&mut asks, delta_asks)] {
                    for level in levels {
                        side.retain(|&(p, _)| p != level.price);
                        if level.qty > 0 {
                            side.push((level.price, level.qty));
                        }
                    }
                }
                best = bids.iter().map(|&(p, _)| p).max().unwrap_or(0);
            }
            best
        });
    });
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
