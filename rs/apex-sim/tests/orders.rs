//! Unit tests per order type and edge case: time in force, market band, amend priority, STP modes, reduce-only,
//! fees, and the L2 publisher.

use apex_book::{Level, UpdateKind};
use apex_core::Side::{Buy, Sell};
use apex_sim::{
    BookPublisher, CancelReason, DEFAULT_MAX_QTY_UNITS, Event, InstrumentSpec, Liquidity, MAX_PRICE_UNITS,
    MatchingEngine, NewOrder, RejectReason, StpMode,
    TimeInForce::{Fok, Gtc, Ioc, PostOnly},
};

/// BTCUSDT-like: tick 0.1 (1 unit), lot 0.001 (1 unit), minimum 0.001.
fn engine() -> MatchingEngine {
    MatchingEngine::new(InstrumentSpec::bybit_linear("BTCUSDT", "0.1", "0.001", "0.001").unwrap()).unwrap()
}

fn trades(events: &[Event]) -> Vec<(i64, i64, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Trade { price, qty, maker_order, taker_order, .. } => Some((price, qty, maker_order, taker_order)),
            _ => None,
        })
        .collect()
}

fn rejected(events: &[Event]) -> Option<RejectReason> {
    events.iter().find_map(|e| match *e {
        Event::Rejected { reason, .. } => Some(reason),
        _ => None,
    })
}

fn cancelled(events: &[Event]) -> Vec<(u64, i64, CancelReason)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Event::Cancelled { order_id, leaves_qty, reason, .. } => Some((order_id, leaves_qty, reason)),
            _ => None,
        })
        .collect()
}

/// Submits and returns the order id together with the events of that call only.
fn submit(engine: &mut MatchingEngine, order: NewOrder) -> (u64, Vec<Event>) {
    let mut events = Vec::new();
    let id = engine.submit(0, &order, &mut events);
    (id, events)
}

fn ids(engine: &MatchingEngine, side: apex_core::Side) -> Vec<u64> {
    engine.resting(side).map(|o| o.order_id).collect()
}

#[test]
fn price_then_time_priority_and_partial_fills() {
    let mut e = engine();
    let (a, _) = submit(&mut e, NewOrder::limit(1, Sell, 1001, 5, Gtc));
    let (b, _) = submit(&mut e, NewOrder::limit(2, Sell, 1000, 5, Gtc));
    let (c, _) = submit(&mut e, NewOrder::limit(3, Sell, 1000, 5, Gtc));
    assert_eq!(ids(&e, Sell), vec![b, c, a]);
    let (t, events) = submit(&mut e, NewOrder::limit(9, Buy, 1001, 12, Gtc));
    assert_eq!(trades(&events), vec![(1000, 5, b, t), (1000, 5, c, t), (1001, 2, a, t)]);
    assert_eq!(e.order(a).unwrap().leaves_qty, 3);
    assert_eq!(e.best_ask(), Some(Level::new(1001, 3)));
    assert_eq!(e.best_bid(), None, "the taker was filled completely");
    assert_eq!(e.account(9).position, 12);
    assert_eq!(e.account(1).position + e.account(2).position + e.account(3).position, -12);
}

#[test]
fn gtc_remainder_rests_and_ioc_remainder_is_cancelled() {
    let mut e = engine();
    submit(&mut e, NewOrder::limit(1, Sell, 1000, 3, Gtc));
    let (gtc, _) = submit(&mut e, NewOrder::limit(2, Buy, 1000, 5, Gtc));
    assert_eq!(e.order(gtc).unwrap().leaves_qty, 2);
    assert_eq!(e.order(gtc).unwrap().filled_qty, 3);
    submit(&mut e, NewOrder::limit(1, Sell, 1002, 3, Gtc));
    let (ioc, events) = submit(&mut e, NewOrder::limit(3, Buy, 1002, 5, Ioc));
    assert_eq!(trades(&events).len(), 1);
    assert_eq!(cancelled(&events), vec![(ioc, 2, CancelReason::Unfilled)]);
    assert!(e.order(ioc).is_none());
}

