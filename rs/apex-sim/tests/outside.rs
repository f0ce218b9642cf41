//! Outside accounts in the open-ended market: arrival-time execution, per-account event streams, tags, reduce-only,
//! position take-profit/stop-loss, and the public trade and L2 streams.

use apex_book::{L2Book, UpdateKind};
use apex_core::{CancelReason, NewOrder, RejectReason, Side, TimeInForce};
use apex_sim::batch::preset;
use apex_sim::{
    AccountEvent, AccountEventKind, Dsg, ExternalRequest, Market, SimConfig, SimError, StopKind, StopSpec, Stops,
};
use proptest::prelude::*;

const MS: i64 = 1_000;
const S: i64 = 1_000_000;

fn market(seed: u64) -> Market {
    let (spec, start) = preset("BTCUSDT").unwrap();
    let mut config = SimConfig::new(spec, start, seed);
    config.record_market = false;
    let mut market = Market::open_ended(&Dsg::default(), &config).unwrap();
    market.start(None);
    market.advance_until(30 * S, None);
    market
}

fn submit(tag: u64, order: NewOrder) -> ExternalRequest {
    ExternalRequest::Submit { tag, order, attach: Stops::default() }
}

fn events_of(market: &mut Market, tag: u64) -> Vec<AccountEvent> {
    market.drain_account_events().filter(|e| e.tag == tag).collect()
}

#[test]
fn an_order_takes_effect_at_its_arrival_time() {
    let mut m = market(1);
    let account = m.add_account(7 * MS);
    let bid = m.engine().best_bid().unwrap().price;
    let far = bid - 500 * m.engine().spec().tick;
    let sent = m.now_us() + 123;
    let arrival = m.send_request(sent, account, submit(1, NewOrder::limit(0, Side::Buy, far, 5, TimeInForce::Gtc)));
    assert_eq!(arrival.unwrap(), sent + 7 * MS);
    m.advance_until(sent + 7 * MS - 1, None);
    assert!(m.drain_account_events().next().is_none(), "nothing before the arrival");
    m.advance_until(sent + 7 * MS, None);
    let events: Vec<_> = m.drain_account_events().collect();
    assert!(
        matches!(events.as_slice(), [AccountEvent { ts_us, tag: 1, kind: AccountEventKind::Accepted { price, qty: 5, .. }, .. }]
            if *ts_us == sent + 7 * MS && *price == far),
        "{events:?}"
    );
    let order_id = m.order_id_of(account, 1).expect("resting");
    assert_eq!(m.engine().order(order_id).unwrap().account, account);
    // A request sent in the past (the caller's clock behind the market's) takes effect now.
    let now = m.now_us();
    assert_eq!(m.send_request(now - S, account, ExternalRequest::Cancel { tag: 1 }).unwrap(), now);
    m.advance_until(now, None);
    let events = events_of(&mut m, 1);
    assert!(matches!(events[0].kind, AccountEventKind::Cancelled { leaves_qty: 5, reason: CancelReason::User }));
    assert_eq!(m.order_id_of(account, 1), None);
    assert_eq!(
        m.send_request(now, 999_999, ExternalRequest::Cancel { tag: 1 }),
        Err(SimError::UnknownAccount(999_999))
    );
}

#[test]
fn the_faster_account_gets_the_liquidity() {
    let mut m = market(2);
    let slow = m.add_account(5 * MS);
    let fast = m.add_account(MS);
    let ask = m.engine().best_ask().unwrap();
    let now = m.now_us();
    // Both want the whole best ask; the slow one sent first but arrives after the fast one.
    m.send_request(now, slow, submit(1, NewOrder::limit(0, Side::Buy, ask.price, ask.qty, TimeInForce::Ioc))).unwrap();
    m.send_request(now + MS, fast, submit(1, NewOrder::limit(0, Side::Buy, ask.price, ask.qty, TimeInForce::Ioc)))
        .unwrap();
    m.advance_until(now + 10 * MS, None);
    let events: Vec<_> = m.drain_account_events().collect();
    let first_fill = events.iter().find(|e| matches!(e.kind, AccountEventKind::Fill { .. })).unwrap();
    assert_eq!((first_fill.account, first_fill.ts_us), (fast, now + 2 * MS));
    assert_eq!(m.position(fast), m.engine().account(fast).position);
    assert_eq!(m.position(slow), m.engine().account(slow).position);
    assert!(m.position(fast) > 0);
}

