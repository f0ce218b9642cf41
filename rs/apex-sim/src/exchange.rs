//! A USDT linear perpetual exchange over several open-ended markets (one per symbol): accounts in one-way mode with a
//! USDT wallet, positions with entry price and leverage, initial margin for positions and open orders, fees, orders
//! named by the exchange's order id and the client's `orderLinkId`, position take-profit/stop-loss, and the
//! per-account order/execution/position/wallet updates a venue turns into Bybit's private topics.
//!
//! Requests are checked when the exchange receives them (the REST answer: parameters, `orderLinkId`, balance) and
//! take effect in the market after the account's latency. Amounts are exact: prices and quantities in the symbol's
//! integer units, cash in `WALLET_DECIMALS` fixed point.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use apex_core::{AccountId, CancelReason, Liquidity, NewOrder, OrderStatus, RejectReason, Side, StpMode, TimeInForce};
use thiserror::Error;

use crate::dsg::Dsg;
use crate::market::{AccountEventKind, ExternalRequest, Market, SimConfig, StopKind, StopSpec, Stops};
use crate::spec::MAX_ORDER_PRICE_UNITS;
use crate::{InstrumentSpec, SimError};

/// Decimals of wallet amounts (USDT): fine enough for every symbol's cash unit, so no fee or PnL ever rounds.
pub const WALLET_DECIMALS: u32 = 18;
/// Closed orders kept per account for `order/history` (older ones are forgotten).
pub const ORDER_HISTORY: usize = 1_000;
/// Executions kept per account for `execution/list`.
pub const EXECUTION_HISTORY: usize = 2_000;
/// Open orders an account may have per symbol (Bybit's limit for perpetuals).
pub const MAX_OPEN_ORDERS: usize = 500;
/// Default leverage of a new position, in hundredths (10x).
pub const DEFAULT_LEVERAGE_X100: i64 = 1_000;
/// Largest leverage accepted, in hundredths.
pub const MAX_LEVERAGE_X100: i64 = 10_000;

/// Why the exchange refused a request (each maps to one Bybit retCode in the venue).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExchangeError {
    #[error("symbol {0} is not traded here")]
    UnknownSymbol(String),
    #[error("{0}")]
    Param(String),
    #[error("order does not exist")]
    OrderNotFound,
    #[error("orderLinkId {0} is already used")]
    DuplicateOrderLinkId(String),
    #[error("available balance is insufficient")]
    InsufficientBalance,
    /// A limit price above the instrument's `maxPrice` or outside the order price limits around the mark price
    /// (Bybit's 110003).
    #[error("{0}")]
    PriceOutOfRange(String),
    #[error("more than {MAX_OPEN_ORDERS} open orders")]
    TooManyOrders,
    #[error("can not set tp/sl for a zero position")]
    NoPosition,
    #[error("leverage not modified")]
    LeverageNotModified,
}

/// Limit or market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderType {
    Limit,
    Market,
}

/// A new order as a client asks for it (prices and quantities in the symbol's units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub symbol: usize,
    pub side: Side,
    pub order_type: OrderType,
    pub qty: i64,
    /// Limit price (required for limit orders, ignored for market orders).
    pub price: Option<i64>,
    pub tif: TimeInForce,
    pub order_link_id: String,
    pub reduce_only: bool,
    pub close_on_trigger: bool,
    /// Take-profit/stop-loss trigger prices the position gets once the order trades.
    pub take_profit: Option<i64>,
    pub stop_loss: Option<i64>,
    pub stp: StpMode,
}

/// How a request names an existing order: by the exchange's order id or the client's `orderLinkId` (the order id
/// wins when both are given, as on Bybit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderRef<'a> {
    pub order_id: Option<&'a str>,
    pub order_link_id: Option<&'a str>,
}

impl<'a> OrderRef<'a> {
    #[must_use]
    pub fn id(order_id: &'a str) -> OrderRef<'a> {
        OrderRef { order_id: Some(order_id), order_link_id: None }
    }

    #[must_use]
    pub fn link(order_link_id: &'a str) -> OrderRef<'a> {
        OrderRef { order_id: None, order_link_id: Some(order_link_id) }
    }
}

/// The answer to an order request: the order's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderAck {
    pub order_id: String,
    pub order_link_id: String,
}

/// One order as the exchange tracks it (what `order` updates and the order lists show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: usize,
    pub side: Side,
    pub order_type: OrderType,
    /// Limit price; `None` for market and conditional orders.
    pub price: Option<i64>,
    pub qty: i64,
    pub tif: TimeInForce,
    pub status: OrderStatus,
    pub reject_reason: Option<RejectReason>,
    pub cancel_reason: Option<CancelReason>,
    pub cum_exec_qty: i64,
    /// Sum of price × quantity of the fills, in price units × quantity units.
    pub cum_exec_value: i128,
    /// Fees paid, in wallet units.
    pub cum_exec_fee: i128,
    pub leaves_qty: i64,
    pub reduce_only: bool,
    pub close_on_trigger: bool,
    /// Take-profit or stop-loss order of a position.
    pub stop: Option<StopKind>,
    pub trigger_price: Option<i64>,
    pub take_profit: Option<i64>,
    pub stop_loss: Option<i64>,
    /// Last price when the order was created.
    pub last_price_on_created: Option<i64>,
    pub created_us: i64,
    pub updated_us: i64,
}

/// One fill of an account (an `execution` update and a row of `execution/list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRecord {
    /// Unique per exchange: the trade id and the side of the trade the account was on.
    pub exec_id: String,
    pub symbol: usize,
    pub order_id: String,
    pub order_link_id: String,
    pub side: Side,
    pub price: i64,
    pub qty: i64,
    /// Fee in wallet units (negative for a rebate).
    pub fee: i128,
    /// Fee rate in units of 1e-8.
    pub fee_rate_e8: i64,
    pub is_maker: bool,
    pub leaves_qty: i64,
    pub order_qty: i64,
    pub order_price: Option<i64>,
    pub order_type: OrderType,
    pub stop: Option<StopKind>,
    /// Part of the fill that closed position.
    pub closed_qty: i64,
    pub mark_price: i64,
    pub ts_us: i64,
    pub seq: u64,
}

/// A position as `position` updates and `position/list` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionSnapshot {
    pub symbol: usize,
    /// Signed size in quantity units (positive long).
    pub size: i64,
    /// Entry price × 10^4 in price units (entry value / size, with four more decimals than the tick).
    pub entry_price_e4: i64,
    pub leverage_x100: i64,
    pub mark_price: i64,
    /// Position value at entry, price units × quantity units.
    pub value: i128,
    /// In wallet units.
    pub unrealised_pnl: i128,
    pub cur_realised_pnl: i128,
    pub cum_realised_pnl: i128,
    pub initial_margin: i128,
    pub maintenance_margin: i128,
    pub take_profit: Option<i64>,
    pub stop_loss: Option<i64>,
    pub created_us: i64,
    pub updated_us: i64,
    pub seq: u64,
}

