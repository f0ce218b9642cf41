//! Bybit V5 protocol: public WebSocket message types and a parser of message lines into `book`/`trades` columns.

mod columns;
mod messages;

pub use columns::{BookRows, KIND_DELTA, KIND_SNAPSHOT, LineParser, ParseError, TradeRows};
pub use messages::{
    Envelope, Level, MessageKind, OpRequest, OpResponse, OrderbookData, OrderbookMessage, PublicTrade,
    PublicTradeMessage, TakerSide,
};
