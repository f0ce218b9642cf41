//! What the exchange refuses of its API clients before an order reaches the market: quantities and prices beyond
//! the limits the venue advertises (`maxOrderQty`, `maxMktOrderQty`, `maxPrice`), limit prices outside Bybit's order
//! price limits around the mark, margin the order cannot cover, and all of it again for an amend, which must never
//! reach what a create is refused.

mod client;

use apex_core::{OrderStatus, Side};
use apex_sim::batch::preset;
use apex_sim::exchange::{Exchange, ExchangeError, OrderRef, OrderRequest, OrderType, WALLET_DECIMALS};
use apex_sim::{Dsg, SimConfig};
use client::{MS, S, order, usdt};

/// One BTC in quantity units (lot 0.001).
const BTC: i64 = 1_000;

/// One BTCUSDT market (price units of 0.1 USDT, quantity units of 0.001 BTC) after 20 simulated seconds.
fn exchange(seed: u64) -> Exchange {
    let (spec, start) = preset("BTCUSDT").unwrap();
    let mut config = SimConfig::new(spec, start, seed);
    config.record_market = false;
    let mut ex = Exchange::new(&Dsg::default(), &[config]).unwrap();
    ex.advance_until(20 * S);
    ex
}

fn limit(side: Side, qty: i64, price: i64) -> OrderRequest {
    order(0, side, OrderType::Limit, qty, Some(price))
}

fn market(side: Side, qty: i64) -> OrderRequest {
    order(0, side, OrderType::Market, qty, None)
}

/// The exchange's mark price (the book mid on the tick grid), as a position shows it.
fn mark(ex: &Exchange, account: u32) -> i64 {
    ex.position(account, 0).mark_price
}

/// The order price limits of the default `priceLimitRatioX` (5 %) around `mark`, rounded inwards to the tick:
/// (highest buy, lowest sell).
fn limits(ex: &Exchange, mark: i64) -> (i64, i64) {
    let tick = ex.spec(0).tick;
    let highest_buy = mark * 105 / 100 / tick * tick;
    let lowest_sell = (mark * 95 + 100 * tick - 1) / (100 * tick) * tick;
    (highest_buy, lowest_sell)
}

fn price_out_of_range(result: Result<impl std::fmt::Debug, ExchangeError>, names: &str) {
    match result {
        Err(ExchangeError::PriceOutOfRange(message)) => assert!(message.contains(names), "{message}"),
        other => panic!("expected PriceOutOfRange naming {names}, got {other:?}"),
    }
}

fn param(result: Result<impl std::fmt::Debug, ExchangeError>, names: &str) {
    match result {
        Err(ExchangeError::Param(message)) => assert!(message.contains(names), "{message}"),
        other => panic!("expected Param naming {names}, got {other:?}"),
    }
}

#[test]
fn creates_beyond_the_advertised_limits_are_refused_naming_the_limit() {
    let mut ex = exchange(11);
    let whale = ex.add_account(usdt(1_000_000_000_000), MS);
    let now = ex.now_us();
    let bid = ex.market(0).engine().best_bid().unwrap().price;
    let tick = ex.spec(0).tick;
    let far_bid = bid * 9 / 10 / tick * tick;

    param(ex.create_order(now, whale, limit(Side::Buy, 5_000 * BTC, far_bid)), "maxOrderQty 1000.000");
    param(ex.create_order(now, whale, market(Side::Buy, 500 * BTC)), "maxMktOrderQty 100.000");
    // maxPrice is 1e11 USDT: a sell at 1e13 is refused, one at exactly 1e11 rests (sells above the mark are not
    // limited by the price band).
    price_out_of_range(ex.create_order(now, whale, limit(Side::Sell, 1, 100_000_000_000_000)), "maxPrice");
    // The limits themselves are accepted.
    ex.create_order(now, whale, limit(Side::Buy, 1_000 * BTC, far_bid)).unwrap();
    ex.create_order(now, whale, limit(Side::Sell, 1, 1_000_000_000_000)).unwrap();
    ex.advance_until(now + 2 * MS);
    let open = ex.open_orders(whale);
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|o| o.status == OrderStatus::New));
    assert!(ex.order_history(whale).is_empty(), "nothing was rejected by the market");
}

