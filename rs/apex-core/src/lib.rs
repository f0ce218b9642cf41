//! Shared market types: sides, orders and fills, fixed-point scales for prices and quantities, exact decimal parsing.

pub mod order;
mod scale;
mod side;

pub use order::{
    AccountId, CancelReason, Event, Liquidity, NewOrder, OrderId, OrderKind, OrderStatus, RejectReason, StpMode,
    TimeInForce, TradeId,
};
pub use scale::{Scale, ScaleError, decimals_in, infer_decimals};
pub use side::Side;