#[test]
fn fok_not_fully_fillable_leaves_no_trace() {
    let mut e = engine();
    submit(&mut e, NewOrder::limit(1, Sell, 1000, 3, Gtc));
    submit(&mut e, NewOrder::limit(1, Sell, 1005, 3, Gtc));
    let before: Vec<_> = e.resting(Sell).copied().collect();
    let (_, events) = submit(&mut e, NewOrder::limit(2, Buy, 1004, 4, Fok));
    assert_eq!(rejected(&events), Some(RejectReason::FokUnfillable));
    assert!(trades(&events).is_empty());
    assert_eq!(e.resting(Sell).copied().collect::<Vec<_>>(), before);
    assert_eq!(e.account(2).position, 0);
    let (_, events) = submit(&mut e, NewOrder::limit(2, Buy, 1005, 6, Fok));
    assert_eq!(trades(&events).iter().map(|t| t.1).sum::<i64>(), 6);
}

#[test]
fn fok_does_not_count_own_liquidity_or_reduce_only_makers_beyond_their_position() {
    let mut e = engine();
    submit(&mut e, NewOrder::limit(2, Sell, 1000, 4, Gtc));
    let (_, events) = submit(&mut e, NewOrder::limit(2, Buy, 1000, 4, Fok).with_stp(StpMode::CancelMaker));
    assert_eq!(rejected(&events), Some(RejectReason::FokUnfillable));
    // Account 1 is long 2, so its reduce-only sell of 5 may give only 2.
    submit(&mut e, NewOrder::limit(1, Buy, 1000, 2, Gtc));
    assert_eq!(e.account(1).position, 2);
    let (ro, _) = submit(&mut e, NewOrder::limit(1, Sell, 999, 5, Gtc).reduce_only());
    assert_eq!(e.order(ro).unwrap().leaves_qty, 2, "trimmed to the position on entry");
    let (_, events) = submit(&mut e, NewOrder::limit(3, Buy, 1000, 5, Fok));
    assert_eq!(rejected(&events), Some(RejectReason::FokUnfillable));
}

#[test]
fn post_only_that_would_take_is_rejected() {
    let mut e = engine();
    submit(&mut e, NewOrder::limit(1, Sell, 1000, 3, Gtc));
    let (_, events) = submit(&mut e, NewOrder::limit(2, Buy, 1000, 1, PostOnly));
    assert_eq!(rejected(&events), Some(RejectReason::PostOnlyWouldTake));
    assert_eq!(e.best_bid(), None);
    let (id, events) = submit(&mut e, NewOrder::limit(2, Buy, 999, 1, PostOnly));
    assert_eq!(rejected(&events), None);
    assert_eq!(e.best_bid(), Some(Level::new(999, 1)));
    // Amending it across the spread is refused and leaves it in place.
    let mut events = Vec::new();
    assert!(!e.amend(1, 2, id, Some(1000), None, &mut events));
    assert_eq!(rejected(&events), Some(RejectReason::PostOnlyWouldTake));
    assert_eq!(e.order(id).unwrap().price, 999);
}

#[test]
fn market_orders_stop_at_the_protective_band() {
    let mut e = engine();
    // Band 5 %: a buy against a best ask of 1000 may pay up to 1050.
    submit(&mut e, NewOrder::limit(1, Sell, 1000, 1, Gtc));
    submit(&mut e, NewOrder::limit(1, Sell, 1050, 1, Gtc));
    submit(&mut e, NewOrder::limit(1, Sell, 1051, 1, Gtc));
    let (id, events) = submit(&mut e, NewOrder::market(2, Buy, 5));
    assert_eq!(trades(&events).iter().map(|t| t.0).collect::<Vec<_>>(), vec![1000, 1050]);
    assert_eq!(cancelled(&events), vec![(id, 3, CancelReason::Unfilled)]);
    assert!(matches!(events[0], Event::Accepted { price: 1050, qty: 5, .. }));
    assert_eq!(e.band_price(Sell, 1000), 950);
    assert_eq!(e.band_price(Buy, 999), 1048, "999 * 1.05 = 1048.95 rounds down to the tick");
    assert_eq!(e.band_price(Sell, 999), 950, "999 * 0.95 = 949.05 rounds up to the tick");
    let (_, events) = submit(&mut e, NewOrder::market(2, Sell, 1));
    assert_eq!(rejected(&events), Some(RejectReason::NoLiquidity));
}

