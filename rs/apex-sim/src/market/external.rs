//! Accounts that trade in the market from outside the simulation (a venue's clients): what they send, stamped with
//! their arrival time, and what the market answers on their per-account event stream; plus the public trade and L2
//! streams a caller drains.
//!
//! An outside order is named by the caller's `tag` (its order id on the caller's side, unique per account), since
//! the engine only numbers an order when it arrives. Take-profit and stop-loss belong to the account's position, as
//! on Bybit (one-way mode, "Full"): triggered by the last traded price, they send a reduce-only market order for the
//! whole position that carries the stop's tag; closing or flipping the position deactivates them.

use std::collections::BTreeMap;

use apex_core::{AccountId, CancelReason, Event, Liquidity, NewOrder, OrderId, RejectReason, Side, TradeId};

use super::{Market, Task};
use crate::publish::L2Update;
use crate::{BookPublisher, SimError};

/// Bybit re-sends an unchanged depth-1 snapshot (same `u`) after this long.
const DEPTH1_REPEAT_US: i64 = 3_000_000;

/// The caller's name for an outside order.
pub type Tag = u64;

/// A position take-profit or stop-loss: its trigger (on the last traded price) and the tag its order will carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSpec {
    pub tag: Tag,
    pub trigger_price: i64,
}

/// Which of a position's two stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StopKind {
    TakeProfit,
    StopLoss,
}

/// The take-profit and stop-loss to set on a position (`None`: none of that kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stops {
    pub take_profit: Option<StopSpec>,
    pub stop_loss: Option<StopSpec>,
}

impl Stops {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.take_profit.is_none() && self.stop_loss.is_none()
    }
}

/// What an outside account asks of the market. It takes effect when it arrives (see [`crate::Market::send_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalRequest {
    /// A new order; once it trades, `attach` becomes the position's take-profit/stop-loss (if not empty).
    Submit { tag: Tag, order: NewOrder, attach: Stops },
    /// Cancel the order named `tag`.
    Cancel { tag: Tag },
    /// New price and/or new total quantity of the order named `tag` (see [`crate::MatchingEngine::amend`]).
    Amend { tag: Tag, price: Option<i64>, total_qty: Option<i64> },
    /// Replace the position's take-profit and stop-loss (`Stops::default()` clears both).
    SetStops(Stops),
}

/// Something that happened to one of an outside account's orders or stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEventKind {
    /// The order reached the engine and passed its checks; `price` is the effective limit (the band for a market
    /// order) and `qty` the quantity after reduce-only trimming.
    Accepted {
        order_id: OrderId,
        side: Side,
        price: i64,
        qty: i64,
    },
    /// The order (or a cancel/amend of it) was refused; nothing changed.
    Rejected {
        reason: RejectReason,
    },
    /// One fill of the order. `fee` is in the engine's cash units.
    Fill {
        trade_id: TradeId,
        side: Side,
        price: i64,
        qty: i64,
        fee: i128,
        liquidity: Liquidity,
        leaves_qty: i64,
    },
    Cancelled {
        leaves_qty: i64,
        reason: CancelReason,
    },
    Amended {
        price: i64,
        leaves_qty: i64,
    },
    /// A stop was set on the position (it waits for its trigger).
    StopSet {
        kind: StopKind,
        trigger_price: i64,
    },
    /// The last price crossed the stop's trigger: its reduce-only market order follows under the same tag.
    StopTriggered {
        kind: StopKind,
        trigger_price: i64,
        last_price: i64,
    },
    /// The stop is gone without triggering (the position closed or flipped, or new stops replaced it).
    StopCancelled {
        kind: StopKind,
    },
}

/// One event of an outside account's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountEvent {
    /// Simulated time it happened.
    pub ts_us: i64,
    pub account: AccountId,
    /// The order (or stop) it concerns.
    pub tag: Tag,
    pub kind: AccountEventKind,
    /// The account's position after the event, in quantity units.
    pub position: i64,
}

/// One public trade (a match of a taker against one maker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicTrade {
    pub ts_us: i64,
    pub trade_id: TradeId,
    pub taker_side: Side,
    pub price: i64,
    pub qty: i64,
    /// The engine's sequence after the trade (Bybit's cross sequence `seq`).
    pub seq: u64,
}

