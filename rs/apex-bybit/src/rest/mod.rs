//! V5 REST: the response envelope and the request/answer types of the endpoints the engine and the venue use.
//!
//! GET requests serialize to their query string ([`to_query`]) and POST requests to their JSON body; a client signs
//! exactly those bytes and sends exactly them. Every request type also deserializes, so the venue parses with them.

pub mod account;
pub mod market;
pub mod order;
pub mod position;
pub mod protection;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::enums::Category;
use crate::errors::RetCode;

/// Endpoint paths.
pub mod path {
    pub const MARKET_TIME: &str = "/v5/market/time";
    pub const INSTRUMENTS_INFO: &str = "/v5/market/instruments-info";
    pub const ORDERBOOK: &str = "/v5/market/orderbook";
    pub const KLINE: &str = "/v5/market/kline";
    pub const RECENT_TRADE: &str = "/v5/market/recent-trade";
    pub const TICKERS: &str = "/v5/market/tickers";
    pub const ORDER_CREATE: &str = "/v5/order/create";
    pub const ORDER_AMEND: &str = "/v5/order/amend";
    pub const ORDER_CANCEL: &str = "/v5/order/cancel";
    pub const ORDER_CANCEL_ALL: &str = "/v5/order/cancel-all";
    pub const ORDER_REALTIME: &str = "/v5/order/realtime";
    pub const ORDER_HISTORY: &str = "/v5/order/history";
    pub const POSITION_LIST: &str = "/v5/position/list";
    pub const EXECUTION_LIST: &str = "/v5/execution/list";
    pub const WALLET_BALANCE: &str = "/v5/account/wallet-balance";
    pub const SET_LEVERAGE: &str = "/v5/position/set-leverage";
    pub const TRADING_STOP: &str = "/v5/position/trading-stop";
    pub const DCP_SET: &str = "/v5/order/disconnected-cancel-all";
    pub const DCP_INFO: &str = "/v5/account/query-dcp-info";
}

/// Every REST answer: `{"retCode","retMsg","result","retExtInfo","time"}`. On an error `result` is `{}`
/// ([`Empty`]); read the envelope as `Response<Box<RawValue>>` or `Response<Value>` first when the code is unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response<T> {
    pub ret_code: i64,
    pub ret_msg: String,
    pub result: T,
    /// `{}` except for batch endpoints.
    #[serde(default)]
    pub ret_ext_info: Map<String, Value>,
    /// Server time, ms.
    #[serde(default)]
    pub time: i64,
}

impl<T> Response<T> {
    /// A success: `retCode` 0, `retMsg` `"OK"`.
    #[must_use]
    pub fn ok(result: T, time: i64) -> Response<T> {
        Response { ret_code: 0, ret_msg: "OK".into(), result, ret_ext_info: Map::new(), time }
    }

    /// True for `retCode` 0 (`retMsg` may be `OK`, `success`, `SUCCESS` or `""`).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.ret_code == 0
    }
}

impl Response<Empty> {
    /// An error answer with the code's standard message.
    #[must_use]
    pub fn error(code: RetCode, time: i64) -> Response<Empty> {
        Response::error_message(code.code(), code.message(), time)
    }

    /// An error answer with a message of its own (e.g. [`crate::errors::recv_window_message`]).
    #[must_use]
    pub fn error_message(code: i64, message: impl Into<String>, time: i64) -> Response<Empty> {
        Response { ret_code: code, ret_msg: message.into(), result: Empty {}, ret_ext_info: Map::new(), time }
    }
}

/// `{}`: the `result` of an error answer. Reads any object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A paged list: `{"category","list":[…],"nextPageCursor"}` (`category` and the cursor absent on some endpoints).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResult<T> {
    pub category: Option<Category>,
    pub list: Vec<T>,
    /// `""` (or null) on the last page.
    pub next_page_cursor: Option<String>,
}

/// The query string of a GET request, fields in declaration order, `None`s left out. Sign and send this same string.
///
/// # Errors
/// A request type whose fields are not flat scalars (none of this crate's).
pub fn to_query<T: Serialize>(request: &T) -> Result<String, serde_urlencoded::ser::Error> {
    serde_urlencoded::to_string(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_shape() {
        let text = serde_json::to_string(&Response::error(RetCode::TooManyVisits, 7)).unwrap();
        assert_eq!(text, r#"{"retCode":10006,"retMsg":"Too many visits!","result":{},"retExtInfo":{},"time":7}"#);
        let back: Response<Empty> = serde_json::from_str(&text).unwrap();
        assert!(!back.is_ok());
        let ok: Response<Empty> = serde_json::from_str(r#"{"retCode":0,"retMsg":"","result":{"x":1}}"#).unwrap();
        assert!(ok.is_ok());
    }
}
