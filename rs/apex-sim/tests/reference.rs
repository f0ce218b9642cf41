//! Property test: the matching engine against the naive reference matcher on random order streams (limits of every
//! time in force, markets, cancels, amends, reduce-only, every STP mode, several accounts): identical outcomes and
//! trades, identical resting book, consistent level events and L2 messages, conserved quantity and cash.

mod naive;

use std::collections::BTreeMap;

use apex_book::{L2Book, UpdateKind};
use apex_core::{Scale, Side};
use apex_sim::{BookPublisher, EngineBook, Event, InstrumentSpec, MatchingEngine, NewOrder, StpMode, TimeInForce};
use naive::NaiveMatcher;
use proptest::prelude::*;

/// Price 1000.0 in units of 0.1 with a tick of 0.5 (5 units); lot 0.02 (2 units of 0.01), minimum 0.02.
fn spec() -> InstrumentSpec {
    let mut spec = InstrumentSpec::bybit_linear("TESTUSDT", "0.5", "0.01", "0.02").unwrap();
    spec.lot = 2;
    spec.min_qty = 2;
    spec.max_qty = 10;
    spec.market_band = 0.004;
    spec
}

const MID: i64 = 10_000;

#[derive(Debug, Clone)]
enum Op {
    Order(NewOrder),
    /// `pick` chooses among resting orders, or among all orders ever sent when `stale`.
    Cancel {
        pick: usize,
        stale: bool,
        foreign: bool,
    },
    Amend {
        pick: usize,
        stale: bool,
        foreign: bool,
        price: Option<i64>,
        qty: Option<i64>,
    },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![Just(StpMode::CancelTaker), Just(StpMode::CancelMaker), Just(StpMode::CancelBoth)]
}

fn tif() -> impl Strategy<Value = TimeInForce> {
    prop_oneof![
        4 => Just(TimeInForce::Gtc),
        1 => Just(TimeInForce::Ioc),
        1 => Just(TimeInForce::Fok),
        2 => Just(TimeInForce::PostOnly),
    ]
}

/// Prices within ±15 ticks of the middle, now and then off the tick; quantities of 1–6 lots, now and then off the lot.
fn price() -> impl Strategy<Value = i64> {
    prop_oneof![20 => (-15_i64..=15).prop_map(|t| MID + 5 * t), 1 => MID - 80..MID + 80]
}

/// Four accounts: three small ids and one far above them (the engine keeps small and large ids apart).
fn account() -> impl Strategy<Value = u32> {
    (0_u32..4).prop_map(|a| if a == 3 { 1 << 20 } else { a })
}

fn qty() -> impl Strategy<Value = i64> {
    prop_oneof![20 => (1_i64..=6).prop_map(|l| 2 * l), 1 => -1_i64..=13]
}

fn op() -> impl Strategy<Value = Op> {
    let order = (account(), side(), qty(), price(), tif(), prop::bool::weighted(0.3), stp()).prop_map(
        |(account, side, qty, price, tif, reduce_only, stp)| {
            let order = NewOrder::limit(account, side, price, qty, tif).with_stp(stp);
            Op::Order(if reduce_only { order.reduce_only() } else { order })
        },
    );
    let market = (account(), side(), qty(), prop::bool::weighted(0.2), stp()).prop_map(
        |(account, side, qty, reduce_only, stp)| {
            let order = NewOrder::market(account, side, qty).with_stp(stp);
            Op::Order(if reduce_only { order.reduce_only() } else { order })
        },
    );
    let cancel = (any::<usize>(), prop::bool::weighted(0.15), prop::bool::weighted(0.1))
        .prop_map(|(pick, stale, foreign)| Op::Cancel { pick, stale, foreign });
    let amend = (
        any::<usize>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.1),
        prop::option::of(price()),
        prop::option::of(qty()),
    )
        .prop_map(|(pick, stale, foreign, price, qty)| Op::Amend { pick, stale, foreign, price, qty });
    prop_oneof![10 => order, 3 => market, 3 => cancel, 3 => amend]
}

/// The engine's events reduced to what the reference reports (no fills, no level changes).
fn outcomes(events: &[Event]) -> Vec<Event> {
    events.iter().filter(|e| !matches!(e, Event::Fill { .. } | Event::BookLevel { .. })).copied().collect()
}