/// The USDT wallet as `wallet` updates and `wallet-balance` show it (all in wallet units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletSnapshot {
    pub wallet_balance: i128,
    pub unrealised_pnl: i128,
    pub equity: i128,
    pub position_im: i128,
    pub position_mm: i128,
    pub order_im: i128,
    pub available: i128,
    pub cum_realised_pnl: i128,
}

/// What changed for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountUpdate {
    Order(AccountId, OrderState),
    Execution(AccountId, ExecutionRecord),
    Position(AccountId, PositionSnapshot),
    Wallet(AccountId, WalletSnapshot),
}

impl AccountUpdate {
    /// The account it belongs to.
    #[must_use]
    pub fn account(&self) -> AccountId {
        match self {
            AccountUpdate::Order(a, _)
            | AccountUpdate::Execution(a, _)
            | AccountUpdate::Position(a, _)
            | AccountUpdate::Wallet(a, _) => *a,
        }
    }
}

/// One symbol's market and what the exchange derives from it.
struct Symbol {
    market: Market,
    spec: InstrumentSpec,
    /// Multiplier from price units × quantity units to wallet units.
    value_to_wallet: i128,
    /// Multiplier from the market's cash units to wallet units.
    cash_to_wallet: i128,
    /// The market's account id of each exchange account (index = exchange account).
    market_account: Vec<AccountId>,
    last_price: Option<i64>,
}

/// Position bookkeeping of one account on one symbol.
#[derive(Debug, Clone, Default)]
struct Position {
    size: i64,
    /// Entry value of the open size, price units × quantity units.
    entry_value: i128,
    leverage_x100: i64,
    cur_realised: i128,
    cum_realised: i128,
    created_us: i64,
    updated_us: i64,
}

/// One exchange account.
struct Account {
    wallet: i128,
    positions: Vec<Position>,
    /// Open orders (and waiting stops) by tag.
    open: BTreeMap<u64, OrderState>,
    /// `orderLinkId`s of the open orders and of those still in the history: a retried create of an order that already
    /// went through (even if it has filled since) is refused, never placed twice.
    links: BTreeMap<String, u64>,
    history: VecDeque<OrderState>,
    executions: VecDeque<ExecutionRecord>,
    /// Tags of the position stops waiting per symbol (take profit, stop loss).
    stop_tags: Vec<(Option<u64>, Option<u64>)>,
    /// Open orders whose cancel is on its way to the market: a second cancel or an amend of one is answered as
    /// Bybit answers it once the first cancel went through ("order not exists or too late to cancel").
    cancels_sent: BTreeSet<u64>,
}

/// The exchange: its markets, its accounts, and the updates waiting to be drained.
pub struct Exchange {
    symbols: Vec<Symbol>,
    accounts: Vec<Account>,
    next_tag: u64,
    salt: u64,
    now_us: i64,
    seq: u64,
    updates: Vec<AccountUpdate>,
}

impl Exchange {
    /// An exchange trading one open-ended market per config (each with its own seed), started at time 0.
    ///
    /// # Errors
    /// What [`Market::open_ended`] finds wrong with a config.
    pub fn new(dsg: &Dsg, configs: &[SimConfig]) -> Result<Exchange, SimError> {
        let mut symbols = Vec::new();
        for config in configs {
            let mut market = Market::open_ended(dsg, config)?;
            market.start(None);
            market.stream_public_trades();
            let spec = config.spec.clone();
            let value_decimals = spec.price_scale.decimals() + spec.qty_scale.decimals();
            symbols.push(Symbol {
                market,
                value_to_wallet: 10_i128.pow(WALLET_DECIMALS - value_decimals),
                cash_to_wallet: 10_i128.pow(WALLET_DECIMALS - spec.cash_decimals()),
                spec,
                market_account: Vec::new(),
                last_price: None,
            });
        }
        let salt = configs.first().map_or(0, |c| c.seed);
        Ok(Exchange { symbols, accounts: Vec::new(), next_tag: 1, salt, now_us: 0, seq: 0, updates: Vec::new() })
    }

    /// Opens an account with `wallet` USDT (wallet units) and an order-entry latency; returns its index.
    pub fn add_account(&mut self, wallet: i128, latency_us: i64) -> AccountId {
        let id = self.accounts.len() as AccountId;
        for symbol in &mut self.symbols {
            let market_id = symbol.market.add_account(latency_us);
            symbol.market_account.push(market_id);
        }
        let positions =
            vec![Position { leverage_x100: DEFAULT_LEVERAGE_X100, ..Position::default() }; self.symbols.len()];
        self.accounts.push(Account {
            wallet,
            positions,
            open: BTreeMap::new(),
            links: BTreeMap::new(),
            history: VecDeque::new(),
            executions: VecDeque::new(),
            stop_tags: vec![(None, None); self.symbols.len()],
            cancels_sent: BTreeSet::new(),
        });
        id
    }

    /// Number of symbols.
    #[must_use]
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    /// The market of a symbol.
    #[must_use]
    pub fn market(&self, symbol: usize) -> &Market {
        &self.symbols[symbol].market
    }

    /// The market of a symbol, to drain its public streams or add L2 streams.
    pub fn market_mut(&mut self, symbol: usize) -> &mut Market {
        &mut self.symbols[symbol].market
    }

    /// Index of a symbol by name.
    #[must_use]
    pub fn symbol_index(&self, name: &str) -> Option<usize> {
        self.symbols.iter().position(|s| s.spec.symbol == name)
    }

    /// The instrument of a symbol.
    #[must_use]
    pub fn spec(&self, symbol: usize) -> &InstrumentSpec {
        &self.symbols[symbol].spec
    }

    /// Simulated time reached.
    #[must_use]
    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    /// The last traded price of a symbol (the mid before its first trade).
    #[must_use]
    pub fn last_price(&self, symbol: usize) -> i64 {
        let s = &self.symbols[symbol];
        s.last_price.unwrap_or_else(|| mark_of(s))
    }

    /// Runs every market until `until_us` and turns what happened to the accounts into updates.
    pub fn advance_until(&mut self, until_us: i64) {
        for index in 0..self.symbols.len() {
            self.symbols[index].market.advance_until(until_us, None);
            let events: Vec<_> = self.symbols[index].market.drain_account_events().collect();
            self.absorb(index, &events);
        }
        self.now_us = self.now_us.max(until_us);
    }

