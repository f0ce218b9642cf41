//! The exchange's records in Bybit's wire shapes (apex-bybit's types): orders, executions, positions, wallets, and
//! the exact decimal strings they carry; plus the order-book checksum the diagnostics and the soak test compare.

use apex_bybit::{
    AccountType, CancelType, Category, CreateType, Dec, ExecType, Execution, OrderStatus, OrderType, Position,
    PositionSide, PositionStatus, RejectReason, SmpType, StopOrderType, TimeInForce, TpslMode, TriggerBy, Wallet,
    WalletCoin,
};
use apex_core::{CancelReason, Scale, Side};
use apex_sim::InstrumentSpec;
use apex_sim::StopKind;
use apex_sim::exchange::{ExecutionRecord, OrderState, OrderType as ExOrderType, PositionSnapshot, WalletSnapshot};

use crate::clock::VenueClock;

/// Decimals of wallet amounts on the wire (Bybit shows USDT with up to 8).
pub const WALLET_WIRE_DECIMALS: u32 = 8;

/// Writes `units` of a scale with `decimals` decimals, for values beyond `i64`.
#[must_use]
pub fn fixed(units: i128, decimals: u32) -> String {
    if decimals == 0 {
        return units.to_string();
    }
    let factor = 10_u128.pow(decimals);
    let sign = if units < 0 { "-" } else { "" };
    let magnitude = units.unsigned_abs();
    format!("{sign}{}.{:0width$}", magnitude / factor, magnitude % factor, width = decimals as usize)
}

fn dec(text: String) -> Dec {
    Dec::new(text).expect("fixed() writes decimals")
}

