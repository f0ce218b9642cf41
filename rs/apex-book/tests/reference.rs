//! Property test: the book against the naive reference (`apex_book::naive`: unsorted vectors, linear scans) on random V5 message streams
//! with gaps, repeats, rebasing snapshots and deltas before the first snapshot.

use apex_book::naive::{NaiveBook, NaiveOutcome};
use apex_book::{Applied, BookError, L2Book, Level, UpdateKind};
use apex_core::{Scale, Side};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Msg {
    snapshot: bool,
    u: u64,
    bids: Vec<(i64, i64)>,
    asks: Vec<(i64, i64)>,
}

/// Bids below 1000 and asks above 1000 (so the book never crosses); every side's prices are distinct per message
/// (as in a real message) and sizes include deletes.
fn side_levels(low: i64, high: i64) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::btree_map(low..high, prop_oneof![1 => Just(0_i64), 4 => 1_i64..1_000], 0..8)
        .prop_map(|m| m.into_iter().collect())
}

fn message_stream() -> impl Strategy<Value = Vec<Msg>> {
    message_stream_of(side_levels(950, 1000).boxed(), side_levels(1001, 1050).boxed())
}

/// Levels near a touch at 20,000 mixed with levels up to 3,000 units away (deep levels, and touches that jump): the
/// book's dense window around the touch (1,024 units at least), the map beyond it and the window's moves all get
/// exercised.
fn wide_message_stream() -> impl Strategy<Value = Vec<Msg>> {
    message_stream_of(
        prop_oneof![2 => side_levels(19_950, 20_000), 1 => side_levels(17_000, 20_000)].boxed(),
        prop_oneof![2 => side_levels(20_001, 20_050), 1 => side_levels(20_001, 23_000)].boxed(),
    )
}

fn message_stream_of(
    bids: BoxedStrategy<Vec<(i64, i64)>>,
    asks: BoxedStrategy<Vec<(i64, i64)>>,
) -> impl Strategy<Value = Vec<Msg>> {
    let step = (prop_oneof![6 => Just(0_u8), 1 => Just(1), 1 => Just(2), 1 => Just(3), 1 => Just(4)], bids, asks);
    prop::collection::vec(step, 1..120).prop_map(|steps| {
        let mut u = 50_u64;
        steps
            .into_iter()
            .map(|(what, bids, asks)| {
                // 0 next delta, 1 skip (gap), 2 repeat (gap), 3 snapshot continuing, 4 rebase snapshot (u = 1 or lower)
                let (snapshot, next) = match what {
                    0 => (false, u + 1),
                    1 => (false, u + 2),
                    2 => (false, u),
                    3 => (true, u + 1),
                    _ => (true, if u.is_multiple_of(2) { 1 } else { u.saturating_sub(10).max(1) }),
                };
                if what != 2 {
                    u = next;
                }
                Msg { snapshot, u: next, bids, asks }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn matches_naive_reference(stream in message_stream()) {
        check_against_naive(&stream)?;
    }

    #[test]
    fn matches_naive_reference_with_far_levels_and_jumping_touches(stream in wide_message_stream()) {
        check_against_naive(&stream)?;
    }

    #[test]
    fn checksum_is_a_function_of_the_top_levels(
        a in side_levels(950, 1000), b in side_levels(1001, 1050), extra in side_levels(900, 940)
    ) {
        let to_levels = |v: &Vec<(i64, i64)>| v.iter().map(|&(p, q)| Level::new(p, q)).collect::<Vec<_>>();
        let mut one = L2Book::new(Scale::new(1).unwrap(), Scale::new(3).unwrap());
        let mut two = one.clone();
        one.apply(UpdateKind::Snapshot, 1, 0, 0, &to_levels(&a), &to_levels(&b)).unwrap();
        let mut with_extra = to_levels(&a);
        with_extra.extend(to_levels(&extra));
        two.apply(UpdateKind::Snapshot, 1, 0, 0, &with_extra, &to_levels(&b)).unwrap();
        let depth = one.len(Side::Buy);
        prop_assert_eq!(one.checksum(depth), two.checksum(depth));
    }
}

/// Replays `stream` through the book and the naive reference, comparing outcomes, levels and depth queries.
fn check_against_naive(stream: &[Msg]) -> Result<(), TestCaseError> {
    let mut book = L2Book::new(Scale::new(1).unwrap(), Scale::new(3).unwrap());
    let mut naive = NaiveBook::default();
    for msg in stream {
        let bids: Vec<Level> = msg.bids.iter().map(|&(p, q)| Level::new(p, q)).collect();
        let asks: Vec<Level> = msg.asks.iter().map(|&(p, q)| Level::new(p, q)).collect();
        let kind = if msg.snapshot { UpdateKind::Snapshot } else { UpdateKind::Delta };
        let got = book.apply(kind, msg.u, 0, 0, &bids, &asks);
        let want = naive.apply(msg.snapshot, msg.u, &msg.bids, &msg.asks);
        match (want, &got) {
            (NaiveOutcome::Applied, Ok(Applied::Snapshot { .. } | Applied::Delta))
            | (NaiveOutcome::Dropped, Ok(Applied::DroppedBeforeSnapshot))
            | (NaiveOutcome::Gap, Err(BookError::Gap { .. }))
            | (NaiveOutcome::Stale, Err(BookError::AwaitingSnapshot { .. })) => {}
            _ => prop_assert!(false, "message {:?}: reference says {:?}, book says {:?}", msg, want, got),
        }
        let as_levels =
            |levels: Vec<(i64, i64)>| -> Vec<Level> { levels.into_iter().map(|(p, q)| Level::new(p, q)).collect() };
        let (naive_bids, naive_asks) = (as_levels(naive.sorted_bids()), as_levels(naive.sorted_asks()));
        let bids_now = book.top_n(Side::Buy, usize::MAX);
        let asks_now = book.top_n(Side::Sell, usize::MAX);
        prop_assert_eq!(&bids_now, &naive_bids);
        prop_assert_eq!(&asks_now, &naive_asks);
        prop_assert_eq!(book.best_bid(), naive_bids.first().copied());
        prop_assert_eq!(book.best_ask(), naive_asks.first().copied());
        for n in [0_usize, 1, 3, 10] {
            let bid_depth: i64 = naive_bids.iter().take(n).map(|l| l.qty).sum();
            prop_assert_eq!(book.depth_levels(Side::Buy, n), bid_depth);
            let ask_depth: i64 = naive_asks.iter().take(n).map(|l| l.qty).sum();
            prop_assert_eq!(book.depth_levels(Side::Sell, n), ask_depth);
            prop_assert_eq!(&book.top_n(Side::Buy, n)[..], &naive_bids[..n.min(bids_now.len())]);
            prop_assert_eq!(&book.top_n(Side::Sell, n)[..], &naive_asks[..n.min(asks_now.len())]);
        }
        if let Some(mid) = book.mid_units() {
            let floor = mid - mid * 25.0 / 10_000.0;
            let naive_band: i64 = naive.bids.iter().filter(|&&(p, _)| p as f64 >= floor).map(|&(_, q)| q).sum();
            prop_assert_eq!(book.depth_within_bps(Side::Buy, 25.0), naive_band);
        }
    }
    Ok(())
}
