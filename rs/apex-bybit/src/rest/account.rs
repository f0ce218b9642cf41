//! Account endpoints: `GET /v5/position/list`, `/v5/execution/list`, `/v5/account/wallet-balance`.

use serde::{Deserialize, Serialize};

use crate::enums::{AccountType, Category, ExecType};
use crate::records::{Execution, Position, Wallet};
use crate::rest::ListResult;

/// Query of `GET /v5/position/list`: linear needs `symbol` or `settleCoin`. With `symbol` a flat position is
/// listed too; with only `settleCoin`, only positions of non-zero size.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionListRequest {
    pub category: Category,
    pub symbol: Option<String>,
    pub base_coin: Option<String>,
    pub settle_coin: Option<String>,
    /// [1, 200], default 20.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub type PositionListResult = ListResult<Position>;

/// Query of `GET /v5/execution/list`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionListRequest {
    pub category: Category,
    pub symbol: Option<String>,
    pub order_id: Option<String>,
    pub order_link_id: Option<String>,
    pub base_coin: Option<String>,
    /// Ms.
    pub start_time: Option<i64>,
    /// Ms.
    pub end_time: Option<i64>,
    pub exec_type: Option<ExecType>,
    /// [1, 100], default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub type ExecutionListResult = ListResult<Execution>;

/// Query of `GET /v5/account/wallet-balance`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletBalanceRequest {
    pub account_type: AccountType,
    /// Comma-separated coins, e.g. `USDT,BTC`.
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
