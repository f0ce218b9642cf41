//! Serde types of the V5 public WebSocket: topics, order book, public trades, tickers, klines, and the op requests
//! and replies (subscribe, ping, auth) around them on every socket.
//!
//! The hot messages (order book, trades) borrow strings from the input when they can (`Cow`), so parsing a line
//! allocates only the level vectors. Field names follow the wire format; key order on the wire varies by stream and
//! is never relied upon.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::decimal::Dec;
use crate::enums::TickDirection;

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
#[serde_with::skip_serializing_none]
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
#[serde_with::skip_serializing_none]
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
    pub BT: Option<bool>,
    /// Retail-price-improvement trade.
    pub RPI: Option<bool>,
    /// Cross sequence.
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

impl PublicTradeMessage<'_> {
    /// The same message owning its strings, to outlive the frame it was parsed from.
    #[must_use]
    pub fn into_owned(self) -> PublicTradeMessage<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        PublicTradeMessage {
            topic: own(self.topic),
            kind: self.kind,
            ts: self.ts,
            data: self
                .data
                .into_iter()
                .map(|t| PublicTrade {
                    T: t.T,
                    s: own(t.s),
                    S: t.S,
                    v: own(t.v),
                    p: own(t.p),
                    L: t.L.map(own),
                    i: own(t.i),
                    BT: t.BT,
                    RPI: t.RPI,
                    seq: t.seq,
                })
                .collect(),
        }
    }
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

/// Order-book depths the linear, inverse and spot streams serve (500 was removed on 2025-09-11).
pub const ORDERBOOK_DEPTHS: [u32; 4] = [1, 50, 200, 1000];

/// Kline intervals of `kline.{interval}.{symbol}` and `/v5/market/kline`.
pub const KLINE_INTERVALS: [&str; 13] = ["1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M"];

/// A public topic this crate knows, parsed from and written as its wire name (`orderbook.50.BTCUSDT`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PublicTopic {
    Orderbook { depth: u32, symbol: String },
    PublicTrade { symbol: String },
    Tickers { symbol: String },
    Kline { interval: String, symbol: String },
}

/// A topic name the venue has no handler for; its message is Bybit's `ret_msg` (`error:handler not found,topic:…`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("error:handler not found,topic:{topic}")]
pub struct TopicError {
    pub topic: String,
}

impl PublicTopic {
    /// # Errors
    /// `TopicError` for an unknown stream, a depth outside [`ORDERBOOK_DEPTHS`], an interval outside
    /// [`KLINE_INTERVALS`], or an empty symbol.
    pub fn parse(topic: &str) -> Result<PublicTopic, TopicError> {
        let bad = || TopicError { topic: topic.to_owned() };
        let symbol_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let parts: Vec<&str> = topic.split('.').collect();
        let parsed = match parts.as_slice() {
            ["orderbook", depth, symbol] => {
                let depth: u32 = depth.parse().map_err(|_| bad())?;
                if !ORDERBOOK_DEPTHS.contains(&depth) {
                    return Err(bad());
                }
                PublicTopic::Orderbook { depth, symbol: (*symbol).to_owned() }
            }
            ["publicTrade", symbol] => PublicTopic::PublicTrade { symbol: (*symbol).to_owned() },
            ["tickers", symbol] => PublicTopic::Tickers { symbol: (*symbol).to_owned() },
            ["kline", interval, symbol] if KLINE_INTERVALS.contains(interval) => {
                PublicTopic::Kline { interval: (*interval).to_owned(), symbol: (*symbol).to_owned() }
            }
            _ => return Err(bad()),
        };
        if symbol_ok(parsed.symbol()) { Ok(parsed) } else { Err(bad()) }
    }

    #[must_use]
    pub fn symbol(&self) -> &str {
        match self {
            PublicTopic::Orderbook { symbol, .. }
            | PublicTopic::PublicTrade { symbol }
            | PublicTopic::Tickers { symbol }
            | PublicTopic::Kline { symbol, .. } => symbol,
        }
    }
}

impl fmt::Display for PublicTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicTopic::Orderbook { depth, symbol } => write!(f, "orderbook.{depth}.{symbol}"),
            PublicTopic::PublicTrade { symbol } => write!(f, "publicTrade.{symbol}"),
            PublicTopic::Tickers { symbol } => write!(f, "tickers.{symbol}"),
            PublicTopic::Kline { interval, symbol } => write!(f, "kline.{interval}.{symbol}"),
        }
    }
}

