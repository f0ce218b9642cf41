//! Agent-based market simulator: a price-time-priority matching engine with Bybit-like orders, fees and L2 output,
//! agent populations parameterized by the DSG, and a strategy slot.
//!
//! Prices and quantities are integers in the instrument's units (see [`InstrumentSpec`]); time is microseconds
//! (`ts_us`) given by the caller on every call, so an event-driven clock can drive the engine later.

pub mod agents;
pub mod dsg;
pub mod market;
pub mod strategy;

mod engine;
mod error;
mod order;
mod publish;
mod spec;

pub use dsg::{Dsg, DsgError};
pub use engine::{Account, MatchingEngine, RestingOrder};
pub use error::SimError;
pub use market::{SimConfig, SimOutput, run};
pub use order::{
    AccountId, CancelReason, Event, Liquidity, NewOrder, OrderId, OrderKind, RejectReason, StpMode, TimeInForce,
    TradeId,
};
pub use publish::{BookPublisher, L2Update};
pub use spec::{
    BAND_DECIMALS, BYBIT_VIP0_MAKER_FEE, BYBIT_VIP0_TAKER_FEE, DEFAULT_MARKET_BAND, ExactRates, FEE_RATE_DECIMALS,
    InstrumentSpec,
};
pub use strategy::Strategy;