    /// Updates since the last call, in the order they happened per symbol.
    pub fn drain_updates(&mut self) -> std::vec::Drain<'_, AccountUpdate> {
        self.updates.drain(..)
    }

    /// Places an order for `account` received at `now_us`: checked now, in the market after the account's latency.
    ///
    /// # Errors
    /// `Param` for a quantity off the instrument's grid or above `maxOrderQty` (`maxMktOrderQty` for a market order),
    /// a price off the grid or a missing limit price; `PriceOutOfRange` for a limit price above `maxPrice` or outside
    /// the price limits around the mark; `DuplicateOrderLinkId`, `TooManyOrders`, `InsufficientBalance` when the
    /// order's initial margin exceeds the available balance.
    pub fn create_order(
        &mut self,
        now_us: i64,
        account: AccountId,
        request: OrderRequest,
    ) -> Result<OrderAck, ExchangeError> {
        let symbol = request.symbol;
        let s = self.symbols.get(symbol).ok_or_else(|| ExchangeError::UnknownSymbol(symbol.to_string()))?;
        let spec = &s.spec;
        check_qty(spec, request.order_type, request.qty)?;
        let price = match request.order_type {
            OrderType::Limit => {
                let price =
                    request.price.ok_or_else(|| ExchangeError::Param("price is required for a limit order".into()))?;
                check_limit_price(s, request.side, price)?;
                Some(price)
            }
            OrderType::Market => None,
        };
        let last = self.last_price(symbol);
        let reference = price.unwrap_or(last);
        for (name, trigger, above) in
            [("TakeProfit", request.take_profit, true), ("StopLoss", request.stop_loss, false)]
        {
            if let Some(trigger) = trigger {
                let wants_above = above == (request.side == Side::Buy);
                if trigger <= 0
                    || trigger % spec.tick != 0
                    || (wants_above && trigger <= reference)
                    || (!wants_above && trigger >= reference)
                {
                    let relation = if wants_above { "higher" } else { "lower" };
                    return Err(ExchangeError::Param(format!(
                        "{name}:{trigger} set for {:?} position should be {relation} than base_price:{reference}",
                        request.side
                    )));
                }
            }
        }
        let acc = self
            .accounts
            .get(account as usize)
            .ok_or_else(|| ExchangeError::Param(format!("unknown account {account}")))?;
        if !request.order_link_id.is_empty() && acc.links.contains_key(&request.order_link_id) {
            return Err(ExchangeError::DuplicateOrderLinkId(request.order_link_id.clone()));
        }
        if acc.open.values().filter(|o| o.symbol == symbol && o.stop.is_none()).count() >= MAX_OPEN_ORDERS {
            return Err(ExchangeError::TooManyOrders);
        }
        if !request.reduce_only && !request.close_on_trigger {
            let extra = self.added_order_margin(account, symbol, request.side, request.qty, reference);
            if extra > self.wallet_snapshot(account).available {
                return Err(ExchangeError::InsufficientBalance);
            }
        }
        let tag = self.new_tag();
        let order_id = self.order_id(tag);
        let attach = Stops {
            take_profit: request
                .take_profit
                .map(|trigger_price| StopSpec { tag: self.next_tag_peek(0), trigger_price }),
            stop_loss: request.stop_loss.map(|trigger_price| StopSpec { tag: self.next_tag_peek(1), trigger_price }),
        };
        // Reserve the stops' tags (they become conditional orders when the order trades).
        if attach.take_profit.is_some() || attach.stop_loss.is_some() {
            self.next_tag += 2;
        }
        let kind = match request.order_type {
            OrderType::Limit => apex_core::OrderKind::Limit { price: price.unwrap_or_default(), tif: request.tif },
            OrderType::Market => apex_core::OrderKind::Market,
        };
        let order = NewOrder {
            account: 0,
            side: request.side,
            qty: request.qty,
            kind,
            reduce_only: request.reduce_only || request.close_on_trigger,
            stp: request.stp,
        };
        let market_account = self.symbols[symbol].market_account[account as usize];
        self.symbols[symbol]
            .market
            .send_request(now_us, market_account, ExternalRequest::Submit { tag, order, attach })
            .expect("every exchange account is an outside account of every market");
        let state = OrderState {
            order_id: order_id.clone(),
            order_link_id: request.order_link_id.clone(),
            symbol,
            side: request.side,
            order_type: request.order_type,
            price,
            qty: request.qty,
            tif: if request.order_type == OrderType::Market { TimeInForce::Ioc } else { request.tif },
            status: OrderStatus::New,
            reject_reason: None,
            cancel_reason: None,
            cum_exec_qty: 0,
            cum_exec_value: 0,
            cum_exec_fee: 0,
            leaves_qty: request.qty,
            reduce_only: request.reduce_only,
            close_on_trigger: request.close_on_trigger,
            stop: None,
            trigger_price: None,
            take_profit: request.take_profit,
            stop_loss: request.stop_loss,
            last_price_on_created: Some(last),
            created_us: now_us,
            updated_us: now_us,
        };
        let acc = &mut self.accounts[account as usize];
        if !state.order_link_id.is_empty() {
            acc.links.insert(state.order_link_id.clone(), tag);
        }
        acc.open.insert(tag, state);
        Ok(OrderAck { order_id, order_link_id: request.order_link_id })
    }

    /// Changes the price and/or total quantity of an open order named by `order_id` or `order_link_id`. The order as
    /// amended is checked as a new one would be: an amend must not reach what a create is refused.
    ///
    /// # Errors
    /// `OrderNotFound` for an order that is not open; `Param` for values off the grid, a quantity above
    /// `maxOrderQty` or nothing to change; `PriceOutOfRange` as for [`Exchange::create_order`];
    /// `InsufficientBalance` when the amended order needs more initial margin than is available.
    pub fn amend_order(
        &mut self,
        now_us: i64,
        account: AccountId,
        symbol: usize,
        order: OrderRef<'_>,
        qty: Option<i64>,
        price: Option<i64>,
    ) -> Result<OrderAck, ExchangeError> {
        let tag = self.find_open(account, symbol, order)?;
        let s = &self.symbols[symbol];
        let open = &self.accounts[account as usize].open[&tag];
        if open.stop.is_some() || open.order_type == OrderType::Market {
            return Err(ExchangeError::Param("only open limit orders can be amended".into()));
        }
        if let Some(qty) = qty {
            check_qty(&s.spec, OrderType::Limit, qty)?;
        }
        if let Some(price) = price {
            check_limit_price(s, open.side, price)?;
        }
        if qty.is_none_or(|q| q == open.qty) && price.is_none_or(|p| Some(p) == open.price) {
            return Err(ExchangeError::Param("nothing to amend".into()));
        }
        // The margin check of a create, with the order's old margin given back. An amend that lowers the margin is
        // always allowed, even on an account already short of margin; a total at or below the filled quantity is
        // the engine's to refuse.
        let leaves = qty.map_or(open.leaves_qty, |q| q - open.cum_exec_qty);
        if !open.reduce_only && !open.close_on_trigger && leaves > 0 {
            let amended = (open.side, leaves, price.or(open.price).expect("an open limit order has a price"));
            let extra = self.order_margin(account, symbol, Some(amended), Some(tag))
                - self.order_margin(account, symbol, None, None);
            if extra > 0 && extra > self.wallet_snapshot(account).available {
                return Err(ExchangeError::InsufficientBalance);
            }
        }
        let open = &self.accounts[account as usize].open[&tag];
        let ack = OrderAck { order_id: open.order_id.clone(), order_link_id: open.order_link_id.clone() };
        let market_account = self.symbols[symbol].market_account[account as usize];
        let request = ExternalRequest::Amend { tag, price, total_qty: qty };
        self.symbols[symbol].market.send_request(now_us, market_account, request).expect("outside account");
        Ok(ack)
    }

    /// Cancels an open order named by `order_id` or `order_link_id` (a waiting take-profit/stop-loss too).
    ///
    /// # Errors
    /// `OrderNotFound` for an order that is not open.
    pub fn cancel_order(
        &mut self,
        now_us: i64,
        account: AccountId,
        symbol: usize,
        order: OrderRef<'_>,
    ) -> Result<OrderAck, ExchangeError> {
        let tag = self.find_open(account, symbol, order)?;
        let open = &self.accounts[account as usize].open[&tag];
        let ack = OrderAck { order_id: open.order_id.clone(), order_link_id: open.order_link_id.clone() };
        if open.stop.is_none() {
            self.accounts[account as usize].cancels_sent.insert(tag);
        }
        let open = &self.accounts[account as usize].open[&tag];
        let market_account = self.symbols[symbol].market_account[account as usize];
        let request = match open.stop {
            Some(kind) => {
                // Cancelling one stop keeps the other.
                let mut stops = self.symbols[symbol].market.stops(market_account);
                match kind {
                    StopKind::TakeProfit => stops.take_profit = None,
                    StopKind::StopLoss => stops.stop_loss = None,
                }
                ExternalRequest::SetStops(stops)
            }
            None => ExternalRequest::Cancel { tag },
        };
        self.symbols[symbol].market.send_request(now_us, market_account, request).expect("outside account");
        Ok(ack)
    }

    /// Cancels every open order of `account` (on one symbol, or all); returns the ids of those cancelled.
    pub fn cancel_all(&mut self, now_us: i64, account: AccountId, symbol: Option<usize>) -> Vec<OrderAck> {
        let targets: Vec<(usize, String)> = self.accounts[account as usize]
            .open
            .values()
            .filter(|o| symbol.is_none_or(|s| o.symbol == s) && o.stop.is_none())
            .map(|o| (o.symbol, o.order_id.clone()))
            .collect();
        targets
            .into_iter()
            .filter_map(|(s, id)| self.cancel_order(now_us, account, s, OrderRef::id(&id)).ok())
            .collect()
    }

    /// Sets the leverage of a position (hundredths).
    ///
    /// # Errors
    /// `Param` outside [1x, 100x], `LeverageNotModified` when it is already that, `InsufficientBalance` when the
    /// position's margin at the new leverage exceeds what is available.
    pub fn set_leverage(&mut self, account: AccountId, symbol: usize, leverage_x100: i64) -> Result<(), ExchangeError> {
        if !(100..=MAX_LEVERAGE_X100).contains(&leverage_x100) {
            return Err(ExchangeError::Param(format!("leverage must be between 1 and {}", MAX_LEVERAGE_X100 / 100)));
        }
        let old = self.accounts[account as usize].positions[symbol].leverage_x100;
        if old == leverage_x100 {
            return Err(ExchangeError::LeverageNotModified);
        }
        self.accounts[account as usize].positions[symbol].leverage_x100 = leverage_x100;
        if self.wallet_snapshot(account).available < 0 {
            self.accounts[account as usize].positions[symbol].leverage_x100 = old;
            return Err(ExchangeError::InsufficientBalance);
        }
        self.push_position(account, symbol);
        self.push_wallet(account);
        Ok(())
    }

    /// Sets the take-profit and/or stop-loss of a position (`Some(None)` clears one, `None` keeps it).
    ///
    /// # Errors
    /// `NoPosition` for a flat position, `Param` for a trigger on the wrong side of the last price.
    pub fn set_trading_stop(
        &mut self,
        now_us: i64,
        account: AccountId,
        symbol: usize,
        take_profit: Option<Option<i64>>,
        stop_loss: Option<Option<i64>>,
    ) -> Result<(), ExchangeError> {
        let size = self.accounts[account as usize].positions[symbol].size;
        if size == 0 {
            return Err(ExchangeError::NoPosition);
        }
        let last = self.last_price(symbol);
        let tick = self.symbols[symbol].spec.tick;
        let long = size > 0;
        for (name, value, above) in [("TakeProfit", take_profit, long), ("StopLoss", stop_loss, !long)] {
            if let Some(Some(trigger)) = value
                && (trigger <= 0 || trigger % tick != 0 || (above && trigger <= last) || (!above && trigger >= last))
            {
                let relation = if above { "higher" } else { "lower" };
                let side = if long { "Buy" } else { "Sell" };
                return Err(ExchangeError::Param(format!(
                    "{name}:{trigger} set for {side} position should be {relation} than base_price:{last}"
                )));
            }
        }
        let market_account = self.symbols[symbol].market_account[account as usize];
        let current = self.symbols[symbol].market.stops(market_account);
        let pick = |value: Option<Option<i64>>, current: Option<StopSpec>, tag: u64| match value {
            None => current,
            Some(None) => None,
            Some(Some(trigger_price)) => Some(StopSpec { tag, trigger_price }),
        };
        let stops = Stops {
            take_profit: pick(take_profit, current.take_profit, self.next_tag_peek(0)),
            stop_loss: pick(stop_loss, current.stop_loss, self.next_tag_peek(1)),
        };
        self.next_tag += 2;
        self.symbols[symbol]
            .market
            .send_request(now_us, market_account, ExternalRequest::SetStops(stops))
            .expect("outside account");
        Ok(())
    }

    /// Open orders of an account (waiting stops included), oldest first.
    #[must_use]
    pub fn open_orders(&self, account: AccountId) -> Vec<&OrderState> {
        self.accounts.get(account as usize).map_or_else(Vec::new, |a| a.open.values().collect())
    }

    /// Closed orders of an account, newest first (the last [`ORDER_HISTORY`]).
    #[must_use]
    pub fn order_history(&self, account: AccountId) -> Vec<&OrderState> {
        self.accounts.get(account as usize).map_or_else(Vec::new, |a| a.history.iter().rev().collect())
    }

    /// Executions of an account, newest first (the last [`EXECUTION_HISTORY`]).
    #[must_use]
    pub fn executions(&self, account: AccountId) -> Vec<&ExecutionRecord> {
        self.accounts.get(account as usize).map_or_else(Vec::new, |a| a.executions.iter().rev().collect())
    }

    /// The position of an account on a symbol now.
    #[must_use]
    pub fn position(&self, account: AccountId, symbol: usize) -> PositionSnapshot {
        let p = &self.accounts[account as usize].positions[symbol];
        let s = &self.symbols[symbol];
        let mark = mark_of(s);
        let market_account = s.market_account[account as usize];
        let stops = s.market.stops(market_account);
        let entry_price_e4 = if p.size == 0 { 0 } else { (p.entry_value * 10_000 / i128::from(p.size.abs())) as i64 };
        PositionSnapshot {
            symbol,
            size: p.size,
            entry_price_e4,
            leverage_x100: p.leverage_x100,
            mark_price: mark,
            value: p.entry_value,
            unrealised_pnl: unrealised(p, mark) * s.value_to_wallet,
            cur_realised_pnl: p.cur_realised,
            cum_realised_pnl: p.cum_realised,
            initial_margin: position_im(p, mark) * s.value_to_wallet,
            maintenance_margin: position_im(p, mark) * s.value_to_wallet / 10,
            take_profit: stops.take_profit.map(|s| s.trigger_price),
            stop_loss: stops.stop_loss.map(|s| s.trigger_price),
            created_us: p.created_us,
            updated_us: p.updated_us,
            seq: self.seq,
        }
    }

    /// The wallet of an account now: balance, unrealised PnL at the marks, margins, what is available.
    #[must_use]
    pub fn wallet_snapshot(&self, account: AccountId) -> WalletSnapshot {
        let acc = &self.accounts[account as usize];
        let (mut upl, mut total_im, mut cum) = (0, 0, 0);
        for (index, p) in acc.positions.iter().enumerate() {
            let s = &self.symbols[index];
            let mark = mark_of(s);
            upl += unrealised(p, mark) * s.value_to_wallet;
            total_im += position_im(p, mark) * s.value_to_wallet;
            cum += p.cum_realised;
        }
        let order_im: i128 = (0..self.symbols.len()).map(|symbol| self.order_margin(account, symbol, None, None)).sum();
        let equity = acc.wallet + upl;
        WalletSnapshot {
            wallet_balance: acc.wallet,
            unrealised_pnl: upl,
            equity,
            position_im: total_im,
            position_mm: total_im / 10,
            order_im,
            available: equity - total_im - order_im,
            cum_realised_pnl: cum,
        }
    }

    fn new_tag(&mut self) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        tag
    }

    fn next_tag_peek(&self, offset: u64) -> u64 {
        self.next_tag + offset
    }

    /// The order id of a tag: a UUID-shaped string whose last 12 hex digits are the tag.
    fn order_id(&self, tag: u64) -> String {
        let h = splitmix(tag ^ self.salt.rotate_left(17));
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            (h >> 20) & 0xfff,
            tag & 0xffff_ffff_ffff
        )
    }

    fn find_open(&self, account: AccountId, symbol: usize, order: OrderRef<'_>) -> Result<u64, ExchangeError> {
        let acc = self.accounts.get(account as usize).ok_or(ExchangeError::OrderNotFound)?;
        let tag = match (order.order_id.filter(|s| !s.is_empty()), order.order_link_id.filter(|s| !s.is_empty())) {
            // orderId wins when both are given, as on Bybit.
            (Some(id), _) => {
                let tag = id.rsplit('-').next().and_then(|t| u64::from_str_radix(t, 16).ok());
                tag.filter(|&t| self.order_id(t) == id)
            }
            (None, Some(link)) => acc.links.get(link).copied(),
            (None, None) => return Err(ExchangeError::Param("orderId or orderLinkId is required".into())),
        };
        tag.filter(|t| acc.open.get(t).is_some_and(|o| o.symbol == symbol) && !acc.cancels_sent.contains(t))
            .ok_or(ExchangeError::OrderNotFound)
    }

    /// Initial margin an order of `qty` on `side` at `price` adds to the account's orders on `symbol`.
    fn added_order_margin(&self, account: AccountId, symbol: usize, side: Side, qty: i64, price: i64) -> i128 {
        self.order_margin(account, symbol, Some((side, qty, price)), None)
            - self.order_margin(account, symbol, None, None)
    }

    /// Initial margin of the open orders on `symbol` (plus a hypothetical one, minus the order tagged `without`):
    /// per side the part of the orders that would increase the position, valued by [`margin_price`], the larger side
    /// counting (as Bybit nets buy and sell orders), divided by the leverage.
    fn order_margin(
        &self,
        account: AccountId,
        symbol: usize,
        extra: Option<(Side, i64, i64)>,
        without: Option<u64>,
    ) -> i128 {
        let acc = &self.accounts[account as usize];
        let p = &acc.positions[symbol];
        let s = &self.symbols[symbol];
        let mark = mark_of(s);
        let mut qty = [0_i128; 2];
        let mut value = [0_i128; 2];
        let orders = acc.open.iter().filter(|&(&tag, o)| {
            o.symbol == symbol && o.stop.is_none() && !o.reduce_only && !o.close_on_trigger && Some(tag) != without
        });
        for (side, leaves, price) in orders.map(|(_, o)| (o.side, o.leaves_qty, o.price.unwrap_or(mark))).chain(extra) {
            let i = usize::from(side == Side::Sell);
            qty[i] += i128::from(leaves);
            value[i] += i128::from(leaves) * i128::from(margin_price(side, price, mark));
        }
        let size = i128::from(p.size);
        let mut worst = 0;
        for (i, reducible) in [(-size).max(0), size.max(0)].into_iter().enumerate() {
            if qty[i] > reducible && qty[i] > 0 {
                let increasing = value[i] * (qty[i] - reducible) / qty[i];
                worst = worst.max(increasing);
            }
        }
        worst * 100 / i128::from(p.leverage_x100) * s.value_to_wallet
    }

    fn push_position(&mut self, account: AccountId, symbol: usize) {
        self.seq += 1;
        let snapshot = self.position(account, symbol);
        self.updates.push(AccountUpdate::Position(account, snapshot));
    }

    fn push_wallet(&mut self, account: AccountId) {
        let snapshot = self.wallet_snapshot(account);
        self.updates.push(AccountUpdate::Wallet(account, snapshot));
    }

    /// Books one symbol's account events: order states, executions, positions, wallets.
    fn absorb(&mut self, symbol: usize, events: &[crate::market::AccountEvent]) {
        let mut changed: Vec<(AccountId, u64)> = Vec::new();
        let mut traded: Vec<AccountId> = Vec::new();
        let mut stops_changed: Vec<AccountId> = Vec::new();
        for event in events {
            let Some(account) = self.symbols[symbol].market_account.iter().position(|&m| m == event.account) else {
                continue;
            };
            let account = account as AccountId;
            let tag = event.tag;
            let ts = event.ts_us;
            match event.kind {
                AccountEventKind::Accepted { .. } | AccountEventKind::Amended { .. } => {
                    if let Some(order) = self.accounts[account as usize].open.get_mut(&tag) {
                        if let AccountEventKind::Amended { price, leaves_qty } = event.kind {
                            order.price = Some(price);
                            order.leaves_qty = leaves_qty;
                            order.qty = order.cum_exec_qty + leaves_qty;
                        }
                        order.updated_us = ts;
                    }
                }
                AccountEventKind::Rejected { reason } => {
                    // Only a refused new order ends here; a refused cancel or amend leaves its order as it was, and
                    // attached stops refused for a position closed meanwhile leave nothing behind.
                    let new_order_refused = !matches!(
                        reason,
                        RejectReason::UnknownOrder
                            | RejectReason::NothingToAmend
                            | RejectReason::AmendBelowFilled
                            | RejectReason::NoPosition
                    );
                    if let Some(order) = self.accounts[account as usize].open.get_mut(&tag)
                        && new_order_refused
                        && order.stop.is_none()
                    {
                        // Bybit cancels (rather than rejects) orders refused by their time-in-force or reduce-only.
                        order.status = match reason {
                            RejectReason::PostOnlyWouldTake
                            | RejectReason::FokUnfillable
                            | RejectReason::NoLiquidity
                            | RejectReason::ReduceOnlyWouldIncrease => OrderStatus::Cancelled,
                            _ => OrderStatus::Rejected,
                        };
                        order.reject_reason = Some(reason);
                        order.leaves_qty = 0;
                        order.updated_us = ts;
                    }
                }
                AccountEventKind::Fill { trade_id, side, price, qty, fee, liquidity, leaves_qty } => {
                    self.symbols[symbol].last_price = Some(price);
                    let s = &self.symbols[symbol];
                    let fee_wallet = fee * s.cash_to_wallet;
                    let value_to_wallet = s.value_to_wallet;
                    let rates = s.spec.validate().expect("a validated spec");
                    let fee_rate_e8 =
                        if liquidity == Liquidity::Maker { rates.maker_fee_e8 } else { rates.taker_fee_e8 };
                    let mark = mark_of(s);
                    let acc = &mut self.accounts[account as usize];
                    let (closed_qty, realised) =
                        apply_fill(&mut acc.positions[symbol], side, price, qty, ts, value_to_wallet);
                    acc.positions[symbol].cur_realised -= fee_wallet;
                    acc.positions[symbol].cum_realised -= fee_wallet;
                    acc.wallet += realised - fee_wallet;
                    let (order_id, order_link_id, order_qty, order_price, order_type, stop) =
                        match acc.open.get_mut(&tag) {
                            Some(order) => {
                                order.cum_exec_qty += qty;
                                order.cum_exec_value += i128::from(price) * i128::from(qty);
                                order.cum_exec_fee += fee_wallet;
                                order.leaves_qty = leaves_qty;
                                order.status =
                                    if leaves_qty == 0 { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
                                order.updated_us = ts;
                                (
                                    order.order_id.clone(),
                                    order.order_link_id.clone(),
                                    order.qty,
                                    order.price,
                                    order.order_type,
                                    order.stop,
                                )
                            }
                            None => (self.order_id(tag), String::new(), qty, None, OrderType::Market, None),
                        };
                    self.seq += 1;
                    let record = ExecutionRecord {
                        exec_id: exec_id(trade_id, side, symbol),
                        symbol,
                        order_id,
                        order_link_id,
                        side,
                        price,
                        qty,
                        fee: fee_wallet,
                        fee_rate_e8,
                        is_maker: liquidity == Liquidity::Maker,
                        leaves_qty,
                        order_qty,
                        order_price,
                        order_type,
                        stop,
                        closed_qty,
                        mark_price: mark,
                        ts_us: ts,
                        seq: self.seq,
                    };
                    let acc = &mut self.accounts[account as usize];
                    acc.executions.push_back(record.clone());
                    if acc.executions.len() > EXECUTION_HISTORY {
                        acc.executions.pop_front();
                    }
                    self.updates.push(AccountUpdate::Execution(account, record));
                    if !traded.contains(&account) {
                        traded.push(account);
                    }
                }
                AccountEventKind::Cancelled { reason, .. } => {
                    if let Some(order) = self.accounts[account as usize].open.get_mut(&tag) {
                        order.status = if order.cum_exec_qty > 0 && reason == CancelReason::Unfilled {
                            OrderStatus::PartiallyFilledCanceled
                        } else {
                            OrderStatus::Cancelled
                        };
                        order.cancel_reason = Some(reason);
                        order.leaves_qty = 0;
                        order.updated_us = ts;
                    }
                }
                AccountEventKind::StopSet { kind, trigger_price } => {
                    let size = self.accounts[account as usize].positions[symbol].size;
                    let last = self.last_price(symbol);
                    let order_id = self.order_id(tag);
                    let acc = &mut self.accounts[account as usize];
                    match kind {
                        StopKind::TakeProfit => acc.stop_tags[symbol].0 = Some(tag),
                        StopKind::StopLoss => acc.stop_tags[symbol].1 = Some(tag),
                    }
                    acc.open.insert(
                        tag,
                        OrderState {
                            order_id,
                            order_link_id: String::new(),
                            symbol,
                            side: if size > 0 { Side::Sell } else { Side::Buy },
                            order_type: OrderType::Market,
                            price: None,
                            qty: size.abs(),
                            tif: TimeInForce::Ioc,
                            status: OrderStatus::Untriggered,
                            reject_reason: None,
                            cancel_reason: None,
                            cum_exec_qty: 0,
                            cum_exec_value: 0,
                            cum_exec_fee: 0,
                            leaves_qty: size.abs(),
                            reduce_only: true,
                            close_on_trigger: true,
                            stop: Some(kind),
                            trigger_price: Some(trigger_price),
                            take_profit: None,
                            stop_loss: None,
                            last_price_on_created: Some(last),
                            created_us: ts,
                            updated_us: ts,
                        },
                    );
                    if !stops_changed.contains(&account) {
                        stops_changed.push(account);
                    }
                }
                AccountEventKind::StopTriggered { .. } => {
                    let size = self.accounts[account as usize].positions[symbol].size;
                    if let Some(order) = self.accounts[account as usize].open.get_mut(&tag) {
                        order.status = OrderStatus::Triggered;
                        order.qty = size.abs();
                        order.leaves_qty = size.abs();
                        order.updated_us = ts;
                    }
                    self.clear_stop_tag(account, symbol, tag);
                    if !stops_changed.contains(&account) {
                        stops_changed.push(account);
                    }
                }
                AccountEventKind::StopCancelled { .. } => {
                    if let Some(order) = self.accounts[account as usize].open.get_mut(&tag) {
                        order.status = OrderStatus::Deactivated;
                        order.leaves_qty = 0;
                        order.updated_us = ts;
                    }
                    self.clear_stop_tag(account, symbol, tag);
                    if !stops_changed.contains(&account) {
                        stops_changed.push(account);
                    }
                }
            }
            if !changed.contains(&(account, tag)) {
                changed.push((account, tag));
            }
        }
        // One order update per order and batch, with its latest state; closed orders move to the history.
        for (account, tag) in changed {
            let acc = &mut self.accounts[account as usize];
            let Some(order) = acc.open.get(&tag) else { continue };
            let order = order.clone();
            if !order.status.is_open() {
                acc.open.remove(&tag);
                acc.cancels_sent.remove(&tag);
                acc.history.push_back(order.clone());
                if acc.history.len() > ORDER_HISTORY
                    && let Some(old) = acc.history.pop_front()
                    && acc.links.get(&old.order_link_id).is_some_and(|&t| !acc.open.contains_key(&t))
                {
                    acc.links.remove(&old.order_link_id);
                }
            }
            self.updates.push(AccountUpdate::Order(account, order));
        }
        for account in stops_changed.iter().chain(&traded).copied().collect::<std::collections::BTreeSet<_>>() {
            self.push_position(account, symbol);
            if traded.contains(&account) {
                self.push_wallet(account);
            }
        }
    }

    fn clear_stop_tag(&mut self, account: AccountId, symbol: usize, tag: u64) {
        let tags = &mut self.accounts[account as usize].stop_tags[symbol];
        if tags.0 == Some(tag) {
            tags.0 = None;
        }
        if tags.1 == Some(tag) {
            tags.1 = None;
        }
    }
}

