//! What the exchange's API-client tests share: time units, wallet amounts and an order request.

#![allow(dead_code)] // each test file uses its own part

use apex_core::{Side, StpMode, TimeInForce};
use apex_sim::exchange::{OrderRequest, OrderType, WALLET_DECIMALS};

pub const MS: i64 = 1_000;
pub const S: i64 = 1_000_000;

/// `amount` USDT in wallet units.
pub fn usdt(amount: i64) -> i128 {
    i128::from(amount) * 10_i128.pow(WALLET_DECIMALS)
}

/// A plain good-till-cancelled order of `qty` on `symbol` (a limit order when `price` is given).
pub fn order(symbol: usize, side: Side, order_type: OrderType, qty: i64, price: Option<i64>) -> OrderRequest {
    OrderRequest {
        symbol,
        side,
        order_type,
        qty,
        price,
        tif: TimeInForce::Gtc,
        order_link_id: String::new(),
        reduce_only: false,
        close_on_trigger: false,
        take_profit: None,
        stop_loss: None,
        stp: StpMode::CancelTaker,
    }
}
