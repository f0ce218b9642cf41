//! Market simulator core: a price-time-priority matching engine with Bybit-like orders, fees and L2 output.
//!
//! Prices and quantities are integers in the instrument's units (see [`InstrumentSpec`]); time is microseconds
//! (`ts_us`) given by the caller on every call, so an event-driven clock can drive the engine later.

mod engine;
mod error;
mod order;
mod publish;
mod spec;

pub use engine::{Account, MatchingEngine, RestingOrder};
pub use error::SimError;
pub use order::{
    AccountId, CancelReason, Event, Liquidity, NewOrder, OrderId, OrderKind, RejectReason, StpMode, TimeInForce,
    TradeId,
};
pub use publish::{BookPublisher, L2Update};
pub use spec::{
    BAND_DECIMALS, BYBIT_VIP0_MAKER_FEE, BYBIT_VIP0_TAKER_FEE, DEFAULT_MARKET_BAND, DEFAULT_MAX_QTY_UNITS, ExactRates,
    FEE_RATE_DECIMALS, InstrumentSpec, MAX_PRICE_UNITS,
};