/// One message of an L2 stream added with [`crate::Market::add_book_stream`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookMessage {
    /// Index of the stream (in the order the streams were added).
    pub stream: usize,
    pub update: L2Update,
    /// Simulated time of the last change of the book this message shows (Bybit's `cts`).
    pub book_ts_us: i64,
}

/// An outside order resting in (or on its way to) the engine.
#[derive(Debug, Clone, Copy)]
struct Resting {
    account: AccountId,
    tag: Tag,
    attach: Stops,
}

/// The stops of one position, and the direction the position had when they were set.
#[derive(Debug, Clone, Copy)]
struct PositionStops {
    long: bool,
    stops: Stops,
}

/// One L2 stream: its publisher and cadence; depth 1 remembers its last snapshot to repeat it.
#[derive(Debug, Clone)]
struct BookStream {
    publisher: BookPublisher,
    cadence_us: i64,
    last: Option<L2Update>,
    last_sent_us: i64,
}

/// Everything the market keeps for outside accounts and public streams (nothing while there are none, so a Forge run
/// pays for none of it).
#[derive(Debug, Clone, Default)]
pub(super) struct Outside {
    /// Ids of outside accounts are `first..next`.
    first: AccountId,
    next: AccountId,
    positions: BTreeMap<AccountId, i64>,
    orders: BTreeMap<OrderId, Resting>,
    tags: BTreeMap<(AccountId, Tag), OrderId>,
    stops: BTreeMap<AccountId, PositionStops>,
    /// Requests on their way (a slot store like the agents' intents).
    pending: Vec<Option<(AccountId, ExternalRequest)>>,
    free: Vec<usize>,
    events: Vec<AccountEvent>,
    public_trades: bool,
    trades: Vec<PublicTrade>,
    books: Vec<BookStream>,
    book_out: Vec<BookMessage>,
    last_change_us: i64,
}

impl Outside {
    pub(super) fn new(first: AccountId) -> Outside {
        Outside { first, next: first, ..Outside::default() }
    }

    /// Removes and returns the events of `account`, keeping the other accounts' in order.
    pub(super) fn take_events_of(&mut self, account: AccountId) -> Vec<AccountEvent> {
        let (mine, others) = std::mem::take(&mut self.events).into_iter().partition(|e| e.account == account);
        self.events = others;
        mine
    }

    /// Whether any engine event needs routing here.
    pub(super) fn active(&self) -> bool {
        self.next > self.first || self.public_trades || !self.books.is_empty()
    }

    fn is_outside(&self, account: AccountId) -> bool {
        account >= self.first && account < self.next
    }
}

impl Market {
    /// Opens an outside account with its order-entry latency (simulated microseconds between sending a request and
    /// its arrival). Ids follow the agents'.
    pub fn add_account(&mut self, latency_us: i64) -> AccountId {
        let id = self.outside.next;
        self.outside.next += 1;
        debug_assert_eq!(self.latency_of.len(), id as usize, "ids follow one another");
        self.latency_of.push(latency_us.max(0));
        self.outside.positions.insert(id, 0);
        id
    }

    /// Sends `request` from an outside `account` at simulated time `sent_us`. It takes effect at `sent_us` plus the
    /// account's latency (or at the current time if that has already passed), in time order with the agents'
    /// orders; returns that arrival time. What happens is reported on the account's event stream.
    ///
    /// # Errors
    /// `UnknownAccount` for an account not opened with [`Market::add_account`].
    pub fn send_request(
        &mut self,
        sent_us: i64,
        account: AccountId,
        request: ExternalRequest,
    ) -> Result<i64, SimError> {
        if !self.outside.is_outside(account) {
            return Err(SimError::UnknownAccount(account));
        }
        let arrival = sent_us.saturating_add(self.latency_of[account as usize]).max(self.now_us);
        self.queue_outside(arrival, account, request);
        Ok(arrival)
    }

    fn queue_outside(&mut self, arrival: i64, account: AccountId, request: ExternalRequest) {
        let entry = Some((account, request));
        let slot = match self.outside.free.pop() {
            Some(slot) => {
                self.outside.pending[slot] = entry;
                slot
            }
            None => {
                self.outside.pending.push(entry);
                self.outside.pending.len() - 1
            }
        };
        self.schedule(arrival, Task::ArriveOutside(slot));
    }

