//! Bybit V5 protocol: the wire types of the public and private WebSockets and of the REST endpoints the engine and
//! the venue use, request signing, retCodes, and a parser of recorded message lines into `book`/`trades` columns.
//!
//! Prices and quantities stay decimal strings ([`Dec`]) until `apex_core::Scale` turns them into fixed point.

pub mod client;
mod columns;
pub mod decimal;
pub mod enums;
pub mod errors;
pub mod messages;
pub mod private;
pub mod records;
pub mod rest;
pub mod sign;
mod wire;

pub use columns::{BookRows, KIND_DELTA, KIND_SNAPSHOT, LineParser, ParseError, TradeRows};
pub use decimal::{Dec, DecError};
pub use enums::*;
pub use errors::RetCode;
pub use messages::{
    Envelope, KLINE_INTERVALS, Kline, KlineMessage, Level, MessageKind, ORDERBOOK_DEPTHS, OpRequest, OpResponse,
    OrderbookData, OrderbookMessage, PublicTopic, PublicTrade, PublicTradeMessage, TakerSide, Ticker, TickerMessage,
    TopicError,
};
pub use private::{
    ExecutionMessage, FastExecutionMessage, OrderMessage, PositionMessage, PrivateMessage, PrivateStream, PrivateTopic,
    WalletMessage,
};
pub use records::{Execution, FastExecution, Order, Position, Wallet, WalletCoin};
pub use sign::Credentials;