#[test]
fn invalid_price_and_quantity_are_rejected() {
    let mut spec = InstrumentSpec::bybit_linear("ETHUSDT", "0.05", "0.01", "0.05").unwrap();
    spec.maker_fee = 0.0;
    let mut e = MatchingEngine::new(spec).unwrap();
    for (order, reason) in [
        (NewOrder::limit(1, Buy, 101, 5, Gtc), RejectReason::InvalidPrice),
        (NewOrder::limit(1, Buy, 0, 5, Gtc), RejectReason::InvalidPrice),
        (NewOrder::limit(1, Buy, 100, 4, Gtc), RejectReason::InvalidQty),
        (NewOrder::limit(1, Buy, 100, 0, Gtc), RejectReason::InvalidQty),
        (NewOrder::limit(1, Buy, 100, -5, Gtc), RejectReason::InvalidQty),
        (NewOrder::limit(1, Buy, 100, DEFAULT_MAX_QTY_UNITS + 5, Gtc), RejectReason::InvalidQty),
        (NewOrder::limit(1, Buy, MAX_PRICE_UNITS + 5, 5, Gtc), RejectReason::InvalidPrice),
        (NewOrder::market(1, Buy, i64::MAX), RejectReason::InvalidQty),
    ] {
        let (_, events) = submit(&mut e, order);
        assert_eq!(rejected(&events), Some(reason), "{order:?}");
    }
    assert_eq!(e.open_orders(), 0);
}

#[test]
fn amend_priority_rules() {
    let mut e = engine();
    let (a, _) = submit(&mut e, NewOrder::limit(1, Buy, 1000, 5, Gtc));
    let (b, _) = submit(&mut e, NewOrder::limit(2, Buy, 1000, 5, Gtc));
    let (c, _) = submit(&mut e, NewOrder::limit(3, Buy, 1000, 5, Gtc));
    let mut events = Vec::new();
    assert!(e.amend(1, 1, a, None, Some(3), &mut events), "size decrease");
    assert_eq!(ids(&e, Buy), vec![a, b, c]);
    assert!(matches!(events[0], Event::Amended { kept_priority: true, leaves_qty: 3, .. }));
    assert_eq!(e.best_bid(), Some(Level::new(1000, 13)));
    events.clear();
    assert!(e.amend(2, 1, a, None, Some(4), &mut events), "size increase");
    assert_eq!(ids(&e, Buy), vec![b, c, a]);
    assert!(matches!(events[0], Event::Amended { kept_priority: false, .. }));
    events.clear();
    assert!(e.amend(3, 2, b, Some(999), None, &mut events));
    assert!(e.amend(3, 2, b, Some(1000), None, &mut events), "price change and back");
    assert_eq!(ids(&e, Buy), vec![c, a, b]);
    events.clear();
    assert!(!e.amend(4, 2, b, Some(1000), Some(5), &mut events));
    assert_eq!(rejected(&events), Some(RejectReason::NothingToAmend));
    events.clear();
    assert!(!e.amend(4, 1, b, None, Some(1), &mut events), "another account's order");
    assert_eq!(rejected(&events), Some(RejectReason::UnknownOrder));
}

#[test]
fn amend_quantity_is_the_new_total_and_must_exceed_the_filled_part() {
    let mut e = engine();
    let (a, _) = submit(&mut e, NewOrder::limit(1, Buy, 1000, 10, Gtc));
    submit(&mut e, NewOrder::limit(2, Sell, 1000, 4, Gtc));
    let mut events = Vec::new();
    assert!(!e.amend(0, 1, a, None, Some(4), &mut events));
    assert_eq!(rejected(&events), Some(RejectReason::AmendBelowFilled));
    assert!(e.amend(0, 1, a, None, Some(5), &mut events));
    assert_eq!(e.order(a).unwrap().leaves_qty, 1);
}

