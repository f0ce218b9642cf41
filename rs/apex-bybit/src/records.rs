//! An account's records as V5 sends them: orders, executions, positions and wallets. The same shapes arrive on the
//! private WebSocket topics and in the REST lists; fields only one side sends are `Option`s, documented as such.

use apex_core::Side;
use serde::{Deserialize, Serialize};

use crate::decimal::Dec;
use crate::enums::{
    AccountType, CancelType, Category, CreateType, ExecType, OrderStatus, OrderType, PositionSide, PositionStatus,
    RejectReason, SmpType, StopOrderType, TimeInForce, TpslMode, TriggerBy,
};
use crate::wire::{opt_str_i64, str_i64, string_or_null};

/// An order: the private `order` topic's items and `/v5/order/realtime` / `history` list items.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// WebSocket items only (REST gives it once, beside the list).
    pub category: Option<Category>,
    pub symbol: String,
    pub order_id: String,
    pub order_link_id: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub block_trade_id: String,
    /// `"0"`/`"1"`: spot margin; REST only.
    pub is_leverage: Option<String>,
    pub side: Side,
    pub order_type: OrderType,
    /// `""` for market orders.
    pub price: Dec,
    pub qty: Dec,
    pub time_in_force: TimeInForce,
    pub order_status: OrderStatus,
    pub position_idx: i32,
    /// WebSocket only (REST answers carry it too on newer accounts).
    pub create_type: Option<CreateType>,
    pub cancel_type: CancelType,
    pub reject_reason: RejectReason,
    pub avg_price: Dec,
    pub leaves_qty: Dec,
    pub leaves_value: Dec,
    pub cum_exec_qty: Dec,
    pub cum_exec_value: Dec,
    pub cum_exec_fee: Dec,
    /// WebSocket only.
    pub fee_currency: Option<String>,
    pub stop_order_type: StopOrderType,
    #[serde(default)]
    pub order_iv: Dec,
    pub trigger_price: Dec,
    pub take_profit: Dec,
    pub stop_loss: Dec,
    pub tpsl_mode: TpslMode,
    pub tp_limit_price: Dec,
    pub sl_limit_price: Dec,
    pub tp_trigger_by: TriggerBy,
    pub sl_trigger_by: TriggerBy,
    /// 0 none, 1 triggers when the price rises to `triggerPrice`, 2 when it falls to it.
    pub trigger_direction: i32,
    pub trigger_by: TriggerBy,
    pub last_price_on_created: Dec,
    pub reduce_only: bool,
    pub close_on_trigger: bool,
    pub place_type: String,
    pub smp_type: SmpType,
    pub smp_group: i64,
    #[serde(deserialize_with = "string_or_null")]
    pub smp_order_id: String,
    #[serde(with = "str_i64")]
    pub created_time: i64,
    #[serde(with = "str_i64")]
    pub updated_time: i64,
}

/// A fill (or funding, ADL, delivery): the private `execution` topic's items and `/v5/execution/list` items.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// WebSocket items only.
    pub category: Option<Category>,
    pub symbol: String,
    pub order_id: String,
    pub order_link_id: String,
    pub side: Side,
    pub order_price: Dec,
    pub order_qty: Dec,
    pub leaves_qty: Dec,
    pub create_type: Option<CreateType>,
    pub order_type: OrderType,
    pub stop_order_type: StopOrderType,
    pub exec_fee: Dec,
    pub exec_id: String,
    pub exec_price: Dec,
    pub exec_qty: Dec,
    pub exec_type: ExecType,
    pub exec_value: Dec,
    #[serde(with = "str_i64")]
    pub exec_time: i64,
    /// REST only.
    pub fee_currency: Option<String>,
    pub is_maker: bool,
    pub fee_rate: Dec,
    #[serde(default)]
    pub trade_iv: Dec,
    #[serde(default)]
    pub mark_iv: Dec,
    pub mark_price: Dec,
    #[serde(default)]
    pub index_price: Dec,
    #[serde(default)]
    pub underlying_price: Dec,
    #[serde(default, deserialize_with = "string_or_null")]
    pub block_trade_id: String,
    pub closed_size: Dec,
    /// WebSocket only (`"0"`/`"1"`).
    pub is_leverage: Option<String>,
    /// Realised PnL of this fill (newer answers).
    pub exec_pnl: Option<Dec>,
    pub seq: i64,
}

/// An item of the low-latency `execution.fast` topic: the fill without fees or order details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FastExecution {
    pub category: Category,
    pub symbol: String,
    pub exec_id: String,
    pub exec_price: Dec,
    pub exec_qty: Dec,
    pub order_id: String,
    pub is_maker: bool,
    pub order_link_id: String,
    pub side: Side,
    #[serde(with = "str_i64")]
    pub exec_time: i64,
    pub seq: i64,
}

