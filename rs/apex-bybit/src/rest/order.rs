//! Order endpoints: `/v5/order/create`, `amend`, `cancel`, `cancel-all` (POST, JSON bodies) and `realtime`,
//! `history` (GET). A create answer only means "accepted"; the order's fate arrives on the private topics.

use apex_core::Side;
use serde::{Deserialize, Serialize};

use crate::decimal::Dec;
use crate::enums::{Category, OrderStatus, OrderType, SmpType, StopOrderType, TimeInForce, TpslMode, TriggerBy};
use crate::records::Order;
use crate::rest::ListResult;

/// Longest `orderLinkId` Bybit accepts.
pub const ORDER_LINK_ID_MAX: usize = 36;

/// True for a valid `orderLinkId`: 1 to 36 of `[A-Za-z0-9_-]`.
#[must_use]
pub fn is_valid_order_link_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ORDER_LINK_ID_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Body of `POST /v5/order/create`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderRequest {
    pub category: Category,
    pub symbol: String,
    pub side: Side,
    pub order_type: OrderType,
    pub qty: Dec,
    /// Required for `Limit`.
    pub price: Option<Dec>,
    /// GTC when absent; market orders are always IOC.
    pub time_in_force: Option<TimeInForce>,
    /// The client's id, unique per account: what makes a retried create safe.
    pub order_link_id: Option<String>,
    /// 0 one-way (default), 1/2 hedge mode sides.
    pub position_idx: Option<i32>,
    pub reduce_only: Option<bool>,
    pub close_on_trigger: Option<bool>,
    /// Makes the order conditional.
    pub trigger_price: Option<Dec>,
    /// 1 rise to `triggerPrice`, 2 fall to it.
    pub trigger_direction: Option<i32>,
    pub trigger_by: Option<TriggerBy>,
    pub take_profit: Option<Dec>,
    pub stop_loss: Option<Dec>,
    pub tp_trigger_by: Option<TriggerBy>,
    pub sl_trigger_by: Option<TriggerBy>,
    pub tpsl_mode: Option<TpslMode>,
    pub tp_limit_price: Option<Dec>,
    pub sl_limit_price: Option<Dec>,
    pub tp_order_type: Option<OrderType>,
    pub sl_order_type: Option<OrderType>,
    /// Spot margin: 0/1.
    pub is_leverage: Option<i32>,
    /// Spot: `Order`, `tpslOrder`, `StopOrder`.
    pub order_filter: Option<String>,
    /// Spot market orders: `baseCoin` or `quoteCoin`.
    pub market_unit: Option<String>,
    pub smp_type: Option<SmpType>,
}

impl CreateOrderRequest {
    /// A plain limit order; set the optional fields on the result.
    #[must_use]
    pub fn limit(category: Category, symbol: &str, side: Side, qty: Dec, price: Dec) -> CreateOrderRequest {
        let mut order = CreateOrderRequest::market(category, symbol, side, qty);
        order.order_type = OrderType::Limit;
        order.price = Some(price);
        order
    }

    /// A plain market order.
    #[must_use]
    pub fn market(category: Category, symbol: &str, side: Side, qty: Dec) -> CreateOrderRequest {
        CreateOrderRequest {
            category,
            symbol: symbol.to_owned(),
            side,
            order_type: OrderType::Market,
            qty,
            price: None,
            time_in_force: None,
            order_link_id: None,
            position_idx: None,
            reduce_only: None,
            close_on_trigger: None,
            trigger_price: None,
            trigger_direction: None,
            trigger_by: None,
            take_profit: None,
            stop_loss: None,
            tp_trigger_by: None,
            sl_trigger_by: None,
            tpsl_mode: None,
            tp_limit_price: None,
            sl_limit_price: None,
            tp_order_type: None,
            sl_order_type: None,
            is_leverage: None,
            order_filter: None,
            market_unit: None,
            smp_type: None,
        }
    }
}