#[test]
fn cancel_and_amend_by_tag_and_unknown_tags() {
    let mut m = market(3);
    let a = m.add_account(MS);
    let tick = m.engine().spec().tick;
    let far = m.engine().best_bid().unwrap().price - 300 * tick;
    let now = m.now_us();
    m.send_request(now, a, submit(10, NewOrder::limit(0, Side::Buy, far, 4, TimeInForce::Gtc))).unwrap();
    m.send_request(now, a, ExternalRequest::Amend { tag: 10, price: Some(far - tick), total_qty: Some(6) }).unwrap();
    m.send_request(now, a, ExternalRequest::Cancel { tag: 11 }).unwrap();
    m.advance_until(now + MS, None);
    let kinds: Vec<_> = m.drain_account_events().map(|e| (e.tag, e.kind)).collect();
    assert!(matches!(kinds[0], (10, AccountEventKind::Accepted { qty: 4, .. })));
    assert_eq!(kinds[1], (10, AccountEventKind::Amended { price: far - tick, leaves_qty: 6 }));
    assert_eq!(kinds[2], (11, AccountEventKind::Rejected { reason: RejectReason::UnknownOrder }));
    let id = m.order_id_of(a, 10).unwrap();
    assert_eq!((m.engine().order(id).unwrap().price, m.engine().order(id).unwrap().leaves_qty), (far - tick, 6));
}

#[test]
fn reduce_only_never_increases_the_position() {
    let mut m = market(4);
    let a = m.add_account(MS);
    let now = m.now_us();
    m.send_request(now, a, submit(1, NewOrder::market(0, Side::Sell, 3).reduce_only())).unwrap();
    m.send_request(now, a, submit(2, NewOrder::market(0, Side::Buy, 3))).unwrap();
    m.send_request(now, a, submit(3, NewOrder::market(0, Side::Sell, 10).reduce_only())).unwrap();
    m.advance_until(now + MS, None);
    let events: Vec<_> = m.drain_account_events().collect();
    assert_eq!(events[0].kind, AccountEventKind::Rejected { reason: RejectReason::ReduceOnlyWouldIncrease });
    let sold: i64 = events
        .iter()
        .filter(|e| e.tag == 3)
        .filter_map(|e| match e.kind {
            AccountEventKind::Fill { qty, .. } => Some(qty),
            _ => None,
        })
        .sum();
    assert_eq!(sold, 3, "trimmed to the position");
    assert_eq!(m.position(a), 0);
}

