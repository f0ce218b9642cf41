//! Public market endpoints: `/v5/market/time`, `instruments-info`, `orderbook`, `kline`, `recent-trade`, `tickers`.

use apex_core::{Scale, ScaleError, Side, decimals_in};
use serde::{Deserialize, Serialize};

use crate::decimal::Dec;
use crate::enums::{Category, ContractType, InstrumentStatus};
use crate::messages::Ticker;
use crate::rest::ListResult;
use crate::wire::{opt_str_i64, str_i64};

/// `result` of `GET /v5/market/time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    #[serde(with = "str_i64")]
    pub time_second: i64,
    #[serde(with = "str_i64")]
    pub time_nano: i64,
}

/// Query of `GET /v5/market/instruments-info`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentsInfoRequest {
    pub category: Category,
    pub symbol: Option<String>,
    pub status: Option<InstrumentStatus>,
    pub base_coin: Option<String>,
    /// [1, 1000], default 500.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl InstrumentsInfoRequest {
    /// The first page of `category`'s instruments, or only `symbol`'s, with no other filter.
    #[must_use]
    pub fn of(category: Category, symbol: Option<&str>) -> InstrumentsInfoRequest {
        InstrumentsInfoRequest {
            category,
            symbol: symbol.map(str::to_owned),
            status: None,
            base_coin: None,
            limit: None,
            cursor: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeverageFilter {
    pub min_leverage: Dec,
    pub max_leverage: Dec,
    pub leverage_step: Dec,
}

/// `priceFilter`: spot instruments carry only `tickSize`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceFilter {
    pub min_price: Option<Dec>,
    pub max_price: Option<Dec>,
    pub tick_size: Dec,
}

/// `lotSizeFilter`: derivatives use `qtyStep`/`minOrderQty`/`minNotionalValue`, spot `basePrecision`/`minOrderAmt`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LotSizeFilter {
    pub max_order_qty: Option<Dec>,
    pub min_order_qty: Option<Dec>,
    pub qty_step: Option<Dec>,
    pub post_only_max_order_qty: Option<Dec>,
    pub max_mkt_order_qty: Option<Dec>,
    pub min_notional_value: Option<Dec>,
    pub base_precision: Option<Dec>,
    pub quote_precision: Option<Dec>,
    pub min_order_amt: Option<Dec>,
    pub max_order_amt: Option<Dec>,
    pub max_limit_order_qty: Option<Dec>,
    pub max_market_order_qty: Option<Dec>,
}

/// `riskParameters`: the price band a limit order must stay in. For futures the highest buy is
/// `min(max(index, mark * (1 + x)), mark * (1 + y))` and the lowest sell its mirror (Bybit's "Price Limit Mechanism").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RiskParameters {
    pub price_limit_ratio_x: Dec,
    pub price_limit_ratio_y: Dec,
}

/// An item of `instruments-info`. Fields only some categories send are `Option`s.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instrument {
    pub symbol: String,
    pub contract_type: Option<ContractType>,
    pub status: InstrumentStatus,
    pub base_coin: String,
    pub quote_coin: String,
    pub settle_coin: Option<String>,
    #[serde(default, with = "opt_str_i64")]
    pub launch_time: Option<i64>,
    #[serde(default, with = "opt_str_i64")]
    pub delivery_time: Option<i64>,
    pub delivery_fee_rate: Option<Dec>,
    /// Decimals of the price, as a string (`"2"`).
    pub price_scale: Option<String>,
    pub leverage_filter: Option<LeverageFilter>,
    pub price_filter: PriceFilter,
    pub lot_size_filter: LotSizeFilter,
    pub unified_margin_trade: Option<bool>,
    /// Minutes (480 = 8 h).
    pub funding_interval: Option<i64>,
    pub upper_funding_rate: Option<Dec>,
    pub lower_funding_rate: Option<Dec>,
    pub risk_parameters: Option<RiskParameters>,
    pub copy_trading: Option<String>,
    /// Spot.
    pub innovation: Option<String>,
    /// Spot.
    pub margin_trading: Option<String>,
    /// Options: `Call` or `Put`.
    pub options_type: Option<String>,
    pub symbol_type: Option<String>,
    pub symbol_id: Option<i64>,
    /// Spot tokenised stocks.
    pub xstock_multiplier: Option<Dec>,
}