/// A `tickers.{symbol}` item (also a `/v5/market/tickers` list item). Every field but `symbol` is optional: a linear
/// or inverse `delta` carries only what changed ([`Ticker::merge`]), and spot tickers have fewer fields.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticker {
    pub symbol: String,
    pub tick_direction: Option<TickDirection>,
    pub price24h_pcnt: Option<Dec>,
    pub last_price: Option<Dec>,
    pub prev_price24h: Option<Dec>,
    pub high_price24h: Option<Dec>,
    pub low_price24h: Option<Dec>,
    pub prev_price1h: Option<Dec>,
    pub mark_price: Option<Dec>,
    pub index_price: Option<Dec>,
    pub open_interest: Option<Dec>,
    pub open_interest_value: Option<Dec>,
    pub turnover24h: Option<Dec>,
    pub volume24h: Option<Dec>,
    /// Ms, as a string.
    pub next_funding_time: Option<String>,
    pub funding_rate: Option<Dec>,
    pub bid1_price: Option<Dec>,
    pub bid1_size: Option<Dec>,
    pub ask1_price: Option<Dec>,
    pub ask1_size: Option<Dec>,
    pub delivery_time: Option<String>,
    pub basis_rate: Option<Dec>,
    pub delivery_fee_rate: Option<Dec>,
    pub predicted_delivery_price: Option<Dec>,
    pub basis: Option<Dec>,
    pub basis_rate_year: Option<Dec>,
    pub pre_open_price: Option<Dec>,
    pub pre_qty: Option<Dec>,
    pub cur_pre_listing_phase: Option<String>,
    /// Hours, as a string (`"8"`).
    pub funding_interval_hour: Option<String>,
    pub funding_cap: Option<Dec>,
    /// Spot only.
    pub usd_index_price: Option<Dec>,
}

impl Ticker {
    /// Applies a linear/inverse `delta`: every field it carries replaces ours ("a field not in the message has not
    /// changed").
    pub fn merge(&mut self, delta: &Ticker) {
        macro_rules! take {
            ($($field:ident),+) => { $( if delta.$field.is_some() { self.$field.clone_from(&delta.$field); } )+ };
        }
        take!(
            tick_direction,
            price24h_pcnt,
            last_price,
            prev_price24h,
            high_price24h,
            low_price24h,
            prev_price1h,
            mark_price,
            index_price,
            open_interest,
            open_interest_value,
            turnover24h,
            volume24h,
            next_funding_time,
            funding_rate,
            bid1_price,
            bid1_size,
            ask1_price,
            ask1_size,
            delivery_time,
            basis_rate,
            delivery_fee_rate,
            predicted_delivery_price,
            basis,
            basis_rate_year,
            pre_open_price,
            pre_qty,
            cur_pre_listing_phase,
            funding_interval_hour,
            funding_cap,
            usd_index_price
        );
    }
}

/// A `tickers.{symbol}` message.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickerMessage {
    pub topic: String,
    #[serde(rename = "type")]
    pub kind: MessageKind,
    pub data: Ticker,
    /// Cross sequence.
    pub cs: Option<i64>,
    pub ts: i64,
    /// Option tickers only.
    pub id: Option<String>,
}

/// One candle of a `kline.{interval}.{symbol}` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kline {
    /// Open time, ms.
    pub start: i64,
    /// `start` + interval − 1 ms.
    pub end: i64,
    pub interval: String,
    pub open: Dec,
    pub close: Dec,
    pub high: Dec,
    pub low: Dec,
    pub volume: Dec,
    pub turnover: Dec,
    /// True once the candle is closed.
    pub confirm: bool,
    /// Ms of the last matched trade in the candle.
    pub timestamp: i64,
}

/// A `kline.{interval}.{symbol}` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KlineMessage {
    pub topic: String,
    #[serde(rename = "type")]
    pub kind: MessageKind,
    pub ts: i64,
    pub data: Vec<Kline>,
}

/// A request on any socket: `{"op":"subscribe","args":[topics]}`, `unsubscribe`, `ping`, or
/// `auth` (`args` = `[api_key, expires_ms, signature]`, mixed types, hence JSON values).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpRequest {
    pub req_id: Option<String>,
    pub op: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Value>,
}