#[test]
fn creates_outside_the_price_limits_are_refused_and_those_inside_still_trade() {
    let mut ex = exchange(12);
    let bob = ex.add_account(usdt(100), MS);
    let tick = ex.spec(0).tick;
    let now = ex.now_us();
    // The sweep's order: $100 selling 20 BTC at 0.1 would sweep the bid side and leave bob short 2 million.
    price_out_of_range(ex.create_order(now, bob, limit(Side::Sell, 20 * BTC, 1)), "lowest sell price");
    let (highest_buy, lowest_sell) = limits(&ex, mark(&ex, bob));
    price_out_of_range(ex.create_order(now, bob, limit(Side::Sell, 1, lowest_sell - tick)), "lowest sell price");
    price_out_of_range(ex.create_order(now, bob, limit(Side::Buy, 1, highest_buy + tick)), "highest buy price");
    assert!(ex.open_orders(bob).is_empty());

    // At the limits, orders are accepted and trade at the touch like any marketable order.
    ex.create_order(now, bob, limit(Side::Sell, 1, lowest_sell)).unwrap();
    ex.advance_until(now + 2 * MS);
    assert_eq!(ex.position(bob, 0).size, -1);
    let sold = ex.executions(bob)[0].price;
    assert!(sold >= lowest_sell, "sold at {sold}, limit {lowest_sell}");

    let now = ex.now_us();
    let (highest_buy, _) = limits(&ex, mark(&ex, bob));
    ex.create_order(now, bob, limit(Side::Buy, 1, highest_buy)).unwrap();
    ex.advance_until(now + 2 * MS);
    assert_eq!(ex.position(bob, 0).size, 0);

    // The band limits only the aggressive side: a buy far under the market rests.
    let now = ex.now_us();
    let bid = ex.market(0).engine().best_bid().unwrap().price;
    ex.create_order(now, bob, limit(Side::Buy, 1, bid / 2 / tick * tick)).unwrap();
    ex.advance_until(now + 2 * MS);
    assert_eq!(ex.open_orders(bob)[0].status, OrderStatus::New);
}

#[test]
fn a_sell_under_the_mark_posts_margin_at_the_mark_not_at_its_own_price() {
    let mut ex = exchange(13);
    let probe = ex.add_account(usdt(1), MS);
    let mark = mark(&ex, probe);
    let (_, lowest_sell) = limits(&ex, mark);
    // 0.01 BTC at 10x: a balance between the margin at the order's price and the margin at the mark.
    let qty = 10;
    let value_to_wallet = 10_i128.pow(WALLET_DECIMALS - 1 - 3);
    let margin_at = |price: i64| i128::from(qty) * i128::from(price) * value_to_wallet / 10;
    let balance = (margin_at(lowest_sell) + margin_at(mark)) / 2;
    assert!(margin_at(lowest_sell) < balance && balance < margin_at(mark));
    let seller = ex.add_account(balance, MS);
    let now = ex.now_us();
    assert_eq!(
        ex.create_order(now, seller, limit(Side::Sell, qty, lowest_sell)),
        Err(ExchangeError::InsufficientBalance)
    );
    // The same quantity priced above the mark needs its own (higher) price's margin, so it is refused too, and a
    // quantity the balance covers at the mark goes through.
    assert_eq!(
        ex.create_order(now, seller, limit(Side::Sell, qty, mark + 100 * ex.spec(0).tick)),
        Err(ExchangeError::InsufficientBalance)
    );
    ex.create_order(now, seller, limit(Side::Sell, qty - 1, lowest_sell)).unwrap();
}