impl Instrument {
    /// Quantity increment: `qtyStep` for derivatives, `basePrecision` for spot.
    #[must_use]
    pub fn qty_step(&self) -> Option<&Dec> {
        self.lot_size_filter.qty_step.as_ref().or(self.lot_size_filter.base_precision.as_ref())
    }

    /// The fixed-point scale of prices: as many decimals as `tickSize` has.
    ///
    /// # Errors
    /// `BadDecimals` for a tick size finer than `apex_core`'s maximum.
    pub fn price_scale(&self) -> Result<Scale, ScaleError> {
        Scale::new(decimals_in(self.price_filter.tick_size.as_str()))
    }

    /// The fixed-point scale of quantities: as many decimals as the quantity step has (0 without one).
    ///
    /// # Errors
    /// `BadDecimals` for a step finer than `apex_core`'s maximum.
    pub fn qty_scale(&self) -> Result<Scale, ScaleError> {
        Scale::new(self.qty_step().map_or(0, |step| decimals_in(step.as_str())))
    }
}

pub type InstrumentsInfoResult = ListResult<Instrument>;

/// Query of `GET /v5/market/orderbook`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderbookRequest {
    pub category: Category,
    pub symbol: String,
    /// Linear/inverse [1, 1000] default 25; spot [1, 1000] default 1.
    pub limit: Option<u32>,
}

/// `result` of `/v5/market/orderbook`: a snapshot; `u` matches the 1000-level WebSocket stream.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderbookResult {
    pub s: String,
    /// `[price, size]`, price descending.
    pub b: Vec<(Dec, Dec)>,
    /// `[price, size]`, price ascending.
    pub a: Vec<(Dec, Dec)>,
    pub ts: i64,
    pub u: u64,
    pub seq: i64,
    pub cts: Option<i64>,
}

/// Query of `GET /v5/market/kline`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KlineRequest {
    /// Linear when absent.
    pub category: Option<Category>,
    pub symbol: String,
    /// One of [`crate::KLINE_INTERVALS`].
    pub interval: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// [1, 1000], default 200.
    pub limit: Option<u32>,
}

/// One candle of `/v5/market/kline`: `[startTime, open, high, low, close, volume, turnover]`, all strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KlineRow(#[serde(with = "str_i64")] pub i64, pub Dec, pub Dec, pub Dec, pub Dec, pub Dec, pub Dec);

impl KlineRow {
    /// Open time, ms.
    #[must_use]
    pub fn start(&self) -> i64 {
        self.0
    }
    #[must_use]
    pub fn open(&self) -> &Dec {
        &self.1
    }
    #[must_use]
    pub fn high(&self) -> &Dec {
        &self.2
    }
    #[must_use]
    pub fn low(&self) -> &Dec {
        &self.3
    }
    #[must_use]
    pub fn close(&self) -> &Dec {
        &self.4
    }
    #[must_use]
    pub fn volume(&self) -> &Dec {
        &self.5
    }
    #[must_use]
    pub fn turnover(&self) -> &Dec {
        &self.6
    }
}

/// `result` of `/v5/market/kline`: newest candle first, the forming candle included.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KlineResult {
    pub category: Option<Category>,
    pub symbol: String,
    pub list: Vec<KlineRow>,
}

/// Query of `GET /v5/market/recent-trade`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentTradeRequest {
    pub category: Category,
    pub symbol: Option<String>,
    pub base_coin: Option<String>,
    pub option_type: Option<String>,
    /// Spot [1, 60] default 60; others [1, 1000] default 500.
    pub limit: Option<u32>,
}

/// An item of `/v5/market/recent-trade`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentTrade {
    pub exec_id: String,
    pub symbol: String,
    pub price: Dec,
    pub size: Dec,
    /// Taker side.
    pub side: Side,
    #[serde(with = "str_i64")]
    pub time: i64,
    pub is_block_trade: bool,
    #[serde(rename = "isRPITrade")]
    pub is_rpi_trade: Option<bool>,
    /// Cross sequence, as a string.
    pub seq: Option<String>,
}

pub type RecentTradeResult = ListResult<RecentTrade>;

/// Query of `GET /v5/market/tickers`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickersRequest {
    pub category: Category,
    pub symbol: Option<String>,
    pub base_coin: Option<String>,
    pub exp_date: Option<String>,
}

pub type TickersResult = ListResult<Ticker>;