#[test]
fn amend_across_the_spread_trades_like_a_new_order() {
    let mut e = engine();
    let (ask, _) = submit(&mut e, NewOrder::limit(1, Sell, 1002, 3, Gtc));
    let (bid, _) = submit(&mut e, NewOrder::limit(2, Buy, 1000, 5, Gtc));
    let mut events = Vec::new();
    assert!(e.amend(0, 2, bid, Some(1002), None, &mut events));
    assert_eq!(trades(&events), vec![(1002, 3, ask, bid)]);
    assert_eq!(e.best_bid(), Some(Level::new(1002, 2)));
    assert_eq!(e.order(bid).unwrap().filled_qty, 3);
}

#[test]
fn self_trade_prevention_modes() {
    let setup = || {
        let mut e = engine();
        submit(&mut e, NewOrder::limit(2, Sell, 1000, 2, Gtc));
        submit(&mut e, NewOrder::limit(1, Sell, 1000, 2, Gtc));
        submit(&mut e, NewOrder::limit(3, Sell, 1000, 2, Gtc));
        e
    };
    // Cancel taker (the default): fills against account 2, stops at its own order, which stays.
    let mut e = setup();
    let (t, events) = submit(&mut e, NewOrder::limit(1, Buy, 1000, 6, Gtc));
    assert_eq!(trades(&events), vec![(1000, 2, 1, t)]);
    assert_eq!(cancelled(&events), vec![(t, 4, CancelReason::SelfTrade)]);
    assert_eq!(ids(&e, Sell), vec![2, 3]);
    // Cancel maker: its own order goes, matching goes on.
    let mut e = setup();
    let (t, events) = submit(&mut e, NewOrder::limit(1, Buy, 1000, 6, Gtc).with_stp(StpMode::CancelMaker));
    assert_eq!(trades(&events), vec![(1000, 2, 1, t), (1000, 2, 3, t)]);
    assert_eq!(cancelled(&events), vec![(2, 2, CancelReason::SelfTrade)]);
    assert_eq!(e.order(t).unwrap().leaves_qty, 2, "the rest of the GTC rests");
    // Cancel both.
    let mut e = setup();
    let (t, events) = submit(&mut e, NewOrder::limit(1, Buy, 1000, 6, Gtc).with_stp(StpMode::CancelBoth));
    assert_eq!(trades(&events), vec![(1000, 2, 1, t)]);
    assert_eq!(cancelled(&events), vec![(2, 2, CancelReason::SelfTrade), (t, 4, CancelReason::SelfTrade)]);
    assert_eq!(ids(&e, Sell), vec![3]);
    assert_eq!(e.account(1).position, 2);
}

#[test]
fn reduce_only_is_trimmed_and_never_flips_the_position() {
    let mut e = engine();
    let (_, events) = submit(&mut e, NewOrder::market(1, Sell, 1).reduce_only());
    assert_eq!(rejected(&events), Some(RejectReason::NoLiquidity));
    submit(&mut e, NewOrder::limit(2, Sell, 1000, 10, Gtc));
    let (_, events) = submit(&mut e, NewOrder::limit(1, Buy, 1000, 1, Gtc).reduce_only());
    assert_eq!(rejected(&events), Some(RejectReason::ReduceOnlyWouldIncrease), "flat account");
    submit(&mut e, NewOrder::limit(1, Buy, 1000, 4, Gtc));
    assert_eq!(e.account(1).position, 4);
    // A reduce-only buy while long would increase it.
    let (_, events) = submit(&mut e, NewOrder::limit(1, Buy, 1000, 1, Gtc).reduce_only());
    assert_eq!(rejected(&events), Some(RejectReason::ReduceOnlyWouldIncrease));
    // A reduce-only sell of 9 is trimmed to 4 and takes only that much.
    submit(&mut e, NewOrder::limit(3, Buy, 999, 20, Gtc));
    let (_, events) = submit(&mut e, NewOrder::market(1, Sell, 9).reduce_only());
    assert!(matches!(events[0], Event::Accepted { qty: 4, .. }));
    assert_eq!(trades(&events).iter().map(|t| t.1).sum::<i64>(), 4);
    assert_eq!(e.account(1).position, 0);
}