impl OpRequest {
    #[must_use]
    pub fn subscribe(topics: &[String], req_id: Option<String>) -> OpRequest {
        OpRequest { req_id, op: "subscribe".into(), args: topics.iter().map(|t| Value::from(t.as_str())).collect() }
    }

    #[must_use]
    pub fn unsubscribe(topics: &[String], req_id: Option<String>) -> OpRequest {
        OpRequest { req_id, op: "unsubscribe".into(), args: topics.iter().map(|t| Value::from(t.as_str())).collect() }
    }

    #[must_use]
    pub fn ping(req_id: Option<String>) -> OpRequest {
        OpRequest { req_id, op: "ping".into(), args: Vec::new() }
    }

    /// The private socket's `auth`; `signature` from [`crate::sign::ws_auth_signature`].
    #[must_use]
    pub fn auth(api_key: &str, expires_ms: i64, signature: &str, req_id: Option<String>) -> OpRequest {
        OpRequest {
            req_id,
            op: "auth".into(),
            args: vec![Value::from(api_key), Value::from(expires_ms), Value::from(signature)],
        }
    }

    /// The topics of a `subscribe`/`unsubscribe`; `None` when an argument is not a string.
    #[must_use]
    pub fn topics(&self) -> Option<Vec<&str>> {
        self.args.iter().map(Value::as_str).collect()
    }

    /// `(api_key, expires_ms, signature)` of an `auth`; `None` when the arguments are not of that shape. `expires`
    /// may come as a number or a numeric string (both are seen from clients).
    #[must_use]
    pub fn auth_args(&self) -> Option<(&str, i64, &str)> {
        match self.args.as_slice() {
            [key, expires, signature] => {
                let expires = expires.as_i64().or_else(|| expires.as_str().and_then(|s| s.parse().ok()))?;
                Some((key.as_str()?, expires, signature.as_str()?))
            }
            _ => None,
        }
    }
}

/// The answer to an op. Shapes differ per socket and category (docs §2.1, §2.2, §4.5), so every field is optional
/// and only the ones present are written back: linear/spot acks (`success`, `ret_msg`, `conn_id`, `req_id`, `op`),
/// option/private pongs (`op":"pong"`, `args`), the private `auth` ack with camelCase `retCode`/`retMsg`/`connId`
/// (seen in captures), option acks with `data.successTopics` and `type: COMMAND_RESP`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpResponse {
    pub success: Option<bool>,
    pub ret_msg: Option<String>,
    pub conn_id: Option<String>,
    pub req_id: Option<String>,
    pub op: Option<String>,
    #[serde(rename = "retCode")]
    pub ret_code: Option<i64>,
    #[serde(rename = "retMsg")]
    pub ret_msg_camel: Option<String>,
    #[serde(rename = "connId")]
    pub conn_id_camel: Option<String>,
    #[serde(rename = "reqId")]
    pub req_id_camel: Option<String>,
    pub args: Option<Vec<String>>,
    pub data: Option<Value>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

impl OpResponse {
    /// The linear/inverse ack of `subscribe`, `unsubscribe` or `auth`:
    /// `{"success":…,"ret_msg":…,"conn_id":…,"req_id":…,"op":…}`.
    #[must_use]
    pub fn ack(op: &str, success: bool, ret_msg: &str, conn_id: &str, req_id: Option<&str>) -> OpResponse {
        OpResponse {
            success: Some(success),
            ret_msg: Some(ret_msg.to_owned()),
            conn_id: Some(conn_id.to_owned()),
            req_id: Some(req_id.unwrap_or_default().to_owned()),
            op: Some(op.to_owned()),
            ..OpResponse::default()
        }
    }

    /// The linear/inverse public pong: `{"success":true,"ret_msg":"pong","conn_id":…,"req_id":…,"op":"ping"}`.
    #[must_use]
    pub fn public_pong(conn_id: &str, req_id: Option<&str>) -> OpResponse {
        OpResponse::ack("ping", true, "pong", conn_id, req_id)
    }

    /// The private pong: `{"req_id":…,"op":"pong","args":["<now ms>"],"conn_id":…}`.
    #[must_use]
    pub fn private_pong(conn_id: &str, req_id: Option<&str>, now_ms: i64) -> OpResponse {
        OpResponse {
            req_id: req_id.map(str::to_owned),
            op: Some("pong".into()),
            args: Some(vec![now_ms.to_string()]),
            conn_id: Some(conn_id.to_owned()),
            ..OpResponse::default()
        }
    }