/// Drops trailing zeros after the point (keeping at least `keep` decimals).
fn trim(mut text: String, keep: usize) -> String {
    if let Some(point) = text.find('.') {
        while text.len() > point + 1 + keep && text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text
}

/// The scales one symbol writes with.
#[derive(Debug, Clone)]
pub struct Units {
    pub symbol: String,
    pub price: Scale,
    pub qty: Scale,
}

impl Units {
    #[must_use]
    pub fn new(spec: &InstrumentSpec) -> Units {
        Units { symbol: spec.symbol.clone(), price: spec.price_scale, qty: spec.qty_scale }
    }

    #[must_use]
    pub fn price(&self, units: i64) -> Dec {
        Dec::from_units(units, self.price)
    }

    #[must_use]
    pub fn qty(&self, units: i64) -> Dec {
        Dec::from_units(units, self.qty)
    }

    /// `0` when unset, as Bybit writes absent TP/SL/trigger prices.
    fn price_or_zero(&self, units: Option<i64>) -> Dec {
        units.map_or_else(|| Dec::new("0").expect("decimal"), |u| self.price(u))
    }

    /// A price × quantity value (quote units).
    #[must_use]
    pub fn value(&self, value: i128) -> Dec {
        dec(trim(fixed(value, self.price.decimals() + self.qty.decimals()), 0))
    }

    /// `value / qty` as a price with four more decimals than the tick, trailing zeros dropped.
    #[must_use]
    pub fn average(&self, value: i128, qty: i64) -> Dec {
        if qty == 0 {
            return Dec::new("0").expect("decimal");
        }
        let scaled = value * 10_000 / i128::from(qty);
        dec(trim(fixed(scaled, self.price.decimals() + 4), self.price.decimals() as usize))
    }
}

/// A wallet amount (wallet units) as USDT with 8 decimals, truncated toward zero.
#[must_use]
pub fn usdt(amount: i128) -> Dec {
    let per_wire = 10_i128.pow(apex_sim::exchange::WALLET_DECIMALS - WALLET_WIRE_DECIMALS);
    dec(trim(fixed(amount / per_wire, WALLET_WIRE_DECIMALS), 0))
}

/// A ratio as a decimal with 4 decimals (`accountIMRate`).
fn rate(numer: i128, denom: i128) -> Dec {
    if denom <= 0 {
        return Dec::new("0").expect("decimal");
    }
    dec(trim(fixed(numer * 10_000 / denom, 4), 0))
}

/// Bybit's `orderStatus` for linear contracts: `PartiallyFilledCanceled` is spot's; a derivatives order cancelled
/// after it traded part of its quantity is `Cancelled` with a non-zero `cumExecQty`.
fn status(status: apex_core::OrderStatus) -> OrderStatus {
    use apex_core::OrderStatus as S;
    match status {
        S::New => OrderStatus::New,
        S::PartiallyFilled => OrderStatus::PartiallyFilled,
        S::Filled => OrderStatus::Filled,
        S::Cancelled | S::PartiallyFilledCanceled => OrderStatus::Cancelled,
        S::Rejected => OrderStatus::Rejected,
        S::Untriggered => OrderStatus::Untriggered,
        S::Triggered => OrderStatus::Triggered,
        S::Deactivated => OrderStatus::Deactivated,
    }
}

fn reject_reason(reason: Option<apex_core::RejectReason>) -> RejectReason {
    use apex_core::RejectReason as R;
    match reason {
        None => RejectReason::NoError,
        Some(R::InvalidQty) => RejectReason::QtyCannotBeZero,
        Some(R::InvalidPrice) => RejectReason::InvalidPriceScale,
        Some(R::NoLiquidity) => RejectReason::NoImmediateQtyToFill,
        Some(R::PostOnlyWouldTake) => RejectReason::PostOnlyWillTakeLiquidity,
        Some(R::FokUnfillable) => RejectReason::NoEnoughQtyToFill,
        Some(R::ReduceOnlyWouldIncrease) => RejectReason::Others,
        Some(R::UnknownOrder | R::NothingToAmend | R::AmendBelowFilled | R::NoPosition) => RejectReason::Others,
    }
}

fn cancel_type(order: &OrderState) -> CancelType {
    match (order.status, order.cancel_reason, order.reject_reason) {
        (apex_core::OrderStatus::Deactivated, _, _) => CancelType::CancelByTpSlTsClear,
        (_, Some(CancelReason::User), _) => CancelType::CancelByUser,
        (_, Some(CancelReason::SelfTrade), _) => CancelType::CancelBySmp,
        (_, Some(CancelReason::ReduceOnly), _) | (_, _, Some(apex_core::RejectReason::ReduceOnlyWouldIncrease)) => {
            CancelType::CancelByReduceOnly
        }
        _ => CancelType::Unknown,
    }
}

fn tif(tif: apex_core::TimeInForce) -> TimeInForce {
    match tif {
        apex_core::TimeInForce::Gtc => TimeInForce::Gtc,
        apex_core::TimeInForce::Ioc => TimeInForce::Ioc,
        apex_core::TimeInForce::Fok => TimeInForce::Fok,
        apex_core::TimeInForce::PostOnly => TimeInForce::PostOnly,
    }
}

fn order_type(kind: ExOrderType) -> OrderType {
    match kind {
        ExOrderType::Limit => OrderType::Limit,
        ExOrderType::Market => OrderType::Market,
    }
}

fn stop_order_type(stop: Option<StopKind>) -> StopOrderType {
    match stop {
        None => StopOrderType::None,
        Some(StopKind::TakeProfit) => StopOrderType::TakeProfit,
        Some(StopKind::StopLoss) => StopOrderType::StopLoss,
    }
}

fn create_type(stop: Option<StopKind>) -> CreateType {
    match stop {
        None => CreateType::CreateByUser,
        Some(StopKind::TakeProfit) => CreateType::CreateByTakeProfit,
        Some(StopKind::StopLoss) => CreateType::CreateByStopLoss,
    }
}

/// An order record (`order` topic, `order/realtime`, `order/history`).
#[must_use]
pub fn order(units: &Units, clock: &VenueClock, o: &OrderState) -> apex_bybit::Order {
    let limit = o.price.map_or_else(|| Dec::new("0").expect("decimal"), |p| units.price(p));
    let leaves_value = o.price.map_or(0, |p| i128::from(p) * i128::from(o.leaves_qty));
    let has_tpsl = o.take_profit.is_some() || o.stop_loss.is_some() || o.stop.is_some();
    let trigger_direction = match (o.stop, o.side) {
        // A stop's trigger is crossed upwards (1) for a take profit of a long / stop loss of a short.
        (Some(StopKind::TakeProfit), Side::Sell) | (Some(StopKind::StopLoss), Side::Buy) => 1,
        (Some(_), _) => 2,
        (None, _) => 0,
    };
    apex_bybit::Order {
        category: Some(Category::Linear),
        symbol: units.symbol.clone(),
        order_id: o.order_id.clone(),
        order_link_id: o.order_link_id.clone(),
        block_trade_id: String::new(),
        is_leverage: None,
        side: o.side,
        order_type: order_type(o.order_type),
        price: limit,
        qty: units.qty(o.qty),
        time_in_force: tif(o.tif),
        order_status: status(o.status),
        position_idx: 0,
        create_type: Some(create_type(o.stop)),
        cancel_type: cancel_type(o),
        reject_reason: reject_reason(o.reject_reason),
        avg_price: if o.cum_exec_qty == 0 { Dec::EMPTY } else { units.average(o.cum_exec_value, o.cum_exec_qty) },
        leaves_qty: units.qty(o.leaves_qty),
        leaves_value: units.value(leaves_value),
        cum_exec_qty: units.qty(o.cum_exec_qty),
        cum_exec_value: units.value(o.cum_exec_value),
        cum_exec_fee: usdt(o.cum_exec_fee),
        fee_currency: Some("USDT".into()),
        stop_order_type: stop_order_type(o.stop),
        order_iv: Dec::EMPTY,
        trigger_price: units.price_or_zero(o.trigger_price),
        take_profit: units.price_or_zero(o.take_profit),
        stop_loss: units.price_or_zero(o.stop_loss),
        tpsl_mode: if has_tpsl { TpslMode::Full } else { TpslMode::None },
        tp_limit_price: units.price_or_zero(None),
        sl_limit_price: units.price_or_zero(None),
        tp_trigger_by: if o.take_profit.is_some() { TriggerBy::LastPrice } else { TriggerBy::None },
        sl_trigger_by: if o.stop_loss.is_some() { TriggerBy::LastPrice } else { TriggerBy::None },
        trigger_direction,
        trigger_by: if o.stop.is_some() { TriggerBy::LastPrice } else { TriggerBy::None },
        last_price_on_created: units.price_or_zero(o.last_price_on_created),
        reduce_only: o.reduce_only || o.stop.is_some(),
        close_on_trigger: o.close_on_trigger,
        place_type: String::new(),
        smp_type: SmpType::None,
        smp_group: 0,
        smp_order_id: String::new(),
        created_time: clock.market_ms(o.created_us),
        updated_time: clock.market_ms(o.updated_us),
    }
}

/// An execution record (`execution` topic, `execution/list`).
#[must_use]
pub fn execution(units: &Units, clock: &VenueClock, e: &ExecutionRecord) -> Execution {
    Execution {
        category: Some(Category::Linear),
        symbol: units.symbol.clone(),
        order_id: e.order_id.clone(),
        order_link_id: e.order_link_id.clone(),
        side: e.side,
        order_price: e.order_price.map_or_else(|| Dec::new("0").expect("decimal"), |p| units.price(p)),
        order_qty: units.qty(e.order_qty),
        leaves_qty: units.qty(e.leaves_qty),
        create_type: Some(create_type(e.stop)),
        order_type: order_type(e.order_type),
        stop_order_type: stop_order_type(e.stop),
        exec_fee: usdt(e.fee),
        exec_id: e.exec_id.clone(),
        exec_price: units.price(e.price),
        exec_qty: units.qty(e.qty),
        exec_type: ExecType::Trade,
        exec_value: units.value(i128::from(e.price) * i128::from(e.qty)),
        exec_time: clock.market_ms(e.ts_us),
        fee_currency: Some("USDT".into()),
        is_maker: e.is_maker,
        fee_rate: dec(trim(fixed(i128::from(e.fee_rate_e8), 8), 0)),
        trade_iv: Dec::EMPTY,
        mark_iv: Dec::EMPTY,
        mark_price: units.price(e.mark_price),
        index_price: Dec::EMPTY,
        underlying_price: Dec::EMPTY,
        block_trade_id: String::new(),
        closed_size: units.qty(e.closed_qty),
        is_leverage: None,
        exec_pnl: None,
        seq: e.seq as i64,
    }
}

/// A position record (`position` topic, `position/list`).
#[must_use]
pub fn position(units: &Units, clock: &VenueClock, p: &PositionSnapshot) -> Position {
    let side = match p.size.signum() {
        1 => PositionSide::Buy,
        -1 => PositionSide::Sell,
        _ => PositionSide::None,
    };
    let entry =
        dec(trim(fixed(i128::from(p.entry_price_e4), units.price.decimals() + 4), units.price.decimals() as usize));
    Position {
        category: Some(Category::Linear),
        symbol: units.symbol.clone(),
        position_idx: 0,
        risk_id: Some(1),
        risk_limit_value: Some(Dec::new("2000000").expect("decimal")),
        side,
        size: units.qty(p.size.abs()),
        avg_price: Some(entry.clone()),
        entry_price: Some(entry),
        session_avg_price: None,
        position_value: units.value(p.value),
        trade_mode: 0,
        position_status: PositionStatus::Normal,
        auto_add_margin: 0,
        adl_rank_indicator: i32::from(p.size != 0) * 2,
        leverage: dec(trim(fixed(i128::from(p.leverage_x100), 2), 0)),
        position_balance: usdt(p.initial_margin),
        mark_price: units.price(p.mark_price),
        liq_price: Dec::EMPTY,
        bust_price: Dec::EMPTY,
        position_im: usdt(p.initial_margin),
        position_mm: usdt(p.maintenance_margin),
        position_im_by_mp: None,
        position_mm_by_mp: None,
        tpsl_mode: TpslMode::Full,
        take_profit: units.price_or_zero(p.take_profit),
        stop_loss: units.price_or_zero(p.stop_loss),
        trailing_stop: Dec::new("0").expect("decimal"),
        unrealised_pnl: usdt(p.unrealised_pnl),
        cur_realised_pnl: usdt(p.cur_realised_pnl),
        cum_realised_pnl: usdt(p.cum_realised_pnl),
        seq: Some(p.seq as i64),
        is_reduce_only: Some(false),
        mmr_sys_updated_time: Some(String::new()),
        leverage_sys_updated_time: Some(String::new()),
        created_time: Some(clock.market_ms(p.created_us)),
        updated_time: Some(clock.market_ms(p.updated_us)),
        open_time: None,
    }
}

/// The UNIFIED wallet record with its USDT coin (`wallet` topic, `account/wallet-balance`).
#[must_use]
pub fn wallet(w: &WalletSnapshot) -> Wallet {
    let zero = || Dec::new("0").expect("decimal");
    Wallet {
        account_type: Some(AccountType::Unified),
        account_im_rate: rate(w.position_im + w.order_im, w.equity),
        account_mm_rate: rate(w.position_mm, w.equity),
        account_ltv: Some(zero()),
        total_equity: usdt(w.equity),
        total_wallet_balance: usdt(w.wallet_balance),
        total_margin_balance: usdt(w.equity),
        total_available_balance: usdt(w.available.max(0)),
        total_perp_upl: usdt(w.unrealised_pnl),
        total_initial_margin: usdt(w.position_im + w.order_im),
        total_maintenance_margin: usdt(w.position_mm),
        coin: vec![WalletCoin {
            coin: "USDT".into(),
            equity: usdt(w.equity),
            wallet_balance: usdt(w.wallet_balance),
            usd_value: Some(usdt(w.equity)),
            locked: Some(zero()),
            borrow_amount: Some(zero()),
            available_to_withdraw: Some(usdt(w.available.max(0))),
            available_to_borrow: Some(Dec::EMPTY),
            accrued_interest: Some(zero()),
            total_order_im: Some(usdt(w.order_im)),
            total_position_im: Some(usdt(w.position_im)),
            total_position_mm: Some(usdt(w.position_mm)),
            unrealised_pnl: Some(usdt(w.unrealised_pnl)),
            cum_realised_pnl: Some(usdt(w.cum_realised_pnl)),
            bonus: Some(zero()),
            collateral_switch: Some(true),
            margin_collateral: Some(true),
            spot_hedging_qty: None,
            spot_borrow: Some(zero()),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_strings() {
        assert_eq!(fixed(1_234_567, 3), "1234.567");
        assert_eq!(fixed(-5, 3), "-0.005");
        assert_eq!(fixed(7, 0), "7");
        assert_eq!(usdt(10_i128.pow(18) * 10_000), Dec::new("10000").unwrap());
        assert_eq!(usdt(-1_234_500_000_000_000_000), Dec::new("-1.2345").unwrap());
        let units = Units::new(&InstrumentSpec::bybit_linear("BTCUSDT", "0.1", "0.001", "0.001").unwrap());
        assert_eq!(units.price(1_080_005).as_str(), "108000.5");
        // (100000.0 * 0.001 + 100000.5 * 0.002) / 0.003 = 100000.3333...
        let value = 1_000_000 + 1_000_005 * 2;
        assert_eq!(units.average(value, 3).as_str(), "100000.33333");
        assert_eq!(units.value(value).as_str(), "300.001");
        assert_eq!(rate(1, 3).as_str(), "0.3333");
    }
}