/// Runs the stream through both matchers, checking after every step; returns how often each kind of outcome
/// happened (`Trade`, `Rejected(FokUnfillable)`, `Cancelled(SelfTrade)`, `Amended(true)`, ...).
fn check_stream(ops: &[Op]) -> Result<BTreeMap<String, usize>, TestCaseError> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let spec = spec();
    let mut engine = MatchingEngine::new(spec.clone()).unwrap();
    let mut naive = NaiveMatcher::new(&spec);
    let mut publisher = BookPublisher::new(5).unwrap();
    // Follows the same engine by ticks, making a message only when asked, as the market does for top-of-book readers.
    let mut ticker = BookPublisher::new(5).unwrap();
    let mut mirror = L2Book::new(Scale::new(1).unwrap(), Scale::new(2).unwrap());
    let mut levels: BTreeMap<(i8, i64), i64> = BTreeMap::new();
    let mut owners: Vec<(u64, u32)> = Vec::new();
    let mut events = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let ts_us = step as i64 * 1_000;
        match op {
            Op::Order(order) => {
                let id = engine.submit(ts_us, order, &mut events);
                prop_assert_eq!(naive.submit(ts_us, order), id);
                owners.push((id, order.account));
            }
            Op::Cancel { pick, stale, foreign } | Op::Amend { pick, stale, foreign, .. } => {
                let resting: Vec<(u64, u32)> = naive.orders.iter().map(|o| (o.id, o.account)).collect();
                let pool = if *stale || resting.is_empty() { &owners } else { &resting };
                if pool.is_empty() {
                    continue;
                }
                let (id, owner) = pool[pick % pool.len()];
                let account = if *foreign { (owner + 1) % 4 } else { owner };
                if let Op::Amend { price, qty, .. } = op {
                    let done = engine.amend(ts_us, account, id, *price, *qty, &mut events);
                    prop_assert_eq!(naive.amend(ts_us, account, id, *price, *qty), done);
                } else {
                    let done = engine.cancel(ts_us, account, id, &mut events);
                    prop_assert_eq!(naive.cancel(account, id), done);
                }
            }
        }

        for event in &events {
            if let Event::BookLevel { side, price, qty } = *event {
                if qty == 0 {
                    levels.remove(&(side.sign(), price));
                } else {
                    levels.insert((side.sign(), price), qty);
                }
            }
        }
        prop_assert_eq!(outcomes(&events), std::mem::take(&mut naive.outcomes), "step {} {:?}", step, op);
        for event in outcomes(&events) {
            let kind = match event {
                Event::Accepted { .. } => "Accepted".to_owned(),
                Event::Rejected { reason, .. } => format!("Rejected({reason:?})"),
                Event::Cancelled { reason, .. } => format!("Cancelled({reason:?})"),
                Event::Amended { kept_priority, .. } => format!("Amended({kept_priority})"),
                Event::Trade { .. } => "Trade".to_owned(),
                Event::Fill { .. } | Event::BookLevel { .. } => unreachable!("filtered out"),
            };
            *seen.entry(kind).or_default() += 1;
        }
        events.clear();

        for side in [Side::Buy, Side::Sell] {
            let engine_book: Vec<_> = engine
                .resting(side)
                .map(|o| (o.order_id, o.account, o.price, o.leaves_qty, o.filled_qty, o.reduce_only, o.post_only))
                .collect();
            let naive_book: Vec<_> = naive
                .book(side)
                .iter()
                .map(|o| (o.id, o.account, o.price, o.leaves, o.filled, o.reduce_only, o.post_only))
                .collect();
            prop_assert_eq!(&engine_book, &naive_book, "{:?} book after step {}", side, step);
            let mut aggregate: BTreeMap<(i8, i64), i64> = BTreeMap::new();
            for o in naive.book(side) {
                *aggregate.entry((side.sign(), o.price)).or_default() += o.leaves;
            }
            let reported: BTreeMap<_, _> =
                levels.iter().filter(|((s, _), _)| *s == side.sign()).map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(reported, aggregate, "level events disagree with the book after step {}", step);
        }
        prop_assert_eq!(engine.open_orders(), naive.orders.len());
        if let (Some(bid), Some(ask)) = (engine.best_bid(), engine.best_ask()) {
            prop_assert!(bid.price < ask.price, "crossed book after step {}", step);
        }

        let engine_accounts: Vec<_> = engine.accounts().map(|(id, a)| (id, a.position, a.cash, a.fees)).collect();
        let naive_accounts: Vec<_> = naive.accounts.iter().map(|(&id, a)| (id, a.position, a.cash, a.fees)).collect();
        prop_assert_eq!(&engine_accounts, &naive_accounts);
        prop_assert_eq!(engine_accounts.iter().map(|a| a.1).sum::<i64>(), 0, "quantity not conserved");
        prop_assert_eq!(engine_accounts.iter().map(|a| a.2 + a.3).sum::<i128>(), 0, "cash not conserved");

        let update = publisher.publish(&engine, ts_us);
        let tick = ticker.tick(&engine, ts_us);
        prop_assert_eq!(tick, update.as_ref().map(apex_sim::L2Update::tick));
        prop_assert_eq!(ticker.published(), publisher.published(), "published top after step {}", step);
        if let (Some(tick), Some(update)) = (tick, &update) {
            let book = EngineBook::new(tick, &ticker, None);
            prop_assert_eq!(&*book.message(), update, "message made after the tick, step {}", step);
        }
        if let Some(update) = update {
            mirror
                .apply(update.kind, update.update_id, update.seq as i64, update.ts_us, &update.bids, &update.asks)
                .map_err(|e| TestCaseError::fail(format!("L2 message refused after step {step}: {e}")))?;
            prop_assert_eq!(update.kind == UpdateKind::Snapshot, update.update_id == 1);
        }
        for side in [Side::Buy, Side::Sell] {
            prop_assert_eq!(mirror.top_n(side, 5), engine.top_n(side, 5), "L2 mirror after step {}", step);
        }
    }
    Ok(seen)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_naive_reference(ops in prop::collection::vec(op(), 1..160)) {
        check_stream(&ops)?;
    }
}

/// A long deterministic stream through the same checks, so deep books and long queues are covered too.
#[test]
fn long_stream_matches_naive_reference() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let ops = prop::collection::vec(op(), 3_000).new_tree(&mut runner).unwrap().current();
    let seen = check_stream(&ops).unwrap();
    // The stream must reach every rule, or the comparison above proves little.
    for kind in [
        "Trade",
        "Amended(true)",
        "Amended(false)",
        "Cancelled(User)",
        "Cancelled(Unfilled)",
        "Cancelled(SelfTrade)",
        "Cancelled(ReduceOnly)",
        "Rejected(InvalidQty)",
        "Rejected(InvalidPrice)",
        "Rejected(PostOnlyWouldTake)",
        "Rejected(FokUnfillable)",
        "Rejected(ReduceOnlyWouldIncrease)",
        "Rejected(UnknownOrder)",
        "Rejected(AmendBelowFilled)",
    ] {
        assert!(seen.get(kind).copied().unwrap_or(0) >= 3, "{kind} seen {:?} times in {seen:?}", seen.get(kind));
    }
}
