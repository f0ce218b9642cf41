//! The matching engine: one instrument's book with price-time priority, per-account positions, cash and fees.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use apex_book::Level;
use apex_core::Side;

use crate::SimError;
use crate::order::{
    AccountId, CancelReason, Event, Liquidity, NewOrder, OrderId, OrderKind, RejectReason, StpMode, TimeInForce,
};
use crate::spec::{ExactRates, FEE_RATE_DECIMALS, InstrumentSpec, MAX_PRICE_UNITS};
use ladder::Ladder;

mod ladder;

/// What one account holds on this instrument.
///
/// Cash is exact fixed point: an `i128` count of 10^-[`InstrumentSpec::cash_decimals`] quote units (a price unit
/// times a quantity unit times a fee-rate unit of 1e-8), so notionals and fees never round and the sum over accounts
/// of `cash + fees` stays exactly 0. Cash starts at 0: capital is the caller's business, cash is the trading flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Account {
    /// Signed position in quantity units (positive long).
    pub position: i64,
    /// Quote cash from trading, fees already deducted.
    pub cash: i128,
    /// Fees paid (negative when maker rebates exceed them), in cash units.
    pub fees: i128,
}

/// An order resting in the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RestingOrder {
    pub order_id: OrderId,
    pub account: AccountId,
    pub side: Side,
    /// Limit price in price units.
    pub price: i64,
    /// Open quantity; 0 only for cancelled entries the engine has not swept yet (never visible through the API).
    pub leaves_qty: i64,
    /// Quantity already filled (kept across amends: Bybit's `cumExecQty`).
    pub filled_qty: i64,
    pub reduce_only: bool,
    /// Entered as PostOnly: an amend that would cross is refused.
    pub post_only: bool,
    /// Self-trade prevention applied if this order is re-priced across the book by an amend.
    pub stp: StpMode,
    /// Time priority within the price level: smaller is earlier. Unique over the engine's life.
    pub priority: u64,
}

/// One price level: orders in time priority. Cancelled orders inside the queue are left as zero-quantity tombstones
/// (so a cancel is a binary search, not a shift) and swept when they reach the front or outnumber live orders.
#[derive(Debug, Clone, Default)]
struct Queue {
    orders: VecDeque<RestingOrder>,
    total: i64,
    live: usize,
}

impl Queue {
    fn sweep(&mut self) {
        while self.orders.front().is_some_and(|o| o.leaves_qty == 0) {
            self.orders.pop_front();
        }
        if self.orders.len() > 2 * self.live + 16 {
            self.orders.retain(|o| o.leaves_qty > 0);
        }
    }

    /// Takes the order at `priority` out of the queue (as a tombstone) and returns it as it was.
    fn remove(&mut self, priority: u64) -> RestingOrder {
        let at = self
            .orders
            .binary_search_by_key(&priority, |o| o.priority)
            .expect("the index only names orders that are in their queue");
        let order = self.orders[at];
        self.orders[at].leaves_qty = 0;
        self.total -= order.leaves_qty;
        self.live -= 1;
        self.sweep();
        order
    }
}

/// Hashes the engine's own sequential order ids: one multiplication instead of SipHash, which the ids (not chosen
/// by an adversary) do not need. The index is only looked up, never iterated, so no hash order reaches an output.
#[derive(Debug, Clone, Copy, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26);
    }
}

type IdIndex = HashMap<OrderId, Location, BuildHasherDefault<IdHasher>>;

/// Accounts that have traded, by id: the market numbers its agents from 1, so small ids sit in a vector indexed by id
/// (a lookup per trade and per agent decision, where a map searched); any larger id in a map after them.
#[derive(Debug, Clone, Default)]
struct Accounts {
    dense: Vec<Option<Account>>,
    sparse: BTreeMap<AccountId, Account>,
}

/// Ids below this are [`Accounts::dense`].
const DENSE_ACCOUNTS: AccountId = 1 << 16;

impl Accounts {
    fn get(&self, id: AccountId) -> Option<&Account> {
        if id < DENSE_ACCOUNTS { self.dense.get(id as usize)?.as_ref() } else { self.sparse.get(&id) }
    }

