//! The perpetual exchange over the open-ended markets: order lifecycle by order id and orderLinkId, margin checks,
//! position and wallet accounting against a cash-flow reference, take-profit/stop-loss as conditional orders.

mod client;

use apex_core::{OrderStatus, RejectReason, Side, TimeInForce};
use apex_sim::batch::preset;
use apex_sim::exchange::{AccountUpdate, Exchange, ExchangeError, OrderRef, OrderType, WALLET_DECIMALS};
use apex_sim::{Dsg, SimConfig, StopKind};
use client::{MS, S, order, usdt};
use proptest::prelude::*;

fn exchange(seed: u64) -> Exchange {
    let configs: Vec<SimConfig> = ["BTCUSDT", "SOLUSDT"]
        .iter()
        .enumerate()
        .map(|(i, symbol)| {
            let (spec, start) = preset(symbol).unwrap();
            let mut config = SimConfig::new(spec, start, seed + i as u64);
            config.record_market = false;
            config
        })
        .collect();
    let mut ex = Exchange::new(&Dsg::default(), &configs).unwrap();
    ex.advance_until(20 * S);
    ex
}

#[test]
fn a_limit_order_rests_amends_and_cancels_by_link_id() {
    let mut ex = exchange(1);
    let a = ex.add_account(usdt(10_000), MS);
    let tick = ex.spec(0).tick;
    let far = ex.market(0).engine().best_bid().unwrap().price - 200 * tick;
    let mut request = order(0, Side::Buy, OrderType::Limit, 5, Some(far));
    request.order_link_id = "mine-1".into();
    let now = ex.now_us();
    let ack = ex.create_order(now, a, request.clone()).unwrap();
    assert_eq!(ack.order_link_id, "mine-1");
    assert_eq!(ex.create_order(now, a, request.clone()), Err(ExchangeError::DuplicateOrderLinkId("mine-1".into())));
    ex.advance_until(now + 2 * MS);
    let updates: Vec<_> = ex.drain_updates().collect();
    assert!(
        matches!(&updates[..], [AccountUpdate::Order(_, o)] if o.status == OrderStatus::New && o.order_id == ack.order_id)
    );
    let now = ex.now_us();
    ex.amend_order(now, a, 0, OrderRef::link("mine-1"), Some(7), Some(far - tick)).unwrap();
    ex.advance_until(now + 2 * MS);
    let open = ex.open_orders(a);
    assert_eq!((open[0].qty, open[0].price, open[0].leaves_qty), (7, Some(far - tick), 7));
    ex.drain_updates().for_each(drop);
    let now = ex.now_us();
    ex.cancel_order(now, a, 0, OrderRef::id(&ack.order_id)).unwrap();
    assert_eq!(ex.cancel_order(now, a, 0, OrderRef::id("nope")), Err(ExchangeError::OrderNotFound));
    assert_eq!(
        ex.cancel_order(now, a, 1, OrderRef::id(&ack.order_id)),
        Err(ExchangeError::OrderNotFound),
        "wrong symbol"
    );
    ex.advance_until(now + 2 * MS);
    assert!(ex.open_orders(a).is_empty());
    assert_eq!(ex.order_history(a)[0].status, OrderStatus::Cancelled);
    // The link id stays taken while the order is in the history: a retried create is refused, never placed twice.
    assert_eq!(ex.create_order(now, a, request), Err(ExchangeError::DuplicateOrderLinkId("mine-1".into())));
}

#[test]
fn an_order_whose_cancel_is_on_its_way_is_not_cancelled_or_amended_again() {
    let mut ex = exchange(2);
    let a = ex.add_account(usdt(10_000), 5 * MS);
    let tick = ex.spec(0).tick;
    let far = ex.market(0).engine().best_bid().unwrap().price - 200 * tick;
    let ack = ex.create_order(ex.now_us(), a, order(0, Side::Buy, OrderType::Limit, 5, Some(far))).unwrap();
    ex.advance_until(ex.now_us() + 10 * MS);
    ex.drain_updates().for_each(drop);
    let now = ex.now_us();
    ex.cancel_order(now, a, 0, OrderRef::id(&ack.order_id)).unwrap();
    // Before the cancel reaches the market (5 ms of latency), the order still rests there, but it is as good as gone.
    assert_eq!(ex.open_orders(a).len(), 1);
    for _ in 0..3 {
        assert_eq!(ex.cancel_order(now, a, 0, OrderRef::id(&ack.order_id)), Err(ExchangeError::OrderNotFound));
    }
    assert_eq!(
        ex.amend_order(now, a, 0, OrderRef::id(&ack.order_id), Some(7), None),
        Err(ExchangeError::OrderNotFound)
    );
    assert!(ex.cancel_all(now, a, Some(0)).is_empty());
    ex.advance_until(now + 10 * MS);
    let cancelled: Vec<_> = ex
        .drain_updates()
        .filter(|u| matches!(u, AccountUpdate::Order(_, o) if o.status == OrderStatus::Cancelled))
        .collect();
    assert_eq!(cancelled.len(), 1, "one cancel reached the market");
    assert!(ex.open_orders(a).is_empty());
}