    /// A pong by the rule pybit and tardis use: `ret_msg == "pong"` or `op == "pong"`.
    #[must_use]
    pub fn is_pong(&self) -> bool {
        self.ret_msg.as_deref() == Some("pong") || self.op.as_deref() == Some("pong")
    }

    /// Success by either spelling: `success: true`, or `retCode: 0` when `success` is absent.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.success.unwrap_or(self.ret_code == Some(0))
    }

    /// The message by either spelling (`ret_msg` or `retMsg`), `""` when absent.
    #[must_use]
    pub fn message(&self) -> &str {
        self.ret_msg.as_deref().or(self.ret_msg_camel.as_deref()).unwrap_or("")
    }

    /// The request id by either spelling.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.req_id.as_deref().or(self.req_id_camel.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_print() {
        for name in
            ["orderbook.1.BTCUSDT", "orderbook.1000.ETHUSDT", "publicTrade.SOLUSDT", "tickers.BTCUSDT", "kline.D.X"]
        {
            assert_eq!(PublicTopic::parse(name).unwrap().to_string(), name);
        }
        for bad in ["orderbook.500.BTCUSDT", "orderbook.x.BTCUSDT", "kline.2.BTCUSDT", "trade.BTCUSDT", "tickers.", ""]
        {
            let err = PublicTopic::parse(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("error:handler not found,topic:{bad}"));
        }
        assert_eq!(PublicTopic::parse("orderbook.50.BTCUSDT").unwrap().symbol(), "BTCUSDT");
    }

    #[test]
    fn ticker_delta_merges_only_present_fields() {
        let mut t: Ticker =
            serde_json::from_str(r#"{"symbol":"X","lastPrice":"10.0","bid1Price":"9.9","fundingRate":"0.0001"}"#)
                .unwrap();
        let d: Ticker = serde_json::from_str(r#"{"symbol":"X","bid1Price":"9.8","markPrice":"10.1"}"#).unwrap();
        t.merge(&d);
        assert_eq!(t.last_price.as_ref().map(Dec::as_str), Some("10.0"));
        assert_eq!(t.bid1_price.as_ref().map(Dec::as_str), Some("9.8"));
        assert_eq!(t.mark_price.as_ref().map(Dec::as_str), Some("10.1"));
        assert_eq!(t.funding_rate.as_ref().map(Dec::as_str), Some("0.0001"));
    }

    #[test]
    fn op_requests_and_replies() {
        let auth = OpRequest::auth("key", 1_700_000_000_000, "sig", Some("1".into()));
        let text = serde_json::to_string(&auth).unwrap();
        assert_eq!(text, r#"{"req_id":"1","op":"auth","args":["key",1700000000000,"sig"]}"#);
        let back: OpRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back.auth_args(), Some(("key", 1_700_000_000_000, "sig")));
        let sub = OpRequest::subscribe(&["orderbook.50.X".into()], None);
        assert_eq!(serde_json::to_string(&sub).unwrap(), r#"{"op":"subscribe","args":["orderbook.50.X"]}"#);
        assert_eq!(sub.topics(), Some(vec!["orderbook.50.X"]));
        assert_eq!(OpRequest::ping(None).topics(), Some(vec![]));

        let pong = OpResponse::public_pong("c1", None);
        assert_eq!(
            serde_json::to_string(&pong).unwrap(),
            r#"{"success":true,"ret_msg":"pong","conn_id":"c1","req_id":"","op":"ping"}"#
        );
        assert!(pong.is_pong());
        let pong = OpResponse::private_pong("c2", Some("7"), 1_675_418_560_633);
        assert_eq!(
            serde_json::to_string(&pong).unwrap(),
            r#"{"conn_id":"c2","req_id":"7","op":"pong","args":["1675418560633"]}"#
        );
        let auth_fail: OpResponse =
            serde_json::from_str(r#"{"op":"auth","success":false,"retCode":10003,"retMsg":"Invalid apikey"}"#).unwrap();
        assert!(!auth_fail.is_success());
        assert_eq!(auth_fail.message(), "Invalid apikey");
        let trade_ok: OpResponse = serde_json::from_str(r#"{"op":"auth","retCode":0,"retMsg":"OK"}"#).unwrap();
        assert!(trade_ok.is_success());
    }
}