/// Body of `POST /v5/order/amend`: `orderId` or `orderLinkId`, and what changes.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmendOrderRequest {
    pub category: Category,
    pub symbol: String,
    pub order_id: Option<String>,
    pub order_link_id: Option<String>,
    pub qty: Option<Dec>,
    pub price: Option<Dec>,
    pub trigger_price: Option<Dec>,
    pub trigger_by: Option<TriggerBy>,
    pub take_profit: Option<Dec>,
    pub stop_loss: Option<Dec>,
    pub tp_trigger_by: Option<TriggerBy>,
    pub sl_trigger_by: Option<TriggerBy>,
    pub tp_limit_price: Option<Dec>,
    pub sl_limit_price: Option<Dec>,
    pub tpsl_mode: Option<TpslMode>,
}

/// Body of `POST /v5/order/cancel`: `orderId` or `orderLinkId` (when both, `orderId` wins).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelOrderRequest {
    pub category: Category,
    pub symbol: String,
    pub order_id: Option<String>,
    pub order_link_id: Option<String>,
    pub order_filter: Option<String>,
}

impl CancelOrderRequest {
    /// The cancel of the order the client named `order_link_id`.
    #[must_use]
    pub fn of_link(category: Category, symbol: &str, order_link_id: &str) -> CancelOrderRequest {
        CancelOrderRequest {
            category,
            symbol: symbol.to_owned(),
            order_link_id: Some(order_link_id.to_owned()),
            ..CancelOrderRequest::default()
        }
    }
}

/// `result` of create, amend and cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderIdResult {
    pub order_id: String,
    pub order_link_id: String,
}

/// Body of `POST /v5/order/cancel-all`: linear needs `symbol`, `baseCoin` or `settleCoin`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelAllRequest {
    pub category: Category,
    pub symbol: Option<String>,
    pub base_coin: Option<String>,
    pub settle_coin: Option<String>,
    pub order_filter: Option<String>,
    pub stop_order_type: Option<StopOrderType>,
}

/// `result` of cancel-all: the cancelled orders, and `success` `"1"`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelAllResult {
    pub list: Vec<OrderIdResult>,
    pub success: Option<String>,
}

/// Query of `GET /v5/order/realtime` (open orders, and recently closed ones with `openOnly=1`) and of
/// `GET /v5/order/history` (which also takes `orderStatus`, `startTime`, `endTime`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderQuery {
    pub category: Category,
    pub symbol: Option<String>,
    pub base_coin: Option<String>,
    pub settle_coin: Option<String>,
    pub order_id: Option<String>,
    pub order_link_id: Option<String>,
    /// Realtime only: 0 open orders (default), 1 also recently closed ones.
    pub open_only: Option<i32>,
    pub order_filter: Option<String>,
    /// History only.
    pub order_status: Option<OrderStatus>,
    /// History only, ms.
    pub start_time: Option<i64>,
    /// History only, ms.
    pub end_time: Option<i64>,
    /// [1, 50], default 20.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub type OrderListResult = ListResult<Order>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::to_query;

    #[test]
    fn create_body_and_query_strings() {
        let mut order = CreateOrderRequest::limit(
            Category::Linear,
            "BTCUSDT",
            Side::Buy,
            Dec::new("0.001").unwrap(),
            Dec::new("60000.5").unwrap(),
        );
        order.order_link_id = Some("apex-1".into());
        order.time_in_force = Some(TimeInForce::PostOnly);
        let body = serde_json::to_string(&order).unwrap();
        assert_eq!(
            body,
            r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"60000.5","timeInForce":"PostOnly","orderLinkId":"apex-1"}"#
        );
        assert_eq!(serde_json::from_str::<CreateOrderRequest>(&body).unwrap(), order);

        let query = OrderQuery {
            category: Category::Linear,
            symbol: Some("BTCUSDT".into()),
            order_link_id: Some("apex-1".into()),
            open_only: Some(1),
            ..OrderQuery::default()
        };
        let text = to_query(&query).unwrap();
        assert_eq!(text, "category=linear&symbol=BTCUSDT&orderLinkId=apex-1&openOnly=1");
        assert_eq!(serde_urlencoded::from_str::<OrderQuery>(&text).unwrap(), query);
    }

    #[test]
    fn order_link_ids() {
        assert!(is_valid_order_link_id("apex_1-BTC"));
        assert!(is_valid_order_link_id(&"a".repeat(36)));
        assert!(!is_valid_order_link_id(&"a".repeat(37)));
        assert!(!is_valid_order_link_id(""));
        assert!(!is_valid_order_link_id("a b"));
    }
}