    /// The account `id`, opened (all zero) if it never traded.
    fn entry(&mut self, id: AccountId) -> &mut Account {
        if id >= DENSE_ACCOUNTS {
            return self.sparse.entry(id).or_default();
        }
        let index = id as usize;
        if index >= self.dense.len() {
            self.dense.resize(index + 1, None);
        }
        self.dense[index].get_or_insert_default()
    }

    /// Every account that has traded, by id.
    fn iter(&self) -> impl Iterator<Item = (AccountId, &Account)> {
        let dense = self.dense.iter().enumerate().filter_map(|(id, a)| a.as_ref().map(|a| (id as AccountId, a)));
        dense.chain(self.sparse.iter().map(|(&id, account)| (id, account)))
    }
}

/// Where an order rests: the key into its side, level and queue, and its owner (a cancel or amend checks the owner
/// without finding the order in its queue).
#[derive(Debug, Clone, Copy)]
struct Location {
    account: AccountId,
    side: Side,
    price: i64,
    priority: u64,
}

/// The incoming side of a match.
#[derive(Debug, Clone, Copy)]
struct Taker {
    order_id: OrderId,
    account: AccountId,
    side: Side,
    limit: i64,
    remaining: i64,
    filled: i64,
    reduce_only: bool,
    stp: StpMode,
}

/// Why matching stopped with quantity left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Filled,
    NoCross,
    SelfTrade,
    ReduceOnly,
}

impl Stop {
    fn cancel_reason(self) -> CancelReason {
        match self {
            Stop::SelfTrade => CancelReason::SelfTrade,
            Stop::ReduceOnly => CancelReason::ReduceOnly,
            Stop::Filled | Stop::NoCross => CancelReason::Unfilled,
        }
    }
}

/// How much of an order on `side` can trade without increasing |position|.
fn reducible(position: i64, side: Side) -> i64 {
    match side {
        Side::Sell => position.max(0),
        Side::Buy => (-position).max(0),
    }
}