/// The price an order's initial margin is valued at. Bybit values an order at its own price ("Initial Margin = (Order
/// Price × Order Quantity) / Leverage",
/// https://bybitglobal.com/en/help-center/article/Order-Cost-USDT-Contract), but an order priced through the market
/// trades at the market, and for such an order Bybit uses "the best available market price based on the order book"
/// (https://bybits.org/pl-PL/help-center/article/Why-Is-Order-Cost-Different-for-Buy-and-Sell-Orders). A sell under
/// the mark would open a short worth the market while posting margin on its own lower price (the sweep's $100 account
/// selling 20 BTC at 0.1), so a sell counts at no less than the mark. A buy's own price already bounds what it can
/// pay: above the mark it is the conservative value, and under the mark it only trades once the market comes down to
/// it, so a buy counts at its price.
fn margin_price(side: Side, price: i64, mark: i64) -> i64 {
    match side {
        Side::Buy => price,
        Side::Sell => price.max(mark),
    }
}

/// Refuses a quantity off the lot grid, under the minimum, or over `maxOrderQty` (`maxMktOrderQty` for a market
/// order): the limits the venue advertises, tighter than the engine's `max_qty` so that one client order cannot
/// dwarf the simulated book.
fn check_qty(spec: &InstrumentSpec, order_type: OrderType, qty: i64) -> Result<(), ExchangeError> {
    if qty <= 0 || qty % spec.lot != 0 || qty < spec.min_qty {
        return Err(ExchangeError::Param("qty must be a positive multiple of the lot, at least the minimum".into()));
    }
    let (max, name) = match order_type {
        OrderType::Limit => (spec.max_limit_order_qty(), "maxOrderQty"),
        OrderType::Market => (spec.max_market_order_qty(), "maxMktOrderQty"),
    };
    if qty > max {
        return Err(ExchangeError::Param(format!(
            "The number of contracts exceeds maximum limit allowed: qty {} > {name} {}",
            spec.qty_scale.format(qty),
            spec.qty_scale.format(max)
        )));
    }
    Ok(())
}

