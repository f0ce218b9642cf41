//! Serde types of the V5 public messages we consume: order book, public trades, and the op requests/acks around them.
//!
//! Strings borrow from the input when they can (`Cow`), so parsing a recorded line allocates only the level vectors.
//! Field names follow the wire format; key order on the wire varies by stream and is never relied upon.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `type` of a public message: a `snapshot` replaces state, a `delta` updates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    Snapshot,
    Delta,
}

/// One `[price, size]` pair of an order-book side, as the decimal strings Bybit sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level<'a>(#[serde(borrow)] pub Cow<'a, str>, #[serde(borrow)] pub Cow<'a, str>);

/// `data` of an `orderbook.{depth}.{symbol}` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbookData<'a> {
    /// Symbol.
    #[serde(borrow)]
    pub s: Cow<'a, str>,
    /// Bids, price descending.
    #[serde(borrow)]
    pub b: Vec<Level<'a>>,
    /// Asks, price ascending.
    #[serde(borrow)]
    pub a: Vec<Level<'a>>,
    /// Update id: +1 per delta within a stream.
    pub u: u64,
    /// Cross sequence, increasing.
    pub seq: i64,
}

/// An `orderbook.{depth}.{symbol}` message (snapshot or delta).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbookMessage<'a> {
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: MessageKind,
    /// Milliseconds when the system generated the data.
    pub ts: i64,
    #[serde(borrow)]
    pub data: OrderbookData<'a>,
    /// Matching-engine time of this book state (ms); absent in older captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cts: Option<i64>,
}

/// Taker side of a public trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TakerSide {
    Buy,
    Sell,
}

impl TakerSide {
    /// +1 for a buying taker, -1 for a selling one (the `trades` table's convention).
    #[must_use]
    pub fn sign(self) -> i8 {
        match self {
            TakerSide::Buy => 1,
            TakerSide::Sell => -1,
        }
    }
}

/// One item of a `publicTrade.{symbol}` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct PublicTrade<'a> {
    /// Fill time, ms.
    pub T: i64,
    #[serde(borrow)]
    pub s: Cow<'a, str>,
    pub S: TakerSide,
    /// Size (decimal string).
    #[serde(borrow)]
    pub v: Cow<'a, str>,
    /// Price (decimal string).
    #[serde(borrow)]
    pub p: Cow<'a, str>,
    /// Tick direction (derivatives only).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub L: Option<Cow<'a, str>>,
    /// Trade id: a UUID for derivatives, a numeric string for spot.
    #[serde(borrow)]
    pub i: Cow<'a, str>,
    /// Block trade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub BT: Option<bool>,
    /// Retail-price-improvement trade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub RPI: Option<bool>,
    /// Cross sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}

/// A `publicTrade.{symbol}` message: trades sorted by match time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicTradeMessage<'a> {
    #[serde(borrow)]
    pub topic: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: MessageKind,
    pub ts: i64,
    #[serde(borrow)]
    pub data: Vec<PublicTrade<'a>>,
}

/// Any public-socket message before its topic is known: data messages carry `topic`, op replies carry `op`.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(default, borrow)]
    pub topic: Option<Cow<'a, str>>,
    #[serde(default, rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default)]
    pub ts: Option<i64>,
    #[serde(default, borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub op: Option<Cow<'a, str>>,
}

/// A request on the public socket: `{"op":"subscribe","args":[...]}`, `unsubscribe`, or `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    pub op: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// The venue's answer to an op (subscribe ack or failure, pong); shapes differ per category, so all fields are optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResponse {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub ret_msg: Option<String>,
    #[serde(default)]
    pub conn_id: Option<String>,
    #[serde(default)]
    pub req_id: Option<String>,
    #[serde(default)]
    pub op: Option<String>,
}

impl OpResponse {
    /// A pong by the rule pybit and tardis use: `ret_msg == "pong"` or `op == "pong"`.
    #[must_use]
    pub fn is_pong(&self) -> bool {
        self.ret_msg.as_deref() == Some("pong") || self.op.as_deref() == Some("pong")
    }
}