#[test]
fn a_stop_loss_closes_the_position_when_the_last_price_crosses_it() {
    let mut m = market(5);
    let a = m.add_account(MS);
    let tick = m.engine().spec().tick;
    let now = m.now_us();
    let ask = m.engine().best_ask().unwrap().price;
    // Long 5 lots with a stop loss 3 ticks under the entry and a take profit far above.
    let attach = Stops {
        take_profit: Some(StopSpec { tag: 100, trigger_price: ask + 100_000 * tick }),
        stop_loss: Some(StopSpec { tag: 101, trigger_price: ask - 3 * tick }),
    };
    m.send_request(now, a, ExternalRequest::Submit { tag: 1, order: NewOrder::market(0, Side::Buy, 5), attach })
        .unwrap();
    m.advance_until(now + MS, None);
    assert_eq!(m.position(a), 5);
    assert_eq!(m.stops(a), attach);
    let mut seen = Vec::new();
    let mut t = now + MS;
    while m.position(a) != 0 && t < now + 3_600 * S {
        t += 100 * MS;
        m.advance_until(t, None);
        seen.extend(m.drain_account_events());
    }
    assert_eq!(m.position(a), 0, "the stop closed the position within an hour");
    let trigger = seen.iter().position(|e| matches!(e.kind, AccountEventKind::StopTriggered { .. })).unwrap();
    let AccountEventKind::StopTriggered { kind, trigger_price, last_price } = seen[trigger].kind else { panic!() };
    assert_eq!((kind, seen[trigger].tag, trigger_price), (StopKind::StopLoss, 101, ask - 3 * tick));
    assert!(last_price <= trigger_price);
    assert!(
        seen.iter().any(|e| e.tag == 100 && e.kind == AccountEventKind::StopCancelled { kind: StopKind::TakeProfit })
    );
    let closing: i64 = seen[trigger..]
        .iter()
        .filter(|e| e.tag == 101)
        .filter_map(|e| match e.kind {
            AccountEventKind::Fill { side: Side::Sell, qty, .. } => Some(qty),
            _ => None,
        })
        .sum();
    assert_eq!(closing, 5);
    assert_eq!(m.stops(a), Stops::default());
}

#[test]
fn stops_need_a_position_and_go_when_it_closes() {
    let mut m = market(6);
    let a = m.add_account(MS);
    let tick = m.engine().spec().tick;
    let now = m.now_us();
    let sl = Stops { take_profit: None, stop_loss: Some(StopSpec { tag: 7, trigger_price: tick }) };
    m.send_request(now, a, ExternalRequest::SetStops(sl)).unwrap();
    m.advance_until(now + MS, None);
    assert_eq!(events_of(&mut m, 7)[0].kind, AccountEventKind::Rejected { reason: RejectReason::NoPosition });
    let now = m.now_us();
    m.send_request(now, a, submit(1, NewOrder::market(0, Side::Sell, 2))).unwrap();
    m.send_request(
        now,
        a,
        ExternalRequest::SetStops(Stops {
            take_profit: None,
            stop_loss: Some(StopSpec { tag: 8, trigger_price: 1_000_000_000 }),
        }),
    )
    .unwrap();
    m.send_request(now, a, submit(2, NewOrder::market(0, Side::Buy, 2))).unwrap();
    m.advance_until(now + MS, None);
    let events: Vec<_> = m.drain_account_events().filter(|e| e.tag == 8).map(|e| e.kind).collect();
    assert_eq!(
        events,
        vec![
            AccountEventKind::StopSet { kind: StopKind::StopLoss, trigger_price: 1_000_000_000 },
            AccountEventKind::StopCancelled { kind: StopKind::StopLoss }
        ]
    );
}

#[test]
fn l2_streams_rebuild_the_engine_book_and_depth_one_repeats() {
    let mut m = market(7);
    m.stream_public_trades();
    let s50 = m.add_book_stream(50, 20 * MS).unwrap();
    let s1 = m.add_book_stream(1, 10 * MS).unwrap();
    let spec = m.engine().spec().clone();
    let mut book = L2Book::new(spec.price_scale, spec.qty_scale);
    let (mut last_u1, mut last_ts1) = (0, 0);
    let start = m.now_us();
    let mut trades = 0;
    for step in 1..=3_000 {
        m.advance_until(start + step * 20 * MS, None);
        trades += m.drain_public_trades().count();
        for message in m.drain_book_messages().collect::<Vec<_>>() {
            let u = &message.update;
            assert!(message.book_ts_us <= u.ts_us);
            if message.stream == s50 {
                book.apply(u.kind, u.update_id, u.seq as i64, u.ts_us, &u.bids, &u.asks).unwrap();
            } else {
                assert_eq!((message.stream, u.kind), (s1, UpdateKind::Snapshot));
                // An unchanged top is re-sent with the same `u` only after 3 s.
                assert!(u.update_id != last_u1 || u.ts_us - last_ts1 >= 3 * S);
                (last_u1, last_ts1) = (u.update_id, u.ts_us);
            }
        }
        assert_eq!(book.top_n(Side::Buy, 50), m.engine().top_n(Side::Buy, 50));
        assert_eq!(book.top_n(Side::Sell, 50), m.engine().top_n(Side::Sell, 50));
    }
    assert!(trades > 100, "public trades streamed: {trades}");
    m.restart_book_streams();
    m.advance_until(m.now_us() + 20 * MS, None);
    // Each stream starts over with a `u`=1 snapshot; a depth-1 stream may already have sent its next one (u=2) within
    // the 20 ms when the top moved.
    let after: Vec<_> = m.drain_book_messages().collect();
    for stream in [s50, s1] {
        let first = after.iter().find(|b| b.stream == stream).expect("every stream sends after a restart");
        assert_eq!((first.update.kind, first.update.update_id), (UpdateKind::Snapshot, 1));
    }
}