    /// Streams every public trade from now on (drained with [`Market::drain_public_trades`]).
    pub fn stream_public_trades(&mut self) {
        self.outside.public_trades = true;
    }

    /// Adds an L2 stream of the top `depth` levels published every `cadence_us` (a snapshot first, then deltas;
    /// snapshots only at depth 1, repeated with the same `u` after 3 s without change, as Bybit does). Returns its
    /// index in [`BookMessage::stream`].
    ///
    /// # Errors
    /// `ZeroDepth` for depth 0, `Config` for a cadence that is not positive.
    pub fn add_book_stream(&mut self, depth: usize, cadence_us: i64) -> Result<usize, SimError> {
        if cadence_us <= 0 {
            return Err(SimError::Config(format!("book stream cadence must be positive, got {cadence_us} us")));
        }
        let publisher = BookPublisher::new(depth)?;
        self.outside.books.push(BookStream { publisher, cadence_us, last: None, last_sent_us: 0 });
        let index = self.outside.books.len() - 1;
        self.schedule(self.now_us, Task::Stream(index));
        Ok(index)
    }

    /// Restarts every L2 stream, as a service restart does on Bybit: the next message of each is a snapshot with
    /// `u` = 1.
    pub fn restart_book_streams(&mut self) {
        for stream in &mut self.outside.books {
            stream.publisher = BookPublisher::new(stream.publisher.depth()).expect("the depth was valid when added");
            stream.last = None;
        }
    }

