//! Account endpoints: `GET /v5/position/list`, `/v5/execution/list`, `/v5/account/wallet-balance`.

use serde::{Deserialize, Serialize};

use crate::enums::{AccountType, Category, ExecType};
use crate::records::{Execution, Position, Wallet};
use crate::rest::ListResult;

/// Query of `GET /v5/position/list`: linear needs `symbol` or `settleCoin`. With `symbol` a flat position is
/// listed too; with only `settleCoin`, only positions of non-zero size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionListRequest {
    pub category: Category,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_coin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_coin: Option<String>,
    /// [1, 200], default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

pub type PositionListResult = ListResult<Position>;

/// Query of `GET /v5/execution/list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionListRequest {
    pub category: Category,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_link_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_coin: Option<String>,
    /// Ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_type: Option<ExecType>,
    /// [1, 100], default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

pub type ExecutionListResult = ListResult<Execution>;

/// Query of `GET /v5/account/wallet-balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletBalanceRequest {
    pub account_type: AccountType,
    /// Comma-separated coins, e.g. `USDT,BTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coin: Option<String>,
}

impl Default for WalletBalanceRequest {
    fn default() -> WalletBalanceRequest {
        WalletBalanceRequest { account_type: AccountType::Unified, coin: None }
    }
}

/// `result` of wallet-balance: one wallet per account type asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalanceResult {
    pub list: Vec<Wallet>,
}
