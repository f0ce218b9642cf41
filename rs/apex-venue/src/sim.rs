//! The simulation thread: it owns the exchange (the simulator is synchronous), keeps it at the clock's simulated
//! time, carries out the commands of the network tasks, and publishes what happened: public messages serialized once
//! into the shared broadcast, private messages per account, and the state new subscribers and REST queries read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use apex_bybit::messages::{KLINE_INTERVALS, ORDERBOOK_DEPTHS};
use apex_bybit::rest::market::RecentTrade;
use apex_bybit::{
    Dec, Execution, Level, MessageKind, Order, OrderbookData, OrderbookMessage, Position, PrivateMessage,
    PrivateStream, PublicTrade as WireTrade, PublicTradeMessage, TakerSide, TickDirection, Ticker, TickerMessage,
    Wallet,
};
use apex_core::{Side, TimeInForce};
use apex_sim::exchange::{AccountUpdate, Exchange, ExchangeError, OrderAck, OrderRef, OrderRequest, OrderType};
use apex_sim::{BookMessage, PublicTrade};
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::json;
use tokio::sync::oneshot;

use crate::clock::{VenueClock, wall_ms};
use crate::faults::{Dice, MarketFault};
use crate::shared::{Candles, PrivateMsg, PublicMsg, Shared};
use crate::wire;

/// Wall-clock time the thread sleeps between steps when no command arrives.
const TICK: Duration = Duration::from_millis(5);
/// Push cadence of each order-book depth, simulated microseconds (reference §2.3).
const BOOK_CADENCE_US: [i64; 4] = [10_000, 20_000, 100_000, 200_000];
/// Tickers push every 100 ms, klines every second (simulated).
const TICKER_CADENCE_US: i64 = 100_000;
const KLINE_CADENCE_US: i64 = 1_000_000;
/// Bybit's largest number of trades in one `publicTrade` message.
const TRADES_PER_MESSAGE: usize = 1_024;

/// What the network tasks ask of the simulation.
#[derive(Debug)]
pub enum Command {
    Create {
        account: usize,
        request: OrderRequest,
        /// A fault that struck this market order (`unfilled` or `partial`), changing how it meets the book.
        fault: Option<MarketFault>,
        at: Instant,
        reply: oneshot::Sender<Result<OrderAck, ExchangeError>>,
    },
    Amend {
        account: usize,
        symbol: usize,
        order_id: Option<String>,
        order_link_id: Option<String>,
        qty: Option<i64>,
        price: Option<i64>,
        at: Instant,
        reply: oneshot::Sender<Result<OrderAck, ExchangeError>>,
    },
    Cancel {
        account: usize,
        symbol: usize,
        order_id: Option<String>,
        order_link_id: Option<String>,
        at: Instant,
        reply: oneshot::Sender<Result<OrderAck, ExchangeError>>,
    },
    CancelAll {
        account: usize,
        symbol: Option<usize>,
        at: Instant,
        reply: oneshot::Sender<Vec<OrderAck>>,
    },
    SetLeverage {
        account: usize,
        symbol: usize,
        leverage_x100: i64,
        reply: oneshot::Sender<Result<(), ExchangeError>>,
    },
    TradingStop {
        account: usize,
        symbol: usize,
        take_profit: Option<Option<i64>>,
        stop_loss: Option<Option<i64>>,
        at: Instant,
        reply: oneshot::Sender<Result<(), ExchangeError>>,
    },
    Query {
        account: usize,
        query: Query,
        reply: oneshot::Sender<Answer>,
    },
    /// Fault: the update id of one book topic jumps by one.
    SkipUpdateId {
        symbol: usize,
        depth: usize,
    },
    /// Fault: every book stream of a symbol restarts at `u` = 1.
    Restart {
        symbol: usize,
    },
    /// Disconnection protection fired: cancel every open order of the account (cancelType `CancelByDCP`) and log it.
    DisconnectCancel {
        account: usize,
        window_s: u32,
        down_since_ms: i64,
    },
    Stop,
}