#[test]
fn orders_beyond_the_available_balance_are_refused() {
    let mut ex = exchange(2);
    let a = ex.add_account(usdt(100), MS);
    // 1 BTC at ~108k with 10x leverage needs ~10.8k of margin.
    let now = ex.now_us();
    assert_eq!(
        ex.create_order(now, a, order(0, Side::Buy, OrderType::Market, 1_000, None)),
        Err(ExchangeError::InsufficientBalance)
    );
    ex.create_order(now, a, order(0, Side::Buy, OrderType::Market, 5, None)).unwrap();
    ex.advance_until(now + 2 * MS);
    let wallet = ex.wallet_snapshot(a);
    assert!(wallet.position_im > 0 && wallet.available < wallet.equity);
    // A reduce-only order needs no margin.
    let mut close = order(0, Side::Sell, OrderType::Market, 5, None);
    close.reduce_only = true;
    ex.create_order(ex.now_us(), a, close).unwrap();
    ex.set_leverage(a, 0, 2_000).unwrap();
    assert_eq!(ex.set_leverage(a, 0, 2_000), Err(ExchangeError::LeverageNotModified));
}

#[test]
fn post_only_crossing_is_cancelled_with_its_reason() {
    let mut ex = exchange(3);
    let a = ex.add_account(usdt(10_000), MS);
    let ask = ex.market(0).engine().best_ask().unwrap().price;
    let mut request = order(0, Side::Buy, OrderType::Limit, 1, Some(ask + 50 * ex.spec(0).tick));
    request.tif = TimeInForce::PostOnly;
    let now = ex.now_us();
    ex.create_order(now, a, request).unwrap();
    ex.advance_until(now + 2 * MS);
    let closed = ex.order_history(a)[0].clone();
    assert_eq!((closed.status, closed.reject_reason), (OrderStatus::Cancelled, Some(RejectReason::PostOnlyWouldTake)));
}

#[test]
fn take_profit_and_stop_loss_are_conditional_orders_of_the_position() {
    let mut ex = exchange(4);
    let a = ex.add_account(usdt(10_000), MS);
    let tick = ex.spec(0).tick;
    let last = ex.last_price(0);
    let mut request = order(0, Side::Buy, OrderType::Market, 10, None);
    request.take_profit = Some(last + 2_000 * tick);
    request.stop_loss = Some(last - 4 * tick);
    let now = ex.now_us();
    let mut wrong = request.clone();
    wrong.take_profit = Some(last - tick);
    assert!(matches!(ex.create_order(now, a, wrong), Err(ExchangeError::Param(_))));
    ex.create_order(now, a, request).unwrap();
    ex.advance_until(now + 2 * MS);
    let stops: Vec<_> = ex.open_orders(a).into_iter().cloned().collect();
    assert_eq!(stops.len(), 2);
    assert!(stops.iter().all(|o| o.status == OrderStatus::Untriggered && o.reduce_only && o.side == Side::Sell));
    let position = ex.position(a, 0);
    assert_eq!(
        (position.size, position.take_profit, position.stop_loss),
        (10, Some(last + 2_000 * tick), Some(last - 4 * tick))
    );
    // Wait for the stop loss (a few ticks away) to fire and close the position.
    let mut t = ex.now_us();
    while ex.position(a, 0).size != 0 && t < 3_600 * S {
        t += 100 * MS;
        ex.advance_until(t);
    }
    assert_eq!(ex.position(a, 0).size, 0);
    let history = ex.order_history(a);
    let sl = history.iter().find(|o| o.stop == Some(StopKind::StopLoss)).unwrap();
    let tp = history.iter().find(|o| o.stop == Some(StopKind::TakeProfit)).unwrap();
    assert_eq!((sl.status, sl.cum_exec_qty), (OrderStatus::Filled, 10));
    assert_eq!(tp.status, OrderStatus::Deactivated);
    assert!(ex.open_orders(a).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    /// Against the cash-flow reference: after any sequence of market orders that ends flat, the wallet moved by
    /// exactly (sell notional - buy notional) - fees, and the wallet balance always equals the deposit plus the
    /// realised PnL.
    #[test]
    fn the_wallet_follows_the_cash_flows(sizes in prop::collection::vec(-30i64..30, 1..12), seed in 0u64..3) {
        let mut ex = exchange(seed);
        let a = ex.add_account(usdt(1_000_000), MS);
        let mut position = 0;
        for &qty in sizes.iter().filter(|&&q| q != 0).chain(std::iter::once(&0)) {
            let qty = if qty == 0 { -position } else { qty };
            if qty == 0 {
                continue;
            }
            let side = if qty > 0 { Side::Buy } else { Side::Sell };
            let now = ex.now_us();
            ex.create_order(now, a, order(0, side, OrderType::Market, qty.abs(), None)).unwrap();
            ex.advance_until(now + 2 * MS);
            position = ex.position(a, 0).size;
        }
        prop_assume!(position == 0);
        let value_to_wallet = 10_i128.pow(WALLET_DECIMALS - ex.spec(0).price_scale.decimals() - ex.spec(0).qty_scale.decimals());
        let (mut flow, mut fees) = (0_i128, 0_i128);
        for e in ex.executions(a) {
            let notional = i128::from(e.price) * i128::from(e.qty) * value_to_wallet;
            flow += if e.side == Side::Sell { notional } else { -notional };
            fees += e.fee;
        }
        let wallet = ex.wallet_snapshot(a);
        prop_assert_eq!(wallet.wallet_balance - usdt(1_000_000), flow - fees);
        prop_assert_eq!(wallet.wallet_balance - usdt(1_000_000), wallet.cum_realised_pnl);
        prop_assert_eq!(wallet.unrealised_pnl, 0);
    }
}