#[test]
fn resting_reduce_only_is_cut_when_the_position_shrank() {
    let mut e = engine();
    submit(&mut e, NewOrder::limit(2, Sell, 1000, 10, Gtc));
    submit(&mut e, NewOrder::limit(1, Buy, 1000, 6, Gtc));
    let (ro, _) = submit(&mut e, NewOrder::limit(1, Sell, 1010, 6, Gtc).reduce_only());
    // Account 1 sells 4 elsewhere (a plain order), so only 2 remain to reduce.
    submit(&mut e, NewOrder::limit(3, Buy, 998, 4, Gtc));
    submit(&mut e, NewOrder::limit(1, Sell, 998, 4, Gtc));
    assert_eq!(e.account(1).position, 2);
    let (t, events) = submit(&mut e, NewOrder::limit(4, Buy, 1010, 8, Gtc));
    assert_eq!(trades(&events), vec![(1000, 4, 1, t), (1010, 2, ro, t)]);
    assert_eq!(cancelled(&events), vec![(ro, 4, CancelReason::ReduceOnly)]);
    assert_eq!(e.account(1).position, 0);
    assert_eq!(e.best_bid(), Some(Level::new(1010, 2)), "the taker's rest, once the reduce-only order is gone");
}

#[test]
fn fees_and_cash_are_exact() {
    let mut e = engine();
    submit(&mut e, NewOrder::limit(1, Sell, 500_000, 250, Gtc));
    let (_, events) = submit(&mut e, NewOrder::market(2, Buy, 250));
    // Notional 50000.0 × 0.25 = 12500 USDT; maker 0.02 % = 2.5, taker 0.055 % = 6.875.
    let spec = e.spec().clone();
    let fees: Vec<(Liquidity, f64)> = events
        .iter()
        .filter_map(|ev| match *ev {
            Event::Fill { liquidity, fee, .. } => Some((liquidity, spec.cash_to_f64(fee))),
            _ => None,
        })
        .collect();
    assert_eq!(fees, vec![(Liquidity::Maker, 2.5), (Liquidity::Taker, 6.875)]);
    assert_eq!(spec.cash_to_f64(e.account(1).cash), 12_500.0 - 2.5);
    assert_eq!(spec.cash_to_f64(e.account(2).cash), -12_500.0 - 6.875);
    assert_eq!(e.account(1).cash + e.account(2).cash + e.account(1).fees + e.account(2).fees, 0);
}

#[test]
fn cancel_of_unknown_or_foreign_order_is_rejected() {
    let mut e = engine();
    let (a, _) = submit(&mut e, NewOrder::limit(1, Buy, 1000, 5, Gtc));
    let mut events = Vec::new();
    assert!(!e.cancel(0, 2, a, &mut events));
    assert!(!e.cancel(0, 1, 99, &mut events));
    assert!(e.cancel(0, 1, a, &mut events));
    assert!(!e.cancel(0, 1, a, &mut events), "twice");
    assert_eq!(e.best_bid(), None);
    assert_eq!(e.open_orders(), 0);
}

#[test]
fn publisher_sends_snapshot_then_contiguous_deltas() {
    let mut e = engine();
    let mut publisher = BookPublisher::new(2).unwrap();
    submit(&mut e, NewOrder::limit(1, Buy, 1000, 5, Gtc));
    submit(&mut e, NewOrder::limit(1, Buy, 999, 5, Gtc));
    submit(&mut e, NewOrder::limit(1, Buy, 998, 5, Gtc));
    let first = publisher.publish(&e, 10).unwrap();
    assert_eq!((first.kind, first.update_id), (UpdateKind::Snapshot, 1));
    assert_eq!(first.bids, vec![Level::new(1000, 5), Level::new(999, 5)]);
    assert!(publisher.publish(&e, 20).is_none(), "nothing changed");
    submit(&mut e, NewOrder::market(2, Sell, 5));
    let delta = publisher.publish(&e, 30).unwrap();
    assert_eq!((delta.kind, delta.update_id), (UpdateKind::Delta, 2));
    assert_eq!(delta.bids, vec![Level::new(1000, 0), Level::new(998, 5)], "the level entering the top 2 is sent");
    assert!(delta.asks.is_empty());
    assert!(BookPublisher::new(0).is_err());
}
