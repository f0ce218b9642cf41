//! Criterion benchmark: level updates per second on one core, applying a long stream of depth-200 deltas, apex-book
//! against a naive book of two `BTreeMap`s (best levels looked up after every message) in the same run.

use std::collections::BTreeMap;

use apex_book::synthetic::{Sides, ob200_stream};
use apex_book::{L2Book, Level, UpdateKind};
use apex_core::Scale;
use apex_core::timing::best_of;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const DELTAS: usize = 100_000;

/// The obvious book: a sorted map per side, the best bid and ask read from the maps after every message.
#[derive(Default)]
struct NaiveBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    best: (i64, i64),
}

impl NaiveBook {
    fn snapshot(bids: &[Level], asks: &[Level]) -> NaiveBook {
        let mut book = NaiveBook::default();
        book.apply(bids, asks);
        book
    }

    fn apply(&mut self, bids: &[Level], asks: &[Level]) {
        for (side, levels) in [(&mut self.bids, bids), (&mut self.asks, asks)] {
            for level in levels {
                if level.qty == 0 {
                    side.remove(&level.price);
                } else {
                    side.insert(level.price, level.qty);
                }
            }
        }
        let bid = self.bids.last_key_value().map_or(0, |(&p, _)| p);
        let ask = self.asks.first_key_value().map_or(0, |(&p, _)| p);
        self.best = (bid, ask);
    }
}

fn fresh_book(snap_bids: &[Level], snap_asks: &[Level]) -> L2Book {
    let mut book = L2Book::new(Scale::new(1).unwrap(), Scale::new(3).unwrap());
    book.apply(UpdateKind::Snapshot, 1, 0, 0, snap_bids, snap_asks).unwrap();
    book
}

fn run_book(mut book: L2Book, deltas: &[Sides]) -> Option<Level> {
    for (i, (bids, asks)) in deltas.iter().enumerate() {
        let _ = book.apply(UpdateKind::Delta, i as u64 + 2, 0, 0, bids, asks);
    }
    book.best_bid()
}

fn run_naive(mut book: NaiveBook, deltas: &[Sides]) -> (i64, i64) {
    for (bids, asks) in deltas {
        book.apply(bids, asks);
    }
    book.best
}

fn bench_apply(c: &mut Criterion) {
    let ((snap_bids, snap_asks), deltas) = ob200_stream(DELTAS);
    let updates = deltas.iter().map(|(b, a)| b.len() + a.len()).sum::<usize>() as f64;
    let ours = best_of(5, || fresh_book(&snap_bids, &snap_asks), |book| run_book(book, &deltas));
    let naive = best_of(5, || NaiveBook::snapshot(&snap_bids, &snap_asks), |book| run_naive(book, &deltas));
    let (final_bid, final_ask) = run_naive(NaiveBook::snapshot(&snap_bids, &snap_asks), &deltas);
    let book = fresh_book(&snap_bids, &snap_asks);
    let ours_best = run_book(book, &deltas).map(|l| l.price);
    assert_eq!(ours_best, Some(final_bid), "both books end with the same best bid");
    println!(
        "book_apply_{DELTAS}_deltas ({updates} level updates, one core): apex-book {:.1} M level updates/s, naive \
         BTreeMap book {:.1} M/s (best of 5 each), ratio {:.1}x (final best {final_bid} / {final_ask})",
        updates / ours / 1e6,
        updates / naive / 1e6,
        naive / ours,
    );
    let mut group = c.benchmark_group(format!("book_level_updates_{DELTAS}_deltas"));
    group.throughput(Throughput::Elements(updates as u64));
    group.bench_function("apex_book", |b| {
        b.iter_batched(|| fresh_book(&snap_bids, &snap_asks), |book| run_book(book, &deltas), BatchSize::LargeInput);
    });
    group.bench_function("naive_btreemap_book", |b| {
        b.iter_batched(
            || NaiveBook::snapshot(&snap_bids, &snap_asks),
            |book| run_naive(book, &deltas),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