#[test]
fn an_amend_is_checked_like_a_create_and_a_refused_one_leaves_the_order_as_it_was() {
    let mut ex = exchange(14);
    let alice = ex.add_account(usdt(10_000), MS);
    let tick = ex.spec(0).tick;
    let bid = ex.market(0).engine().best_bid().unwrap().price;
    let price = bid * 9 / 10 / tick * tick;
    let now = ex.now_us();
    let ack = ex.create_order(now, alice, limit(Side::Buy, 1, price)).unwrap();
    ex.advance_until(now + 2 * MS);
    let id = OrderRef::id(&ack.order_id);
    let before = ex.open_orders(alice)[0].clone();
    let wallet_before = ex.wallet_snapshot(alice);

    let now = ex.now_us();
    param(ex.amend_order(now, alice, 0, id, Some(5_000 * BTC), None), "maxOrderQty");
    // 1000 BTC is a legal size but needs ~10 million of margin.
    assert_eq!(ex.amend_order(now, alice, 0, id, Some(1_000 * BTC), None), Err(ExchangeError::InsufficientBalance));
    // The sweep's 999999999.0 buy: inside maxPrice, far above the highest buy price.
    price_out_of_range(ex.amend_order(now, alice, 0, id, None, Some(9_999_999_990)), "highest buy price");
    price_out_of_range(ex.amend_order(now, alice, 0, id, None, Some(100_000_000_000_000)), "maxPrice");
    let (highest_buy, _) = limits(&ex, mark(&ex, alice));
    price_out_of_range(ex.amend_order(now, alice, 0, id, None, Some(highest_buy + tick)), "highest buy price");
    // Both at once: a price inside the limits does not carry a quantity the margin cannot.
    assert_eq!(
        ex.amend_order(now, alice, 0, id, Some(2 * BTC), Some(price - tick)),
        Err(ExchangeError::InsufficientBalance)
    );

    ex.advance_until(now + 2 * MS);
    assert_eq!(ex.open_orders(alice), vec![&before], "refused amends changed nothing");
    assert_eq!(ex.position(alice, 0).size, 0);
    assert_eq!(ex.wallet_snapshot(alice).wallet_balance, wallet_before.wallet_balance);

    // An amend inside every limit still goes through.
    let now = ex.now_us();
    ex.amend_order(now, alice, 0, id, Some(2), Some(price - tick)).unwrap();
    ex.advance_until(now + 2 * MS);
    let open = ex.open_orders(alice)[0];
    assert_eq!((open.qty, open.price, open.leaves_qty), (2, Some(price - tick), 2));

    // A cancelled order cannot be amended.
    let now = ex.now_us();
    ex.cancel_order(now, alice, 0, id).unwrap();
    ex.advance_until(now + 2 * MS);
    assert_eq!(ex.amend_order(ex.now_us(), alice, 0, id, Some(3), None), Err(ExchangeError::OrderNotFound));
}

#[test]
fn amends_within_the_margin_go_through_when_little_is_left_available() {
    let mut ex = exchange(15);
    let tick = ex.spec(0).tick;
    let bid = ex.market(0).engine().best_bid().unwrap().price;
    let price = bid * 9 / 10 / tick * tick;
    // Margin for 1.05 BTC at the order's price and 10x: a 0.9 BTC order leaves 0.15 BTC's worth available.
    let value_to_wallet = 10_i128.pow(WALLET_DECIMALS - 1 - 3);
    let carol = ex.add_account(1_050 * i128::from(price) * value_to_wallet / 10, MS);
    let now = ex.now_us();
    let qty = 900;
    let ack = ex.create_order(now, carol, limit(Side::Buy, qty, price)).unwrap();
    ex.advance_until(now + 2 * MS);
    let id = OrderRef::id(&ack.order_id);
    // The order's own margin is given back before the amended one is charged: 1 BTC needs only the difference,
    // which fits in what is left, and 2 BTC does not.
    let now = ex.now_us();
    assert_eq!(ex.amend_order(now, carol, 0, id, Some(2 * BTC), None), Err(ExchangeError::InsufficientBalance));
    ex.amend_order(now, carol, 0, id, Some(BTC), None).unwrap();
    ex.advance_until(now + 2 * MS);
    // Lowering the order frees margin and is always possible.
    let now = ex.now_us();
    ex.amend_order(now, carol, 0, id, Some(qty / 2), Some(price - 10 * tick)).unwrap();
    ex.advance_until(now + 2 * MS);
    let open = ex.open_orders(carol)[0];
    assert_eq!((open.qty, open.price), (qty / 2, Some(price - 10 * tick)));
}