    /// The outside accounts' events since the last call, in the order they happened.
    pub fn drain_account_events(&mut self) -> std::vec::Drain<'_, AccountEvent> {
        self.outside.events.drain(..)
    }

    /// Public trades since the last call (after [`Market::stream_public_trades`]).
    pub fn drain_public_trades(&mut self) -> std::vec::Drain<'_, PublicTrade> {
        self.outside.trades.drain(..)
    }

    /// L2 messages since the last call, in time order.
    pub fn drain_book_messages(&mut self) -> std::vec::Drain<'_, BookMessage> {
        self.outside.book_out.drain(..)
    }

    /// An outside account's position in quantity units (0 for an unknown account).
    #[must_use]
    pub fn position(&self, account: AccountId) -> i64 {
        self.outside.positions.get(&account).copied().unwrap_or(0)
    }

    /// The engine's id of an outside order that is resting (or `None`: not arrived yet, or done).
    #[must_use]
    pub fn order_id_of(&self, account: AccountId, tag: Tag) -> Option<OrderId> {
        self.outside.tags.get(&(account, tag)).copied()
    }

    /// The take-profit and stop-loss waiting on an outside account's position.
    #[must_use]
    pub fn stops(&self, account: AccountId) -> Stops {
        self.outside.stops.get(&account).map(|p| p.stops).unwrap_or_default()
    }

    pub(super) fn publish_stream(&mut self, ts: i64, index: usize) {
        let book_ts_us = self.outside.last_change_us.min(ts);
        let stream = &mut self.outside.books[index];
        let message = match stream.publisher.publish(&self.engine, ts) {
            Some(update) => {
                if stream.publisher.depth() == 1 {
                    stream.last = Some(update.clone());
                }
                Some(update)
            }
            None => match &stream.last {
                Some(last) if ts - stream.last_sent_us >= DEPTH1_REPEAT_US => {
                    Some(crate::L2Update { ts_us: ts, ..last.clone() })
                }
                _ => None,
            },
        };
        if let Some(update) = message {
            stream.last_sent_us = ts;
            self.outside.book_out.push(BookMessage { stream: index, update, book_ts_us });
        }
        let cadence = stream.cadence_us;
        self.schedule(ts + cadence, Task::Stream(index));
    }

    /// A request of an outside account reaching the engine.
    pub(super) fn arrive_outside(&mut self, ts: i64, slot: usize) {
        let Some((account, request)) = self.outside.pending[slot].take() else { return };
        self.outside.free.push(slot);
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        match request {
            ExternalRequest::Submit { tag, order, attach } => {
                let order = NewOrder { account, ..order };
                let order_id = self.engine.submit(ts, &order, &mut events);
                self.outside.orders.insert(order_id, Resting { account, tag, attach });
                self.outside.tags.insert((account, tag), order_id);
                self.absorb(ts, &events);
                if self.engine.order(order_id).is_none() {
                    self.forget_outside(order_id);
                }
            }
            ExternalRequest::Cancel { tag } | ExternalRequest::Amend { tag, .. } => {
                match self.outside.tags.get(&(account, tag)).copied() {
                    None => self.push_outside(
                        ts,
                        account,
                        tag,
                        AccountEventKind::Rejected { reason: RejectReason::UnknownOrder },
                    ),
                    Some(order_id) => {
                        if let ExternalRequest::Amend { price, total_qty, .. } = request {
                            self.engine.amend(ts, account, order_id, price, total_qty, &mut events);
                        } else {
                            self.engine.cancel(ts, account, order_id, &mut events);
                        }
                        self.absorb(ts, &events);
                    }
                }
            }
            ExternalRequest::SetStops(stops) => self.set_stops(ts, account, stops, None),
        }
        self.events = events;
    }

    fn forget_outside(&mut self, order_id: OrderId) {
        if let Some(resting) = self.outside.orders.remove(&order_id) {
            self.outside.tags.remove(&(resting.account, resting.tag));
        }
    }

    fn push_outside(&mut self, ts_us: i64, account: AccountId, tag: Tag, kind: AccountEventKind) {
        let position = self.position(account);
        self.outside.events.push(AccountEvent { ts_us, account, tag, kind, position });
    }

    /// Replaces the stops of `account`'s position (`request_tag`: the tag a refusal is reported under, for stops
    /// attached to an order).
    fn set_stops(&mut self, ts: i64, account: AccountId, stops: Stops, request_tag: Option<Tag>) {
        self.cancel_stops(ts, account);
        let position = self.position(account);
        if stops.is_empty() {
            return;
        }
        if position == 0 {
            let tag = request_tag.or(stops.take_profit.map(|s| s.tag)).or(stops.stop_loss.map(|s| s.tag));
            let reason = RejectReason::NoPosition;
            self.push_outside(ts, account, tag.unwrap_or(0), AccountEventKind::Rejected { reason });
            return;
        }
        self.outside.stops.insert(account, PositionStops { long: position > 0, stops });
        for (kind, spec) in [(StopKind::TakeProfit, stops.take_profit), (StopKind::StopLoss, stops.stop_loss)] {
            if let Some(spec) = spec {
                let set = AccountEventKind::StopSet { kind, trigger_price: spec.trigger_price };
                self.push_outside(ts, account, spec.tag, set);
            }
        }
    }

    fn cancel_stops(&mut self, ts: i64, account: AccountId) {
        if let Some(old) = self.outside.stops.remove(&account) {
            for (kind, spec) in
                [(StopKind::TakeProfit, old.stops.take_profit), (StopKind::StopLoss, old.stops.stop_loss)]
            {
                if let Some(spec) = spec {
                    self.push_outside(ts, account, spec.tag, AccountEventKind::StopCancelled { kind });
                }
            }
        }
    }

    /// Routes the engine's events to the outside accounts' streams and the public streams, then applies what they
    /// imply for stops: attached stops of filled orders, stops of closed or flipped positions, triggers.
    pub(super) fn route_outside(&mut self, ts: i64, events: &[Event]) {
        let mut last_price = None;
        let mut attach: Vec<(AccountId, Tag, Stops)> = Vec::new();
        let mut touched: Vec<AccountId> = Vec::new();
        for event in events {
            match *event {
                Event::Trade { trade_id, ts_us, taker_side, price, qty, .. } => {
                    last_price = Some(price);
                    if self.outside.public_trades {
                        let seq = self.engine.sequence();
                        self.outside.trades.push(PublicTrade { ts_us, trade_id, taker_side, price, qty, seq });
                    }
                }
                Event::BookLevel { .. } => self.outside.last_change_us = ts,
                Event::Accepted { order_id, account, side, price, qty } if self.outside.is_outside(account) => {
                    if let Some(r) = self.outside.orders.get(&order_id).copied() {
                        self.push_outside(
                            ts,
                            account,
                            r.tag,
                            AccountEventKind::Accepted { order_id, side, price, qty },
                        );
                    }
                }
                Event::Rejected { order_id, account, reason } if self.outside.is_outside(account) => {
                    if let Some(r) = self.outside.orders.get(&order_id).copied() {
                        self.push_outside(ts, account, r.tag, AccountEventKind::Rejected { reason });
                    }
                }
                Event::Fill { trade_id, order_id, account, side, price, qty, fee, liquidity, leaves_qty, .. }
                    if self.outside.is_outside(account) =>
                {
                    *self.outside.positions.entry(account).or_default() += if side == Side::Buy { qty } else { -qty };
                    if let Some(r) = self.outside.orders.get(&order_id).copied() {
                        let kind = AccountEventKind::Fill { trade_id, side, price, qty, fee, liquidity, leaves_qty };
                        self.push_outside(ts, account, r.tag, kind);
                        if !r.attach.is_empty() {
                            attach.retain(|a| a.0 != account);
                            attach.push((account, r.tag, r.attach));
                        }
                        if leaves_qty == 0 {
                            self.forget_outside(order_id);
                        }
                    }
                    if !touched.contains(&account) {
                        touched.push(account);
                    }
                }
                Event::Cancelled { order_id, account, leaves_qty, reason } if self.outside.is_outside(account) => {
                    if let Some(r) = self.outside.orders.get(&order_id).copied() {
                        self.push_outside(ts, account, r.tag, AccountEventKind::Cancelled { leaves_qty, reason });
                        self.forget_outside(order_id);
                    }
                }
                Event::Amended { order_id, account, price, leaves_qty, .. } if self.outside.is_outside(account) => {
                    if let Some(r) = self.outside.orders.get(&order_id).copied() {
                        self.push_outside(ts, account, r.tag, AccountEventKind::Amended { price, leaves_qty });
                    }
                }
                _ => {}
            }
        }
        // A position that closed or changed direction takes its stops with it.
        for account in touched {
            if let Some(p) = self.outside.stops.get(&account) {
                let position = self.position(account);
                if position == 0 || (position > 0) != p.long {
                    self.cancel_stops(ts, account);
                }
            }
        }
        for (account, tag, stops) in attach {
            self.set_stops(ts, account, stops, Some(tag));
        }
        if let Some(last) = last_price
            && !self.outside.stops.is_empty()
        {
            self.trigger_stops(ts, last);
        }
    }

    /// Fires the stops the last price crossed: a reduce-only market order for the whole position, arriving now.
    fn trigger_stops(&mut self, ts: i64, last: i64) {
        let mut fired = Vec::new();
        for (&account, p) in &self.outside.stops {
            let (tp, sl) = (p.stops.take_profit, p.stops.stop_loss);
            let hit = |spec: Option<StopSpec>, above: bool| {
                spec.filter(|s| if above { last >= s.trigger_price } else { last <= s.trigger_price })
            };
            // Long: take profit above, stop loss below; short the other way round. A stop loss wins a tie.
            let (sl_hit, tp_hit) = (hit(sl, !p.long), hit(tp, p.long));
            if let Some((kind, spec)) =
                sl_hit.map(|s| (StopKind::StopLoss, s)).or(tp_hit.map(|s| (StopKind::TakeProfit, s)))
            {
                fired.push((account, kind, spec));
            }
        }
        for (account, kind, spec) in fired {
            let Some(p) = self.outside.stops.remove(&account) else { continue };
            let other = match kind {
                StopKind::TakeProfit => p.stops.stop_loss.map(|s| (StopKind::StopLoss, s)),
                StopKind::StopLoss => p.stops.take_profit.map(|s| (StopKind::TakeProfit, s)),
            };
            let triggered =
                AccountEventKind::StopTriggered { kind, trigger_price: spec.trigger_price, last_price: last };
            self.push_outside(ts, account, spec.tag, triggered);
            if let Some((other_kind, other_spec)) = other {
                self.push_outside(ts, account, other_spec.tag, AccountEventKind::StopCancelled { kind: other_kind });
            }
            let position = self.position(account);
            let side = if position > 0 { Side::Sell } else { Side::Buy };
            let order = NewOrder::market(account, side, position.abs()).reduce_only();
            let request = ExternalRequest::Submit { tag: spec.tag, order, attach: Stops::default() };
            // Bybit's trigger is internal: the order goes in right away, not after the account's latency.
            self.queue_outside(ts, account, request);
        }
    }
}
