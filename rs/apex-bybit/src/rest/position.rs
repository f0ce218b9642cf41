//! Position endpoints beyond the list: `POST /v5/position/set-leverage` and `POST /v5/position/trading-stop`
//! (docs/v5/position/leverage.mdx, trading-stop.mdx). Both answer an empty `result` on success.

use serde::{Deserialize, Serialize};

use crate::decimal::Dec;
use crate::enums::{Category, OrderType, TpslMode, TriggerBy};

/// `POST /v5/position/set-leverage`. In one-way mode `buyLeverage` and `sellLeverage` must be equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetLeverageRequest {
    pub category: Category,
    pub symbol: String,
    pub buy_leverage: Dec,
    pub sell_leverage: Dec,
}

/// `POST /v5/position/trading-stop`: the take-profit/stop-loss of a position. An absent price leaves it as it is,
/// `"0"` cancels it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TradingStopRequest {
    pub category: Category,
    pub symbol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpsl_mode: Option<TpslMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_idx: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_stop: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp_trigger_by: Option<TriggerBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sl_trigger_by: Option<TriggerBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_price: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp_size: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sl_size: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp_limit_price: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sl_limit_price: Option<Dec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp_order_type: Option<OrderType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sl_order_type: Option<OrderType>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_as_pybit_sends_them() {
        // pybit signs and sends json.dumps(params): spaces after ',' and ':'.
        let body = r#"{"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "5", "sellLeverage": "5"}"#;
        let request: SetLeverageRequest = serde_json::from_str(body).unwrap();
        assert_eq!((request.buy_leverage.as_str(), request.sell_leverage.as_str()), ("5", "5"));
        let body = r#"{"category":"linear","symbol":"ETHUSDT","positionIdx":0,"takeProfit":"4500","stopLoss":"0"}"#;
        let request: TradingStopRequest = serde_json::from_str(body).unwrap();
        assert_eq!(request.take_profit.as_ref().map(Dec::as_str), Some("4500"));
        assert!(request.stop_loss.as_ref().is_some_and(Dec::is_zero));
        assert_eq!(serde_json::to_string(&request).unwrap(), body);
    }
}