/// Account queries.
#[derive(Debug, Clone, Copy)]
pub enum Query {
    OpenOrders,
    OrderHistory,
    Executions,
    Positions,
    Wallet,
}

/// Their answers, already in wire shape (the REST handler filters and pages them).
#[derive(Debug)]
pub enum Answer {
    Orders(Vec<(usize, Order)>),
    Executions(Vec<(usize, Execution)>),
    Positions(Vec<(usize, Position)>),
    Wallet(Box<Wallet>),
}

/// The `Dice` stream of the `private_loss` draws, apart from the connections' (their ids), the periodic faults'
/// (1000 + n) and the REST gateway's (`u64::MAX`).
const PRIVATE_LOSS_STREAM: u64 = u64::MAX - 1;

/// The thread's state besides the exchange.
struct Sim {
    exchange: Exchange,
    shared: Arc<Shared>,
    clock: VenueClock,
    /// Per symbol: the depth index of each of the market's book streams.
    stream_depth: Vec<Vec<usize>>,
    /// Per symbol and depth: what the wire adds to the publisher's update id (skip faults).
    u_offset: Vec<[u64; 4]>,
    last_ticker: Vec<Ticker>,
    last_price: Vec<Option<i64>>,
    tick_direction: Vec<TickDirection>,
    next_ticker_us: i64,
    next_kline_us: i64,
    /// Per symbol and interval: start of the candle last pushed.
    kline_start: Vec<Vec<i64>>,
    private_seq: u64,
    /// Orders cancelled by disconnection protection: the exchange books them as user cancels, the wire says DCP.
    dcp_cancelled: std::collections::HashSet<String>,
    /// Execution messages the `execution_lag` fault holds back: (when due, account, message), due times in order.
    lagging: VecDeque<(Instant, usize, PrivateMsg)>,
    /// Public trade messages the `trade_lag` fault holds back: (when due, message), due times in order.
    lagging_trades: VecDeque<(Instant, PublicMsg)>,
    /// Draws of the `private_loss` fault.
    loss_dice: Dice,
}