/// One request of a random session: (account 0/1, action, size, price offset in ticks).
fn session_step() -> impl Strategy<Value = (usize, u8, i64, i64)> {
    (0..2usize, 0..5u8, 1..20i64, -20..20i64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Against a simple reference: the tracked position is the sum of fills and equals the engine's, every order's
    /// events end with at most one terminal event and nothing after it, and a replay gives the same stream.
    #[test]
    fn random_sessions_are_consistent_and_reproducible(steps in prop::collection::vec(session_step(), 1..60), seed in 0u64..4) {
        let run = || {
            let mut m = market(seed);
            let accounts = [m.add_account(MS), m.add_account(3 * MS)];
            let tick = m.engine().spec().tick;
            let mut all = Vec::new();
            for (i, &(who, action, qty, offset)) in steps.iter().enumerate() {
                let account = accounts[who];
                let mid = (m.engine().best_bid().map_or(0, |l| l.price) + m.engine().best_ask().map_or(0, |l| l.price)) / 2;
                let price = (mid / tick + offset) * tick;
                let tag = i as u64 + 1;
                let request = match action {
                    0 => submit(tag, NewOrder::limit(0, Side::Buy, price, qty, TimeInForce::Gtc)),
                    1 => submit(tag, NewOrder::limit(0, Side::Sell, price, qty, TimeInForce::Gtc)),
                    2 => submit(tag, NewOrder::market(0, if offset > 0 { Side::Buy } else { Side::Sell }, qty)),
                    3 => ExternalRequest::Cancel { tag: (tag / 2).max(1) },
                    _ => ExternalRequest::Amend { tag: (tag / 2).max(1), price: Some(price), total_qty: None },
                };
                let now = m.now_us();
                m.send_request(now, account, request).unwrap();
                m.advance_until(now + 2 * MS, None);
                all.extend(m.drain_account_events());
            }
            (all, accounts.map(|a| (a, m.position(a), m.engine().account(a).position)))
        };
        let (events, positions) = run();
        for (account, tracked, engine) in positions {
            prop_assert_eq!(tracked, engine);
            let filled: i64 = events.iter().filter(|e| e.account == account).filter_map(|e| match e.kind {
                AccountEventKind::Fill { side, qty, .. } => Some(if side == Side::Buy { qty } else { -qty }),
                _ => None,
            }).sum();
            prop_assert_eq!(filled, tracked, "the position is the sum of the fills");
        }
        let mut done = std::collections::BTreeSet::new();
        for e in &events {
            let key = (e.account, e.tag);
            let terminal = matches!(e.kind, AccountEventKind::Cancelled { .. } | AccountEventKind::Fill { leaves_qty: 0, .. });
            let rejection = matches!(e.kind, AccountEventKind::Rejected { .. });
            prop_assert!(!done.contains(&key) || rejection, "an event after the order ended: {e:?}");
            if terminal {
                done.insert(key);
            }
        }
        prop_assert_eq!(run().0, events);
    }
}
