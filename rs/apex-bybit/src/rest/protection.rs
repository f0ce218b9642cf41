//! Disconnection protection (DCP): `POST /v5/order/disconnected-cancel-all` sets how long the exchange waits, once
//! every private connection that subscribed a `dcp.*` topic is gone, before it cancels the account's active orders
//! of one product; `GET /v5/account/query-dcp-info` reads the settings back. Bybit enables DCP per account (its
//! institutional accounts); elsewhere both the call and the `dcp.*` subscription are refused.

use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

/// Shortest window Bybit accepts, seconds.
pub const DCP_WINDOW_MIN_S: u32 = 3;
/// Longest window Bybit accepts, seconds.
pub const DCP_WINDOW_MAX_S: u32 = 300;
/// Bybit's window when none was set, seconds.
pub const DCP_WINDOW_DEFAULT_S: u32 = 10;

wire_enum! {
    /// `product` of a DCP setting: which orders a trigger cancels.
    pub enum DcpProduct {
        /// Bybit's default when the field is absent.
        Options = "OPTIONS",
        /// Every future and perpetual (inverse, USDT and USDC).
        Derivatives = "DERIVATIVES",
        Spot = "SPOT",
    }
}

impl DcpProduct {
    /// The private topic whose subscription arms this product's protection (`dcp.future`, `dcp.spot`,
    /// `dcp.option`); `None` for a product this crate does not know.
    #[must_use]
    pub fn topic(&self) -> Option<&'static str> {
        match self {
            DcpProduct::Derivatives => Some("dcp.future"),
            DcpProduct::Spot => Some("dcp.spot"),
            DcpProduct::Options => Some("dcp.option"),
            DcpProduct::Other(_) => None,
        }
    }

    /// The product a `dcp.*` topic arms.
    #[must_use]
    pub fn of_topic(topic: &str) -> Option<DcpProduct> {
        match topic {
            "dcp.future" => Some(DcpProduct::Derivatives),
            "dcp.spot" => Some(DcpProduct::Spot),
            "dcp.option" => Some(DcpProduct::Options),
            _ => None,
        }
    }
}

/// Checks a window against Bybit's range.
///
/// # Errors
/// A message naming the range when `seconds` is outside [3, 300].
pub fn check_window(seconds: u32) -> Result<u32, String> {
    if (DCP_WINDOW_MIN_S..=DCP_WINDOW_MAX_S).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!(
            "the disconnection-protection window must be {DCP_WINDOW_MIN_S} to {DCP_WINDOW_MAX_S} whole seconds, got {seconds}"
        ))
    }
}

/// Body of `POST /v5/order/disconnected-cancel-all`; its `result` is `{}`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetDcpRequest {
    /// `OPTIONS` when absent.
    pub product: Option<DcpProduct>,
    /// Seconds, [3, 300].
    pub time_window: u32,
}

/// One product's setting in `query-dcp-info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DcpInfo {
    pub product: DcpProduct,
    /// `ON` or `OFF`.
    pub dcp_status: String,
    /// Seconds, as a string (`"10"`).
    pub time_window: String,
}

impl DcpInfo {
    /// True when the status is `ON`.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.dcp_status == "ON"
    }

    /// The window in seconds (`None` when it is not an integer).
    #[must_use]
    pub fn window_s(&self) -> Option<u32> {
        self.time_window.trim().parse().ok()
    }
}

/// `result` of `GET /v5/account/query-dcp-info` (no query parameters): empty when nothing is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DcpInfoResult {
    #[serde(default)]
    pub dcp_infos: Vec<DcpInfo>,
}

impl DcpInfoResult {
    /// The setting of one product, if any.
    #[must_use]
    pub fn product(&self, product: &DcpProduct) -> Option<&DcpInfo> {
        self.dcp_infos.iter().find(|i| i.product == *product)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::{Empty, Response};

    #[test]
    fn set_body_is_bybits() {
        let request = SetDcpRequest { product: Some(DcpProduct::Derivatives), time_window: 10 };
        let body = serde_json::to_string(&request).unwrap();
        assert_eq!(body, r#"{"product":"DERIVATIVES","timeWindow":10}"#);
        assert_eq!(serde_json::from_str::<SetDcpRequest>(&body).unwrap(), request);
        let default = serde_json::from_str::<SetDcpRequest>(r#"{"timeWindow":40}"#).unwrap();
        assert_eq!(default, SetDcpRequest { product: None, time_window: 40 });
        let answer: Response<Empty> = serde_json::from_str(
            r#"{"retCode":0,"retMsg":"success","result":{},"retExtInfo":{},"time":1717065530867}"#,
        )
        .unwrap();
        assert!(answer.is_ok());
    }

    #[test]
    fn query_answers_parse() {
        // The documented answer of `query-dcp-info`.
        let text = r#"{"retCode":0,"retMsg":"success","result":{"dcpInfos":[{"product":"SPOT","dcpStatus":"ON","timeWindow":"10"},{"product":"DERIVATIVES","dcpStatus":"ON","timeWindow":"10"},{"product":"OPTIONS","dcpStatus":"ON","timeWindow":"10"}]},"retExtInfo":{},"time":1717065530867}"#;
        let answer: Response<DcpInfoResult> = serde_json::from_str(text).unwrap();
        let derivatives = answer.result.product(&DcpProduct::Derivatives).unwrap();
        assert!(derivatives.is_on());
        assert_eq!(derivatives.window_s(), Some(10));
        assert_eq!(answer.result.dcp_infos.len(), 3);
        let empty: Response<DcpInfoResult> =
            serde_json::from_str(r#"{"retCode":0,"retMsg":"success","result":{"dcpInfos":[]},"time":1}"#).unwrap();
        assert!(empty.result.product(&DcpProduct::Derivatives).is_none());
        let bare: Response<DcpInfoResult> =
            serde_json::from_str(r#"{"retCode":0,"retMsg":"OK","result":{},"time":1}"#).unwrap();
        assert!(bare.result.dcp_infos.is_empty());
        let unknown: DcpInfo =
            serde_json::from_str(r#"{"product":"FUTURES2","dcpStatus":"OFF","timeWindow":"x"}"#).unwrap();
        assert_eq!(unknown.product, DcpProduct::Other("FUTURES2".into()));
        assert!(!unknown.is_on() && unknown.window_s().is_none());
    }

    #[test]
    fn windows_and_topics() {
        assert_eq!(check_window(3), Ok(3));
        assert_eq!(check_window(300), Ok(300));
        for bad in [0, 2, 301, u32::MAX] {
            assert!(check_window(bad).unwrap_err().contains("3 to 300"), "{bad}");
        }
        for product in [DcpProduct::Derivatives, DcpProduct::Spot, DcpProduct::Options] {
            assert_eq!(DcpProduct::of_topic(product.topic().unwrap()), Some(product));
        }
        assert_eq!(DcpProduct::Other("X".into()).topic(), None);
        assert_eq!(DcpProduct::of_topic("dcp"), None);
    }
}