/// Refuses a limit price off the tick grid, above `maxPrice`, or beyond the order price limits around the mark (see
/// [`price_limits`]). Bybit's futures clamp such a price to the limit by default and reject it when the account
/// sets `modifyEnable=false`; the exchange rejects, so a client sees its mistake instead of a different order.
fn check_limit_price(s: &Symbol, side: Side, price: i64) -> Result<(), ExchangeError> {
    let spec = &s.spec;
    if price <= 0 || price % spec.tick != 0 {
        return Err(ExchangeError::Param("price must be a positive multiple of the tick".into()));
    }
    let format = |units: i64| spec.price_scale.format(units);
    if price > MAX_ORDER_PRICE_UNITS {
        return Err(ExchangeError::PriceOutOfRange(format!(
            "Order price exceeds the allowable range: price {} > maxPrice {}",
            format(price),
            format(MAX_ORDER_PRICE_UNITS)
        )));
    }
    let rates = spec.validate().expect("a validated spec");
    let mark = mark_of(s);
    // The simulator has no index price; the mark stands in for it.
    let limits = price_limits(mark, mark, rates.price_limit_x_ppm, rates.price_limit_y_ppm, spec.tick);
    let (beyond, relation, bound) = match side {
        Side::Buy => (price > limits.highest_buy, "above the highest buy price", limits.highest_buy),
        Side::Sell => (price < limits.lowest_sell, "below the lowest sell price", limits.lowest_sell),
    };
    if beyond {
        return Err(ExchangeError::PriceOutOfRange(format!(
            "Order price exceeds the allowable range: {side:?} price {} is {relation} {} (mark price {})",
            format(price),
            format(bound),
            format(mark)
        )));
    }
    Ok(())
}