/// Whether a taker on `side` with `limit` may trade at a maker's `price`.
fn crosses(side: Side, limit: i64, price: i64) -> bool {
    match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

/// Price-time-priority matching for one instrument. Every call takes the current time in microseconds (stamped on
/// trades and fills) and appends what happened to `events`, in order.
#[derive(Debug, Clone)]
pub struct MatchingEngine {
    spec: InstrumentSpec,
    rates: ExactRates,
    bids: Ladder,
    asks: Ladder,
    index: IdIndex,
    accounts: Accounts,
    last_order_id: OrderId,
    last_trade_id: u64,
    next_priority: u64,
    sequence: u64,
}

impl MatchingEngine {
    /// # Errors
    /// Whatever [`InstrumentSpec::validate`] finds wrong with `spec`.
    pub fn new(spec: InstrumentSpec) -> Result<MatchingEngine, SimError> {
        let rates = spec.validate()?;
        Ok(MatchingEngine {
            spec,
            rates,
            bids: Ladder::new(Side::Buy),
            asks: Ladder::new(Side::Sell),
            index: IdIndex::default(),
            accounts: Accounts::default(),
            last_order_id: 0,
            last_trade_id: 0,
            next_priority: 0,
            sequence: 0,
        })
    }

    /// The instrument this engine trades.
    #[must_use]
    pub fn spec(&self) -> &InstrumentSpec {
        &self.spec
    }

    /// Submits a new order and returns its id (assigned even when the order is rejected).
    ///
    /// Checks, in order: quantity (positive, on the lot, at least the minimum), limit price (positive, on the tick),
    /// market liquidity, reduce-only (trimmed to the reducible position), PostOnly crossing, FOK fillability. Then the
    /// order takes liquidity from the best price and the oldest order on; a GTC or PostOnly remainder rests, any other
    /// remainder is cancelled.
    pub fn submit(&mut self, ts_us: i64, order: &NewOrder, events: &mut Vec<Event>) -> OrderId {
        self.last_order_id += 1;
        let order_id = self.last_order_id;
        let reject = |events: &mut Vec<Event>, reason| {
            events.push(Event::Rejected { order_id, account: order.account, reason });
            order_id
        };
        let spec = &self.spec;
        if order.qty <= 0 || order.qty % spec.lot != 0 || order.qty < spec.min_qty || order.qty > spec.max_qty {
            return reject(events, RejectReason::InvalidQty);
        }
        let best_opposite = self.best_price(order.side.opposite());
        let (limit, tif) = match order.kind {
            OrderKind::Limit { price, tif } => {
                if price <= 0 || price > MAX_PRICE_UNITS || price % spec.tick != 0 {
                    return reject(events, RejectReason::InvalidPrice);
                }
                (price, tif)
            }
            OrderKind::Market => match best_opposite {
                Some(best) => (self.band_price(order.side, best), TimeInForce::Ioc),
                None => return reject(events, RejectReason::NoLiquidity),
            },
        };
        let mut qty = order.qty;
        if order.reduce_only {
            let cap = reducible(self.account(order.account).position, order.side);
            if cap == 0 {
                return reject(events, RejectReason::ReduceOnlyWouldIncrease);
            }
            qty = qty.min(cap);
        }
        let taker = Taker {
            order_id,
            account: order.account,
            side: order.side,
            limit,
            remaining: qty,
            filled: 0,
            reduce_only: order.reduce_only,
            stp: order.stp,
        };
        if tif == TimeInForce::PostOnly && best_opposite.is_some_and(|best| crosses(order.side, limit, best)) {
            return reject(events, RejectReason::PostOnlyWouldTake);
        }
        if tif == TimeInForce::Fok && self.fillable(&taker) < qty {
            return reject(events, RejectReason::FokUnfillable);
        }
        self.sequence += 1;
        events.push(Event::Accepted { order_id, account: order.account, side: order.side, price: limit, qty });
        self.execute(ts_us, taker, matches!(tif, TimeInForce::Gtc | TimeInForce::PostOnly), tif, events);
        order_id
    }

    /// Cancels a resting order of `account`; returns whether it was cancelled (else a `Rejected` event says why).
    pub fn cancel(&mut self, _ts_us: i64, account: AccountId, order_id: OrderId, events: &mut Vec<Event>) -> bool {
        let Some(location) = self.owned(account, order_id) else {
            events.push(Event::Rejected { order_id, account, reason: RejectReason::UnknownOrder });
            return false;
        };
        self.sequence += 1;
        let order = self.remove(location, events);
        events.push(Event::Cancelled { order_id, account, leaves_qty: order.leaves_qty, reason: CancelReason::User });
        true
    }

    /// Amends a resting order of `account`: a new price and/or a new total quantity (filled + open, as on Bybit).
    /// A quantity decrease at the same price keeps time priority; a quantity increase or any price change sends the
    /// order to the back of its level, and a new price that crosses the book trades like a new GTC order (a PostOnly
    /// order is refused instead). Returns whether the amend took effect (else a `Rejected` event says why).
    pub fn amend(
        &mut self,
        ts_us: i64,
        account: AccountId,
        order_id: OrderId,
        new_price: Option<i64>,
        new_total_qty: Option<i64>,
        events: &mut Vec<Event>,
    ) -> bool {
        let reject = |events: &mut Vec<Event>, reason| {
            events.push(Event::Rejected { order_id, account, reason });
            false
        };
        let Some(location) = self.owned(account, order_id) else {
            return reject(events, RejectReason::UnknownOrder);
        };
        let old = *self.order(order_id).expect("owned orders rest in the book");
        let price = new_price.unwrap_or(old.price);
        let total = new_total_qty.unwrap_or(old.filled_qty + old.leaves_qty);
        if price <= 0 || price > MAX_PRICE_UNITS || price % self.spec.tick != 0 {
            return reject(events, RejectReason::InvalidPrice);
        }
        if total <= 0 || total % self.spec.lot != 0 || total < self.spec.min_qty || total > self.spec.max_qty {
            return reject(events, RejectReason::InvalidQty);
        }
        if price == old.price && total == old.filled_qty + old.leaves_qty {
            return reject(events, RejectReason::NothingToAmend);
        }
        let leaves = total - old.filled_qty;
        if leaves <= 0 {
            return reject(events, RejectReason::AmendBelowFilled);
        }
        let crossing = self.best_price(old.side.opposite()).is_some_and(|best| crosses(old.side, price, best));
        if old.post_only && crossing {
            return reject(events, RejectReason::PostOnlyWouldTake);
        }
        self.sequence += 1;
        if price == old.price && leaves < old.leaves_qty {
            events.push(Event::Amended { order_id, account, price, leaves_qty: leaves, kept_priority: true });
            let book = self.side_mut(old.side);
            let queue = book.at_mut(book.find(price).expect("a resting order has a level"));
            let at = queue.orders.binary_search_by_key(&location.priority, |o| o.priority).expect("indexed");
            queue.orders[at].leaves_qty = leaves;
            queue.total -= old.leaves_qty - leaves;
            events.push(Event::BookLevel { side: old.side, price, qty: queue.total });
            return true;
        }
        events.push(Event::Amended { order_id, account, price, leaves_qty: leaves, kept_priority: false });
        self.remove(location, events);
        let taker = Taker {
            order_id,
            account,
            side: old.side,
            limit: price,
            remaining: leaves,
            filled: old.filled_qty,
            reduce_only: old.reduce_only,
            stp: old.stp,
        };
        let tif = if old.post_only { TimeInForce::PostOnly } else { TimeInForce::Gtc };
        self.execute(ts_us, taker, true, tif, events);
        true
    }

    /// Best bid level (price and total resting quantity).
    #[must_use]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.best().map(|(price, queue)| Level::new(price, queue.total))
    }

    /// Best ask level (price and total resting quantity).
    #[must_use]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.best().map(|(price, queue)| Level::new(price, queue.total))
    }

    /// The best `n` levels of a side, best first, into `out` (cleared first).
    pub fn top_n_into(&self, side: Side, n: usize, out: &mut Vec<Level>) {
        out.clear();
        self.side(side).top_into(n, out);
    }

    /// The best `n` levels of a side, best first.
    #[must_use]
    pub fn top_n(&self, side: Side, n: usize) -> Vec<Level> {
        let mut out = Vec::with_capacity(n.min(64));
        self.top_n_into(side, n, &mut out);
        out
    }

    /// Resting orders of one side in matching priority (best price first, then oldest first).
    pub fn resting(&self, side: Side) -> Box<dyn Iterator<Item = &RestingOrder> + '_> {
        Box::new(self.side(side).best_first().flat_map(|(_, queue)| queue.orders.iter()).filter(|o| o.leaves_qty > 0))
    }

    /// A resting order by id.
    #[must_use]
    pub fn order(&self, order_id: OrderId) -> Option<&RestingOrder> {
        let location = self.index.get(&order_id)?;
        let queue = self.side(location.side).get(location.price)?;
        let at = queue.orders.binary_search_by_key(&location.priority, |o| o.priority).ok()?;
        Some(&queue.orders[at])
    }

    /// Number of resting orders.
    #[must_use]
    pub fn open_orders(&self) -> usize {
        self.index.len()
    }

    /// An account's state (all zero for an account that never traded).
    #[must_use]
    pub fn account(&self, account: AccountId) -> Account {
        self.accounts.get(account).copied().unwrap_or_default()
    }

    /// Every account that has traded, by id.
    pub fn accounts(&self) -> impl Iterator<Item = (AccountId, &Account)> {
        self.accounts.iter()
    }

    /// Id of the last trade (0 before the first).
    #[must_use]
    pub fn last_trade_id(&self) -> u64 {
        self.last_trade_id
    }

    /// Count of calls that changed the book (accepted orders, cancels, amends): Bybit's cross sequence `seq`.
    #[must_use]
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The price a market order on `side` is limited to: the best opposite price moved outwards by the band,
    /// rounded inwards to the tick (so never beyond the band, never behind the best price).
    #[must_use]
    pub fn band_price(&self, side: Side, best_opposite: i64) -> i64 {
        const PPM: i128 = 1_000_000;
        let best = i128::from(best_opposite);
        let band = i128::from(self.rates.band_ppm);
        let tick = i128::from(self.spec.tick);
        let price = match side {
            Side::Buy => {
                let raw = best * (PPM + band) / PPM;
                raw - raw % tick
            }
            Side::Sell => {
                let raw = (best * (PPM - band) + PPM - 1) / PPM;
                (raw + tick - 1) / tick * tick
            }
        };
        i64::try_from(price).unwrap_or(i64::MAX)
    }

    fn side(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn best_price(&self, side: Side) -> Option<i64> {
        self.side(side).best().map(|(price, _)| price)
    }

    /// The location of `order_id` if it rests and belongs to `account`.
    fn owned(&self, account: AccountId, order_id: OrderId) -> Option<Location> {
        let location = *self.index.get(&order_id)?;
        (location.account == account).then_some(location)
    }

    /// Takes a resting order out of the book, reporting the level change.
    fn remove(&mut self, location: Location, events: &mut Vec<Event>) -> RestingOrder {
        let book = self.side_mut(location.side);
        let at = book.find(location.price).expect("a resting order has a level");
        let queue = book.at_mut(at);
        let order = queue.remove(location.priority);
        let total = queue.total;
        if queue.live == 0 {
            book.remove_at(at);
        }
        self.index.remove(&order.order_id);
        events.push(Event::BookLevel { side: location.side, price: location.price, qty: total });
        order
    }

    /// Matches a taker, then rests or cancels its remainder.
    fn execute(&mut self, ts_us: i64, mut taker: Taker, may_rest: bool, tif: TimeInForce, events: &mut Vec<Event>) {
        let stop = self.take(ts_us, &mut taker, events);
        if taker.remaining == 0 {
            return;
        }
        if may_rest && stop == Stop::NoCross {
            self.next_priority += 1;
            let resting = RestingOrder {
                order_id: taker.order_id,
                account: taker.account,
                side: taker.side,
                price: taker.limit,
                leaves_qty: taker.remaining,
                filled_qty: taker.filled,
                reduce_only: taker.reduce_only,
                post_only: tif == TimeInForce::PostOnly,
                stp: taker.stp,
                priority: self.next_priority,
            };
            let queue = self.side_mut(taker.side).entry(taker.limit);
            queue.orders.push_back(resting);
            queue.total += resting.leaves_qty;
            queue.live += 1;
            let total = queue.total;
            self.index.insert(
                taker.order_id,
                Location { account: taker.account, side: taker.side, price: taker.limit, priority: resting.priority },
            );
            events.push(Event::BookLevel { side: taker.side, price: taker.limit, qty: total });
        } else {
            events.push(Event::Cancelled {
                order_id: taker.order_id,
                account: taker.account,
                leaves_qty: taker.remaining,
                reason: stop.cancel_reason(),
            });
        }
    }

    /// How much of `taker` would fill right now, following exactly the rules of [`Self::take`] without changing
    /// anything (FOK check).
    fn fillable(&self, taker: &Taker) -> i64 {
        let mut pending: Vec<(AccountId, i64)> = Vec::new();
        let position = |pending: &[(AccountId, i64)], account: AccountId| {
            let moved: i64 = pending.iter().filter(|(a, _)| *a == account).map(|(_, d)| d).sum();
            self.account(account).position + moved
        };
        let signed = |side: Side, qty: i64| if side == Side::Buy { qty } else { -qty };
        let mut filled = 0;
        'levels: for (price, queue) in self.side(taker.side.opposite()).best_first() {
            if !crosses(taker.side, taker.limit, price) {
                break;
            }
            for maker in queue.orders.iter().filter(|o| o.leaves_qty > 0) {
                if filled == taker.remaining {
                    break 'levels;
                }
                if maker.account == taker.account {
                    match taker.stp {
                        StpMode::CancelMaker => continue,
                        StpMode::CancelTaker | StpMode::CancelBoth => break 'levels,
                    }
                }
                let mut qty = (taker.remaining - filled).min(maker.leaves_qty);
                if maker.reduce_only {
                    qty = qty.min(reducible(position(&pending, maker.account), maker.side));
                    if qty == 0 {
                        continue;
                    }
                }
                if taker.reduce_only {
                    qty = qty.min(reducible(position(&pending, taker.account), taker.side));
                    if qty == 0 {
                        break 'levels;
                    }
                }
                filled += qty;
                pending.push((maker.account, signed(maker.side, qty)));
                pending.push((taker.account, signed(taker.side, qty)));
            }
        }
        filled
    }

    /// Matches `taker` against the opposite side until it is filled, no longer crosses, or a self-trade or
    /// reduce-only rule stops it.
    fn take(&mut self, ts_us: i64, taker: &mut Taker, events: &mut Vec<Event>) -> Stop {
        let scale = 10_i128.pow(FEE_RATE_DECIMALS);
        let maker_rate = i128::from(self.rates.maker_fee_e8);
        let taker_rate = i128::from(self.rates.taker_fee_e8);
        let maker_side = taker.side.opposite();
        loop {
            if taker.remaining == 0 {
                return Stop::Filled;
            }
            let book = match taker.side {
                Side::Buy => &mut self.asks,
                Side::Sell => &mut self.bids,
            };
            let Some((price, queue)) = book.best_mut() else {
                return Stop::NoCross;
            };
            if !crosses(taker.side, taker.limit, price) {
                return Stop::NoCross;
            }
            let maker = *queue.orders.front().expect("a level's front order is live");
            let mut cancel_maker = None;
            let mut qty = taker.remaining.min(maker.leaves_qty);
            if maker.account == taker.account {
                match taker.stp {
                    StpMode::CancelTaker => return Stop::SelfTrade,
                    StpMode::CancelMaker | StpMode::CancelBoth => cancel_maker = Some(CancelReason::SelfTrade),
                }
            } else if maker.reduce_only {
                let position = self.accounts.get(maker.account).map_or(0, |a| a.position);
                qty = qty.min(reducible(position, maker_side));
                if qty == 0 {
                    cancel_maker = Some(CancelReason::ReduceOnly);
                }
            }
            if let Some(reason) = cancel_maker {
                let order = queue.remove(maker.priority);
                let total = queue.total;
                if queue.live == 0 {
                    book.remove_best();
                }
                self.index.remove(&order.order_id);
                events.push(Event::Cancelled {
                    order_id: order.order_id,
                    account: order.account,
                    leaves_qty: order.leaves_qty,
                    reason,
                });
                events.push(Event::BookLevel { side: maker_side, price, qty: total });
                if reason == CancelReason::SelfTrade && taker.stp == StpMode::CancelBoth {
                    return Stop::SelfTrade;
                }
                continue;
            }
            if taker.reduce_only {
                let position = self.accounts.get(taker.account).map_or(0, |a| a.position);
                qty = qty.min(reducible(position, taker.side));
                if qty == 0 {
                    return Stop::ReduceOnly;
                }
            }
            // The trade itself.
            self.last_trade_id += 1;
            let trade_id = self.last_trade_id;
            let notional = i128::from(price) * i128::from(qty);
            let maker_fee = notional * maker_rate;
            let taker_fee = notional * taker_rate;
            let front = queue.orders.front_mut().expect("checked above");
            front.leaves_qty -= qty;
            front.filled_qty += qty;
            let maker_leaves = front.leaves_qty;
            queue.total -= qty;
            if maker_leaves == 0 {
                queue.live -= 1;
                queue.sweep();
                self.index.remove(&maker.order_id);
            }
            let total = queue.total;
            if queue.live == 0 {
                book.remove_best();
            }
            taker.remaining -= qty;
            taker.filled += qty;
            for (account, side, fee) in [(maker.account, maker_side, maker_fee), (taker.account, taker.side, taker_fee)]
            {
                let state = self.accounts.entry(account);
                match side {
                    Side::Buy => {
                        state.position += qty;
                        state.cash -= notional * scale + fee;
                    }
                    Side::Sell => {
                        state.position -= qty;
                        state.cash += notional * scale - fee;
                    }
                }
                state.fees += fee;
            }
            events.push(Event::Trade {
                trade_id,
                ts_us,
                taker_side: taker.side,
                price,
                qty,
                maker_order: maker.order_id,
                taker_order: taker.order_id,
            });
            events.push(Event::Fill {
                trade_id,
                ts_us,
                order_id: maker.order_id,
                account: maker.account,
                side: maker_side,
                price,
                qty,
                fee: maker_fee,
                liquidity: Liquidity::Maker,
                leaves_qty: maker_leaves,
            });
            events.push(Event::Fill {
                trade_id,
                ts_us,
                order_id: taker.order_id,
                account: taker.account,
                side: taker.side,
                price,
                qty,
                fee: taker_fee,
                liquidity: Liquidity::Taker,
                leaves_qty: taker.remaining,
            });
            events.push(Event::BookLevel { side: maker_side, price, qty: total });
        }
    }
}