/// A position: the private `position` topic's items and `/v5/position/list` items. The entry price is `avgPrice`
/// in REST and `entryPrice` on the WebSocket; each side fills its own field.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// WebSocket items only.
    pub category: Option<Category>,
    pub symbol: String,
    /// 0 one-way, 1 hedge buy side, 2 hedge sell side.
    pub position_idx: i32,
    pub risk_id: Option<i64>,
    pub risk_limit_value: Option<Dec>,
    pub side: PositionSide,
    /// Always positive; the direction is `side`.
    pub size: Dec,
    /// REST only.
    pub avg_price: Option<Dec>,
    /// WebSocket only.
    pub entry_price: Option<Dec>,
    pub session_avg_price: Option<Dec>,
    pub position_value: Dec,
    /// 0 cross margin, 1 isolated.
    pub trade_mode: i32,
    pub position_status: PositionStatus,
    pub auto_add_margin: i32,
    pub adl_rank_indicator: i32,
    pub leverage: Dec,
    pub position_balance: Dec,
    pub mark_price: Dec,
    pub liq_price: Dec,
    pub bust_price: Dec,
    #[serde(rename = "positionIM")]
    pub position_im: Dec,
    #[serde(rename = "positionMM")]
    pub position_mm: Dec,
    #[serde(rename = "positionIMByMp")]
    pub position_im_by_mp: Option<Dec>,
    #[serde(rename = "positionMMByMp")]
    pub position_mm_by_mp: Option<Dec>,
    pub tpsl_mode: TpslMode,
    pub take_profit: Dec,
    pub stop_loss: Dec,
    pub trailing_stop: Dec,
    pub unrealised_pnl: Dec,
    pub cur_realised_pnl: Dec,
    pub cum_realised_pnl: Dec,
    pub seq: Option<i64>,
    pub is_reduce_only: Option<bool>,
    pub mmr_sys_updated_time: Option<String>,
    pub leverage_sys_updated_time: Option<String>,
    /// `""` when unknown, written back as `""`.
    #[serialize_always]
    #[serde(with = "opt_str_i64")]
    pub created_time: Option<i64>,
    #[serialize_always]
    #[serde(with = "opt_str_i64")]
    pub updated_time: Option<i64>,
    /// Ms when the position was opened (newer answers; a number, not a string).
    pub open_time: Option<i64>,
}

/// One coin of a wallet.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletCoin {
    pub coin: String,
    pub equity: Dec,
    pub wallet_balance: Dec,
    pub usd_value: Option<Dec>,
    pub locked: Option<Dec>,
    pub borrow_amount: Option<Dec>,
    /// Deprecated by Bybit since 2025-01-09; still sent.
    pub available_to_withdraw: Option<Dec>,
    pub available_to_borrow: Option<Dec>,
    pub accrued_interest: Option<Dec>,
    #[serde(rename = "totalOrderIM")]
    pub total_order_im: Option<Dec>,
    #[serde(rename = "totalPositionIM")]
    pub total_position_im: Option<Dec>,
    #[serde(rename = "totalPositionMM")]
    pub total_position_mm: Option<Dec>,
    pub unrealised_pnl: Option<Dec>,
    pub cum_realised_pnl: Option<Dec>,
    pub bonus: Option<Dec>,
    pub collateral_switch: Option<bool>,
    pub margin_collateral: Option<bool>,
    pub spot_hedging_qty: Option<Dec>,
    pub spot_borrow: Option<Dec>,
}

/// A wallet: the private `wallet` topic's items and `/v5/account/wallet-balance` list items.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    pub account_type: Option<AccountType>,
    #[serde(rename = "accountIMRate")]
    pub account_im_rate: Dec,
    #[serde(rename = "accountMMRate")]
    pub account_mm_rate: Dec,
    #[serde(rename = "accountLTV")]
    pub account_ltv: Option<Dec>,
    pub total_equity: Dec,
    pub total_wallet_balance: Dec,
    pub total_margin_balance: Dec,
    pub total_available_balance: Dec,
    /// Written `totalPerpUPL` (the documented spelling); `totalPerpUpl` is read too.
    #[serde(rename = "totalPerpUPL", alias = "totalPerpUpl")]
    pub total_perp_upl: Dec,
    pub total_initial_margin: Dec,
    pub total_maintenance_margin: Dec,
    pub coin: Vec<WalletCoin>,
}

impl Wallet {
    /// The coin entry named `coin` (e.g. `"USDT"`).
    #[must_use]
    pub fn coin(&self, coin: &str) -> Option<&WalletCoin> {
        self.coin.iter().find(|c| c.coin == coin)
    }
}