/// The highest buy and lowest sell price a limit order may have, on the tick grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PriceLimits {
    highest_buy: i64,
    lowest_sell: i64,
}

/// Bybit's order price limits for futures (https://bybit-exchange.github.io/docs/v5/account/set-price-limit), with
/// x = `priceLimitRatioX` and y = `priceLimitRatioY`:
///   highest buy = min(max(index, mark × (1 + x)), mark × (1 + y))
///   lowest sell = max(min(index, mark × (1 − x)), mark × (1 − y)).
/// The page's newer form adds α × the 30-second average premium of the book mid over the mark to the x term; the
/// exchange's mark is the book mid, so that premium is zero. The limits are rounded inwards to the tick.
fn price_limits(mark: i64, index: i64, x_ppm: i64, y_ppm: i64, tick: i64) -> PriceLimits {
    const PPM: i128 = 1_000_000;
    let (mark, index) = (i128::from(mark), i128::from(index) * PPM);
    let (x, y) = (i128::from(x_ppm), i128::from(y_ppm));
    // In price units × 10^6, exact.
    let highest_buy = index.max(mark * (PPM + x)).min(mark * (PPM + y));
    let lowest_sell = index.min(mark * (PPM - x)).max(mark * (PPM - y));
    let tick_ppm = i128::from(tick) * PPM;
    PriceLimits {
        highest_buy: (highest_buy / tick_ppm * i128::from(tick)) as i64,
        lowest_sell: ((lowest_sell + tick_ppm - 1) / tick_ppm * i128::from(tick)) as i64,
    }
}