/// Builds the exchange (markets started, book streams added) and runs the thread until `Stop` or until every
/// sender is gone. `published` is told once the first books, trades and tickers are out, so that a venue is ready
/// only when its market data answers (a ticker asked for before that held only the symbol).
///
/// # Panics
/// Never on a command; only if the exchange's invariants break.
pub fn run(exchange: Exchange, shared: Arc<Shared>, commands: Receiver<Command>, published: oneshot::Sender<()>) {
    let mut exchange = exchange;
    let mut stream_depth = Vec::new();
    for symbol in 0..exchange.symbol_count() {
        let mut depths = Vec::new();
        for (depth_index, &depth) in ORDERBOOK_DEPTHS.iter().enumerate() {
            let stream = exchange
                .market_mut(symbol)
                .add_book_stream(depth as usize, BOOK_CADENCE_US[depth_index])
                .expect("the reference's depths and cadences are valid");
            debug_assert_eq!(stream, depths.len());
            depths.push(depth_index);
        }
        stream_depth.push(depths);
    }
    let symbols = exchange.symbol_count();
    let clock = shared.clock;
    let mut sim = Sim {
        exchange,
        clock,
        stream_depth,
        u_offset: vec![[0; 4]; symbols],
        last_ticker: (0..symbols).map(|s| shared.symbols[s].ticker.lock().expect("ticker").clone()).collect(),
        last_price: vec![None; symbols],
        tick_direction: vec![TickDirection::ZeroPlusTick; symbols],
        next_ticker_us: 0,
        next_kline_us: 0,
        kline_start: vec![vec![i64::MIN; KLINE_INTERVALS.len()]; symbols],
        private_seq: 0,
        dcp_cancelled: std::collections::HashSet::new(),
        lagging: VecDeque::new(),
        lagging_trades: VecDeque::new(),
        loss_dice: Dice::new(shared.faults.seed, PRIVATE_LOSS_STREAM),
        shared,
    };
    let now = sim.clock.sim_now_us();
    sim.exchange.advance_until(now);
    sim.publish(now);
    // Nobody waiting (a start that already failed) is not an error.
    let _ = published.send(());
    loop {
        let mut pending = Vec::new();
        match commands.recv_timeout(TICK) {
            Ok(command) => pending.push(command),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        pending.extend(commands.try_iter());
        for command in pending {
            if !sim.handle(command) {
                return;
            }
        }
        let target = sim.clock.sim_now_us();
        sim.exchange.advance_until(target);
        sim.publish(target);
        sim.release_lagging(Instant::now());
    }
}

impl Sim {
    /// Turns a market order into an IOC limit that `fault` says how far may trade. `Unfilled`: 5 % short of the
    /// opposite touch (a buy below the best ask, a sell above the best bid), further than the book moves while the
    /// order is on its way, so it cannot cross and the book cancels it unfilled. `Partial`: at the opposite touch, so it
    /// takes what rests there when it arrives and the book cancels the rest. With no opposite side it stays a market
    /// order, which the book cancels for want of liquidity: either way it trades no more than the fault log says.
    fn faulted(&self, request: &mut OrderRequest, fault: MarketFault) {
        let engine = self.exchange.market(request.symbol).engine();
        let tick = engine.spec().tick;
        let short = |touch: i64| match fault {
            MarketFault::Unfilled => (touch / 20 / tick).max(1) * tick,
            MarketFault::Partial => 0,
        };
        let price = match request.side {
            Side::Buy => engine.best_ask().map(|level| level.price - short(level.price)),
            Side::Sell => engine.best_bid().map(|level| level.price + short(level.price)),
        };
        if let Some(price) = price.filter(|&p| p > 0) {
            request.order_type = OrderType::Limit;
            request.price = Some(price);
            request.tif = TimeInForce::Ioc;
        }
    }

    /// Carries out one command; false for `Stop`.
    fn handle(&mut self, command: Command) -> bool {
        // A reply nobody waits for any more (the client went away) is simply dropped.
        match command {
            Command::Create { account, mut request, fault, at, reply } => {
                if let Some(fault) = fault {
                    self.faulted(&mut request, fault);
                }
                let _ = reply.send(self.exchange.create_order(self.clock.sim_us(at), account as u32, request));
            }
            Command::Amend { account, symbol, order_id, order_link_id, qty, price, at, reply } => {
                let order = OrderRef { order_id: order_id.as_deref(), order_link_id: order_link_id.as_deref() };
                let sent = self.clock.sim_us(at);
                let _ = reply.send(self.exchange.amend_order(sent, account as u32, symbol, order, qty, price));
            }
            Command::Cancel { account, symbol, order_id, order_link_id, at, reply } => {
                let order = OrderRef { order_id: order_id.as_deref(), order_link_id: order_link_id.as_deref() };
                let _ = reply.send(self.exchange.cancel_order(self.clock.sim_us(at), account as u32, symbol, order));
            }
            Command::CancelAll { account, symbol, at, reply } => {
                let _ = reply.send(self.exchange.cancel_all(self.clock.sim_us(at), account as u32, symbol));
            }
            Command::SetLeverage { account, symbol, leverage_x100, reply } => {
                let _ = reply.send(self.exchange.set_leverage(account as u32, symbol, leverage_x100));
            }
            Command::TradingStop { account, symbol, take_profit, stop_loss, at, reply } => {
                let sent = self.clock.sim_us(at);
                let _ =
                    reply.send(self.exchange.set_trading_stop(sent, account as u32, symbol, take_profit, stop_loss));
            }
            Command::Query { account, query, reply } => {
                let _ = reply.send(self.answer(account as u32, query));
            }
            Command::SkipUpdateId { symbol, depth } => {
                if let Some(offsets) = self.u_offset.get_mut(symbol) {
                    offsets[depth] += 1;
                }
            }
            Command::Restart { symbol } => {
                if symbol < self.exchange.symbol_count() {
                    self.exchange.market_mut(symbol).restart_book_streams();
                    self.u_offset[symbol] = [0; 4];
                }
            }
            Command::DisconnectCancel { account, window_s, down_since_ms } => {
                let acks = self.exchange.cancel_all(self.clock.sim_now_us(), account as u32, None);
                let links: Vec<String> = acks.iter().map(|a| a.order_link_id.clone()).collect();
                self.dcp_cancelled.extend(acks.into_iter().map(|a| a.order_id));
                let name = &self.shared.accounts[account].spec.name;
                let details = crate::protection::log_details(name, window_s, down_since_ms, &links);
                self.shared.fault_log.record(wall_ms(), "dcp_cancel", details);
            }
            Command::Stop => return false,
        }
        true
    }

    fn answer(&self, account: u32, query: Query) -> Answer {
        let units = |symbol: usize| &self.shared.symbols[symbol].units;
        match query {
            Query::OpenOrders | Query::OrderHistory => {
                let orders = if matches!(query, Query::OpenOrders) {
                    // Newest first, as Bybit lists them.
                    let mut open = self.exchange.open_orders(account);
                    open.reverse();
                    open
                } else {
                    self.exchange.order_history(account)
                };
                Answer::Orders(orders.into_iter().map(|o| (o.symbol, self.wire_order(o))).collect())
            }
            Query::Executions => Answer::Executions(
                self.exchange
                    .executions(account)
                    .into_iter()
                    .map(|e| (e.symbol, wire::execution(units(e.symbol), &self.clock, e)))
                    .collect(),
            ),
            Query::Positions => Answer::Positions(
                (0..self.exchange.symbol_count())
                    .map(|s| (s, wire::position(units(s), &self.clock, &self.exchange.position(account, s))))
                    .collect(),
            ),
            Query::Wallet => Answer::Wallet(Box::new(wire::wallet(&self.exchange.wallet_snapshot(account)))),
        }
    }

    /// An order in wire shape, its cancel labelled `CancelByDCP` when disconnection protection sent it.
    fn wire_order(&self, order: &apex_sim::exchange::OrderState) -> Order {
        let mut wire = wire::order(&self.shared.symbols[order.symbol].units, &self.clock, order);
        if wire.cancel_type == apex_bybit::CancelType::CancelByUser && self.dcp_cancelled.contains(&wire.order_id) {
            wire.cancel_type = apex_bybit::CancelType::CancelByDcp;
        }
        wire
    }

    fn broadcast(&self, topic: u16, u: u64, snapshot: bool, text: Utf8Bytes) {
        // No receiver is not an error: nobody listens right now.
        let _ = self.shared.public.send(PublicMsg { topic, u, snapshot, text });
    }

    fn publish(&mut self, now_us: i64) {
        for symbol in 0..self.exchange.symbol_count() {
            let trades: Vec<PublicTrade> = self.exchange.market_mut(symbol).drain_public_trades().collect();
            let books: Vec<BookMessage> = self.exchange.market_mut(symbol).drain_book_messages().collect();
            // One exchange-time order across the symbol's trades and book messages (a book message first at the
            // same time), however long the tick was: a loaded machine must not skew the streams further apart.
            let mut rest = trades.as_slice();
            for message in &books {
                let before = rest.iter().take_while(|t| t.ts_us < message.update.ts_us).count();
                self.publish_trades(symbol, &rest[..before]);
                rest = &rest[before..];
                self.publish_book(symbol, message);
            }
            self.publish_trades(symbol, rest);
        }
        if now_us >= self.next_ticker_us {
            for symbol in 0..self.exchange.symbol_count() {
                self.publish_ticker(symbol, now_us);
            }
            self.next_ticker_us = now_us - now_us.rem_euclid(TICKER_CADENCE_US) + TICKER_CADENCE_US;
        }
        if now_us >= self.next_kline_us {
            for symbol in 0..self.exchange.symbol_count() {
                self.publish_klines(symbol, now_us);
            }
            self.next_kline_us = now_us - now_us.rem_euclid(KLINE_CADENCE_US) + KLINE_CADENCE_US;
        }
        self.publish_private(now_us);
    }

    fn publish_trades(&mut self, symbol: usize, trades: &[PublicTrade]) {
        if trades.is_empty() {
            return;
        }
        let data = &self.shared.symbols[symbol];
        let units = &data.units;
        let mut wire_trades = Vec::with_capacity(trades.len());
        {
            let mut candles = data.candles.lock().expect("candles");
            let mut recent = data.trades.lock().expect("trades");
            for t in trades {
                let ms = self.clock.market_ms(t.ts_us);
                candles.trade(ms, t.price, t.qty);
                self.tick_direction[symbol] = match self.last_price[symbol] {
                    Some(last) if t.price > last => TickDirection::PlusTick,
                    Some(last) if t.price < last => TickDirection::MinusTick,
                    _ => match self.tick_direction[symbol] {
                        TickDirection::PlusTick | TickDirection::ZeroPlusTick => TickDirection::ZeroPlusTick,
                        _ => TickDirection::ZeroMinusTick,
                    },
                };
                self.last_price[symbol] = Some(t.price);
                let id = trade_id(symbol, t.trade_id);
                let side = if t.taker_side == Side::Buy { Side::Buy } else { Side::Sell };
                recent.push_back(RecentTrade {
                    exec_id: id.clone(),
                    symbol: units.symbol.clone(),
                    price: units.price(t.price),
                    size: units.qty(t.qty),
                    side,
                    time: ms,
                    is_block_trade: false,
                    is_rpi_trade: Some(false),
                    seq: Some(t.seq.to_string()),
                });
                if recent.len() > crate::shared::RECENT_TRADES {
                    recent.pop_front();
                }
                wire_trades.push((t, ms, id, self.tick_direction[symbol].clone()));
            }
        }
        let topic = self.shared.topics.trade(symbol);
        if !self.shared.topics.has_subscribers(topic) {
            return;
        }
        let name = self.shared.topics.name(topic).to_owned();
        for chunk in wire_trades.chunks(TRADES_PER_MESSAGE) {
            let ts = chunk.last().map_or(0, |c| c.1);
            let message = PublicTradeMessage {
                topic: name.as_str().into(),
                kind: MessageKind::Snapshot,
                ts,
                data: chunk
                    .iter()
                    .map(|(t, ms, id, direction)| WireTrade {
                        T: *ms,
                        s: units.symbol.as_str().into(),
                        S: if t.taker_side == Side::Buy { TakerSide::Buy } else { TakerSide::Sell },
                        v: units.qty(t.qty).to_string().into(),
                        p: units.price(t.price).to_string().into(),
                        L: Some(direction.as_str().to_owned().into()),
                        i: id.as_str().into(),
                        BT: Some(false),
                        RPI: Some(false),
                        seq: Some(t.seq as i64),
                    })
                    .collect(),
            };
            let text = Utf8Bytes::from(serde_json::to_string(&message).expect("trades serialize"));
            match self.shared.faults.trade_lag {
                Some(lag) => {
                    let details = json!({"symbol": units.symbol, "trades": chunk.len(), "delay_ms": lag.delay_ms});
                    self.shared.fault_log.record(wall_ms(), "trade_lag", details);
                    let message = PublicMsg { topic, u: 0, snapshot: false, text };
                    self.lagging_trades.push_back((Instant::now() + Duration::from_millis(lag.delay_ms), message));
                }
                None => self.broadcast(topic, 0, false, text),
            }
        }
    }

    fn publish_book(&mut self, symbol: usize, message: &BookMessage) {
        let depth = self.stream_depth[symbol][message.stream];
        let topic = self.shared.topics.book(symbol, depth);
        let update = &message.update;
        let u = update.update_id + self.u_offset[symbol][depth];
        let snapshot = update.kind == apex_book::UpdateKind::Snapshot;
        let data = &self.shared.symbols[symbol];
        let subscribed = self.shared.topics.has_subscribers(topic);
        let (ts, cts) = (self.clock.market_ms(update.ts_us), self.clock.market_ms(message.book_ts_us));
        {
            let mut book = data.books[depth].lock().expect("book state");
            book.apply(update, u, ts, cts);
            // A restart starts `u` again at 1: older checksums would name other books.
            if book.checksums.back().is_some_and(|&(last, _)| u <= last) {
                book.checksums.clear();
            }
            if subscribed {
                let checksum = book.checksum();
                book.checksums.push_back((u, checksum));
                if book.checksums.len() > crate::shared::CHECKSUM_HISTORY {
                    book.checksums.pop_front();
                }
            }
        }
        if !subscribed {
            return;
        }
        let units = &data.units;
        let level =
            |l: &apex_book::Level| Level(units.price(l.price).to_string().into(), units.qty(l.qty).to_string().into());
        let wire = OrderbookMessage {
            topic: self.shared.topics.name(topic).into(),
            kind: if snapshot { MessageKind::Snapshot } else { MessageKind::Delta },
            ts,
            data: OrderbookData {
                s: units.symbol.as_str().into(),
                b: update.bids.iter().map(level).collect(),
                a: update.asks.iter().map(level).collect(),
                u,
                seq: update.seq as i64,
            },
            cts: Some(cts),
        };
        self.broadcast(
            topic,
            u,
            snapshot,
            Utf8Bytes::from(serde_json::to_string(&wire).expect("book messages serialize")),
        );
    }

    fn publish_ticker(&mut self, symbol: usize, now_us: i64) {
        let ticker = self.ticker(symbol, now_us);
        let topic = self.shared.topics.ticker(symbol);
        // A linear ticker delta carries only the fields that changed (and the symbol); its reader merges it.
        let as_map = |t: &Ticker| match serde_json::to_value(t).expect("tickers serialize") {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a ticker is an object"),
        };
        let (old, new) = (as_map(&self.last_ticker[symbol]), as_map(&ticker));
        let mut changed: serde_json::Map<String, serde_json::Value> =
            new.into_iter().filter(|(key, value)| key != "symbol" && old.get(key) != Some(value)).collect();
        let unchanged = changed.is_empty();
        changed.insert("symbol".into(), serde_json::Value::String(ticker.symbol.clone()));
        let delta: Ticker = serde_json::from_value(serde_json::Value::Object(changed)).expect("a ticker's own fields");
        *self.shared.symbols[symbol].ticker.lock().expect("ticker") = ticker.clone();
        self.last_ticker[symbol] = ticker;
        if unchanged || !self.shared.topics.has_subscribers(topic) {
            return;
        }
        let message = TickerMessage {
            topic: self.shared.topics.name(topic).to_owned(),
            kind: MessageKind::Delta,
            data: delta,
            cs: Some(self.exchange.market(symbol).engine().sequence() as i64),
            ts: self.clock.market_ms(now_us),
            id: None,
        };
        self.broadcast(topic, 0, false, Utf8Bytes::from(serde_json::to_string(&message).expect("tickers serialize")));
    }

    /// The full ticker of a symbol now.
    fn ticker(&self, symbol: usize, now_us: i64) -> Ticker {
        let data = &self.shared.symbols[symbol];
        let units = &data.units;
        let engine = self.exchange.market(symbol).engine();
        let last = self.exchange.last_price(symbol);
        let now_ms = self.clock.market_ms(now_us);
        let (prev24, high, low, volume, turnover, prev1h) = {
            let candles = data.candles.lock().expect("candles");
            let day: Vec<_> = candles.minutes.iter().filter(|c| c.start_ms > now_ms - 86_400_000).collect();
            let prev24 = day.first().map_or(last, |c| c.open);
            let prev1h = candles.minutes.iter().find(|c| c.start_ms > now_ms - 3_600_000).map_or(last, |c| c.open);
            let high = day.iter().map(|c| c.high).max().unwrap_or(last);
            let low = day.iter().map(|c| c.low).min().unwrap_or(last);
            let volume: i64 = day.iter().map(|c| c.volume).sum();
            let turnover: i128 = day.iter().map(|c| c.turnover).sum();
            (prev24, high, low, volume, turnover, prev1h)
        };
        let open_interest: i64 = engine.accounts().map(|(_, a)| a.position.max(0)).sum();
        let mid = match (engine.best_bid(), engine.best_ask()) {
            (Some(b), Some(a)) => (b.price + a.price) / 2 / data.spec.tick * data.spec.tick,
            _ => last,
        };
        let pcnt = if prev24 > 0 { (i128::from(last - prev24) * 1_000_000 / i128::from(prev24)) as i64 } else { 0 };
        let funding_period_ms = 8 * 3_600_000;
        let dec = |text: String| Some(Dec::new(text).expect("decimal"));
        Ticker {
            symbol: units.symbol.clone(),
            tick_direction: Some(self.tick_direction[symbol].clone()),
            price24h_pcnt: dec(wire::fixed(i128::from(pcnt), 6)),
            last_price: Some(units.price(last)),
            prev_price24h: Some(units.price(prev24)),
            high_price24h: Some(units.price(high)),
            low_price24h: Some(units.price(low)),
            prev_price1h: Some(units.price(prev1h)),
            mark_price: Some(units.price(mid)),
            index_price: Some(units.price(mid)),
            open_interest: Some(units.qty(open_interest)),
            open_interest_value: Some(units.value(i128::from(open_interest) * i128::from(mid))),
            turnover24h: Some(units.value(turnover)),
            volume24h: Some(units.qty(volume)),
            next_funding_time: Some(((now_ms / funding_period_ms + 1) * funding_period_ms).to_string()),
            funding_rate: dec("0".into()),
            bid1_price: Some(engine.best_bid().map_or(Dec::EMPTY, |l| units.price(l.price))),
            bid1_size: Some(engine.best_bid().map_or(Dec::EMPTY, |l| units.qty(l.qty))),
            ask1_price: Some(engine.best_ask().map_or(Dec::EMPTY, |l| units.price(l.price))),
            ask1_size: Some(engine.best_ask().map_or(Dec::EMPTY, |l| units.qty(l.qty))),
            delivery_time: Some("0".into()),
            basis_rate: None,
            delivery_fee_rate: None,
            predicted_delivery_price: None,
            basis: None,
            basis_rate_year: None,
            pre_open_price: Some(Dec::EMPTY),
            pre_qty: Some(Dec::EMPTY),
            cur_pre_listing_phase: Some(String::new()),
            funding_interval_hour: Some("8".into()),
            funding_cap: None,
            usd_index_price: None,
        }
    }

    fn publish_klines(&mut self, symbol: usize, now_us: i64) {
        let now_ms = self.clock.market_ms(now_us);
        let data = &self.shared.symbols[symbol];
        let last = self.exchange.last_price(symbol);
        let mut messages = Vec::new();
        {
            let mut candles = data.candles.lock().expect("candles");
            candles.roll(now_ms, last);
            for (index, interval) in KLINE_INTERVALS.iter().enumerate() {
                let topic = self.shared.topics.kline(symbol, index);
                let Some(current) = candles.current(interval) else { continue };
                let previous = self.kline_start[symbol][index];
                self.kline_start[symbol][index] = current.start_ms;
                if !self.shared.topics.has_subscribers(topic) {
                    continue;
                }
                let name = self.shared.topics.name(topic);
                // The candle that just closed goes out once more, confirmed.
                if previous != i64::MIN
                    && previous < current.start_ms
                    && let Some(closed) = candles.klines(interval, previous, previous, 1).first()
                {
                    messages.push((topic, Candles::message(name, interval, &data.units, closed, true, now_ms)));
                }
                messages.push((topic, Candles::message(name, interval, &data.units, &current, false, now_ms)));
            }
        }
        for (topic, text) in messages {
            self.broadcast(topic, 0, false, text);
        }
    }

    /// Groups the exchange's account updates into one message per account and topic.
    fn publish_private(&mut self, now_us: i64) {
        let updates: Vec<AccountUpdate> = self.exchange.drain_updates().collect();
        if updates.is_empty() {
            return;
        }
        let accounts = self.shared.accounts.len();
        let mut orders: Vec<Vec<Order>> = vec![Vec::new(); accounts];
        let mut executions: Vec<Vec<Execution>> = vec![Vec::new(); accounts];
        let mut positions: Vec<Vec<Position>> = vec![Vec::new(); accounts];
        let mut wallets: Vec<Option<Wallet>> = vec![None; accounts];
        for update in &updates {
            let account = update.account() as usize;
            match update {
                AccountUpdate::Order(_, o) => orders[account].push(self.wire_order(o)),
                AccountUpdate::Execution(_, e) => {
                    executions[account].push(wire::execution(&self.shared.symbols[e.symbol].units, &self.clock, e));
                }
                AccountUpdate::Position(_, p) => {
                    let record = wire::position(&self.shared.symbols[p.symbol].units, &self.clock, p);
                    positions[account].retain(|q| q.symbol != record.symbol);
                    positions[account].push(record);
                }
                AccountUpdate::Wallet(_, w) => wallets[account] = Some(wire::wallet(w)),
            }
        }
        let creation = self.clock.market_ms(now_us);
        for account in 0..accounts {
            let sender = &self.shared.accounts[account].private;
            if sender.receiver_count() == 0 {
                continue;
            }
            let wallet: Vec<Wallet> = wallets[account].take().into_iter().collect();
            self.send_private(account, PrivateStream::Order, "order", creation, std::mem::take(&mut orders[account]));
            self.send_private(
                account,
                PrivateStream::Execution,
                "execution",
                creation,
                std::mem::take(&mut executions[account]),
            );
            self.send_private(
                account,
                PrivateStream::Position,
                "position",
                creation,
                std::mem::take(&mut positions[account]),
            );
            self.send_private(account, PrivateStream::Wallet, "wallet", creation, wallet);
        }
    }

    fn send_private<T: Serialize>(
        &mut self,
        account: usize,
        stream: PrivateStream,
        topic: &str,
        creation: i64,
        data: Vec<T>,
    ) {
        if data.is_empty() {
            return;
        }
        let rows = data.len();
        self.private_seq += 1;
        let message = PrivateMessage {
            id: Some(format!("{account}-{}-{}", self.private_seq, wall_ms())),
            topic: topic.to_owned(),
            creation_time: creation,
            data,
        };
        let text = Utf8Bytes::from(serde_json::to_string(&message).expect("private messages serialize"));
        let message = PrivateMsg { stream, text };
        if matches!(stream, PrivateStream::Order | PrivateStream::Execution)
            && self.loss_dice.hit(self.shared.faults.private_loss.map(|c| c.probability))
        {
            let details = json!({"account": self.shared.accounts[account].spec.name, "topic": topic, "rows": rows});
            self.shared.fault_log.record(wall_ms(), "private_loss", details);
            return;
        }
        match self.shared.faults.execution_lag {
            Some(lag) if stream == PrivateStream::Execution => {
                let details = json!({"account": self.shared.accounts[account].spec.name, "executions": rows,
                    "delay_ms": lag.delay_ms});
                self.shared.fault_log.record(wall_ms(), "execution_lag", details);
                self.lagging.push_back((Instant::now() + Duration::from_millis(lag.delay_ms), account, message));
            }
            _ => {
                let _ = self.shared.accounts[account].private.send(message);
            }
        }
    }

    /// Sends the held-back execution and trade messages that are due by `now` (one delay per stream keeps each in
    /// order).
    fn release_lagging(&mut self, now: Instant) {
        while self.lagging.front().is_some_and(|(due, _, _)| *due <= now) {
            let (_, account, message) = self.lagging.pop_front().expect("a front was just seen");
            let _ = self.shared.accounts[account].private.send(message);
        }
        while self.lagging_trades.front().is_some_and(|(due, _)| *due <= now) {
            let (_, message) = self.lagging_trades.pop_front().expect("a front was just seen");
            let _ = self.shared.public.send(message);
        }
    }
}

/// A public trade id: UUID-shaped, unique per symbol and trade.
fn trade_id(symbol: usize, trade_id: u64) -> String {
    let h = trade_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((symbol as u64) << 59);
    format!(
        "{:08x}-{:04x}-5{:03x}-9{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 40) & 0xfff,
        trade_id
    )
}
