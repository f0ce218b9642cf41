//! Shared market types: sides, orders and fills, fixed-point scales for prices and quantities, exact decimal parsing.

mod fees;
pub mod order;
pub mod params;
pub mod process;
mod scale;
mod side;
mod table;
pub mod text;
pub mod timing;
mod xorshift;

pub use fees::{BYBIT_VIP0_MAKER_FEE, BYBIT_VIP0_TAKER_FEE};
pub use order::{
    AccountId, CancelReason, Event, Liquidity, NewOrder, OrderId, OrderKind, OrderStatus, RejectReason, StpMode,
    TimeInForce, TradeId,
};
pub use params::{Bounds, ParamSpec, ParamValue};
pub use scale::{Scale, ScaleError, decimals_in, infer_decimals, infer_decimals_where};
pub use side::Side;
pub use table::{BookRows, MessageHead, TradeRows};
pub use xorshift::XorShift64;