/// The mark price of a symbol: the mid of the best bid and ask on the tick grid (the last mid while a side is empty).
fn mark_of(s: &Symbol) -> i64 {
    let tick = s.spec.tick;
    match (s.market.engine().best_bid(), s.market.engine().best_ask()) {
        (Some(b), Some(a)) => (b.price + a.price) / 2 / tick * tick,
        _ => {
            let mid = s.market.mid_price();
            let units =
                s.spec.price_scale.from_f64((mid / s.spec.price_to_f64(tick)).round() * s.spec.price_to_f64(tick));
            units.unwrap_or(tick)
        }
    }
}

fn unrealised(p: &Position, mark: i64) -> i128 {
    i128::from(p.size) * i128::from(mark) - if p.size >= 0 { p.entry_value } else { -p.entry_value }
}

fn position_im(p: &Position, mark: i64) -> i128 {
    i128::from(p.size.abs()) * i128::from(mark) * 100 / i128::from(p.leverage_x100)
}

/// Applies one fill to a one-way position: adds to it, reduces it (realising PnL against the average entry), or
/// flips it. Returns the quantity that closed position and the price PnL realised, in wallet units.
fn apply_fill(p: &mut Position, side: Side, price: i64, qty: i64, ts: i64, value_to_wallet: i128) -> (i64, i128) {
    let signed = if side == Side::Buy { qty } else { -qty };
    let (price, qty128) = (i128::from(price), i128::from(qty));
    let mut realised = 0;
    let mut closed = 0;
    if p.size == 0 {
        p.created_us = ts;
    }
    if p.size == 0 || (p.size > 0) == (signed > 0) {
        p.size += signed;
        p.entry_value += price * qty128;
    } else {
        closed = qty.min(p.size.abs());
        let size = i128::from(p.size.abs());
        let removed = p.entry_value * i128::from(closed) / size;
        let direction = if p.size > 0 { 1 } else { -1 };
        realised = direction * (price * i128::from(closed) - removed) * value_to_wallet;
        p.entry_value -= removed;
        p.size += if signed > 0 { closed } else { -closed };
        let rest = qty - closed;
        if p.size == 0 {
            p.entry_value = 0;
        }
        if rest > 0 {
            p.size = if signed > 0 { rest } else { -rest };
            p.entry_value = price * i128::from(rest);
            p.created_us = ts;
        }
    }
    p.cur_realised += realised;
    p.cum_realised += realised;
    p.updated_us = ts;
    (closed, realised)
}

