//! Agent-based market simulator: a price-time-priority matching engine with Bybit-like orders, fees and L2 output,
//! agent populations parameterized by the DSG, and a strategy slot.
//!
//! Prices and quantities are integers in the instrument's units (see [`InstrumentSpec`]); time is microseconds
//! (`ts_us`) given by the caller on every call: the agent-based market ([`market`]) and the local venue each drive it
//! with their own clock.
//!
//! ```
//! use apex_core::Side;
//! use apex_sim::{BookPublisher, Event, InstrumentSpec, MatchingEngine, NewOrder, TimeInForce};
//!
//! let spec = InstrumentSpec::bybit_linear("BTCUSDT", "0.1", "0.001", "0.001")?;
//! let mut engine = MatchingEngine::new(spec)?;
//! let mut events = Vec::new();
//! // Account 1 offers 0.005 BTC at 50000.0; account 2 buys 0.002 at market.
//! let ask = engine.submit(1_000, &NewOrder::limit(1, Side::Sell, 500_000, 5, TimeInForce::Gtc), &mut events);
//! engine.submit(2_000, &NewOrder::market(2, Side::Buy, 2), &mut events);
//! assert!(events.iter().any(|e| matches!(e, Event::Trade { price: 500_000, qty: 2, maker_order, .. } if *maker_order == ask)));
//! assert_eq!(engine.account(2).position, 2);
//! let mut publisher = BookPublisher::new(50)?;
//! let snapshot = publisher.publish(&engine, 2_000).expect("the first message is a snapshot");
//! assert_eq!(snapshot.asks[0].qty, 3);
//! # Ok::<(), apex_sim::SimError>(())
//! ```

pub mod adversarial;
pub mod agents;
pub mod batch;
pub mod dsg;
pub mod exchange;
pub mod execution;
pub mod gp_strategy;
pub mod market;
pub mod strategy;

/// The order types live in `apex-core` (the live engine shares them); `crate::order` keeps naming them here.
use apex_core::order;

mod engine;
mod error;
mod fair_value;
mod publish;
mod spec;

pub use apex_core::order::{
    AccountId, CancelReason, Event, Liquidity, NewOrder, OrderId, OrderKind, RejectReason, StpMode, TimeInForce,
    TradeId,
};
pub use dsg::{Dsg, DsgError};
pub use engine::{Account, MatchingEngine, RestingOrder};
pub use error::SimError;
pub use market::{
    AccountEvent, AccountEventKind, BookMessage, ExternalRequest, Market, PublicTrade, SimConfig, SimOutput, StopKind,
    StopSpec, Stops, Tag, run,
};
pub use publish::{BookPublisher, BookTick, EngineBook, L2Update};
pub use spec::{
    BAND_DECIMALS, BYBIT_VIP0_MAKER_FEE, BYBIT_VIP0_TAKER_FEE, DEFAULT_MARKET_BAND, DEFAULT_MAX_QTY_UNITS,
    DEFAULT_PRICE_LIMIT_RATIO_X, DEFAULT_PRICE_LIMIT_RATIO_Y, ExactRates, FEE_RATE_DECIMALS, InstrumentSpec,
    MAX_LIMIT_ORDER_LOTS, MAX_MARKET_ORDER_LOTS, MAX_ORDER_PRICE_UNITS, MAX_PRICE_UNITS,
};
pub use strategy::Strategy;