/// An execution id: UUID-shaped, unique per trade and side.
fn exec_id(trade_id: u64, side: Side, symbol: usize) -> String {
    let h = splitmix(
        trade_id.wrapping_mul(4).wrapping_add(u64::from(side == Side::Sell)).wrapping_add((symbol as u64) << 56),
    );
    format!(
        "{:08x}-{:04x}-5{:03x}-b{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 28) & 0xfff,
        (trade_id << 1 | u64::from(side == Side::Sell)) & 0xffff_ffff_ffff
    )
}

/// SplitMix64: a fixed bijective mix, for ids that look random but are reproducible.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x = 5 %, y = 10 %, tick 1, mark 10 000.
    fn limits_with_index(index: i64) -> PriceLimits {
        price_limits(10_000, index, 50_000, 100_000, 1)
    }

    #[test]
    fn price_limits_follow_bybits_futures_formula() {
        // Index at the mark (the exchange's case): mark × (1 ± x).
        assert_eq!(limits_with_index(10_000), PriceLimits { highest_buy: 10_500, lowest_sell: 9_500 });
        // An index beyond mark × (1 ± x) widens the limit towards it, never past mark × (1 ± y).
        assert_eq!(limits_with_index(10_700).highest_buy, 10_700);
        assert_eq!(limits_with_index(12_000).highest_buy, 11_000);
        assert_eq!(limits_with_index(9_300).lowest_sell, 9_300);
        assert_eq!(limits_with_index(8_000).lowest_sell, 9_000);
    }

    #[test]
    fn price_limits_round_inwards_to_the_tick() {
        // mark × 1.05 = 10 521 and mark × 0.95 = 9 519, on a tick of 5.
        let limits = price_limits(10_020, 10_020, 50_000, 100_000, 5);
        assert_eq!(limits, PriceLimits { highest_buy: 10_520, lowest_sell: 9_520 });
    }

    #[test]
    fn a_sell_is_margined_at_no_less_than_the_mark_and_a_buy_at_its_price() {
        assert_eq!(margin_price(Side::Sell, 1, 10_000), 10_000);
        assert_eq!(margin_price(Side::Sell, 12_000, 10_000), 12_000);
        assert_eq!(margin_price(Side::Buy, 9_000, 10_000), 9_000);
        assert_eq!(margin_price(Side::Buy, 10_400, 10_000), 10_400);
    }
}
