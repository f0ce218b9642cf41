//! Naive reference matcher for tests and benchmarks: one flat Vec of resting orders, linear scans, and FOK decided by
//! trying the order on a clone. Written from the rules in the docs, independently of the engine's data structures.

use std::collections::BTreeMap;

use apex_core::Side;
use apex_sim::{
    AccountId, CancelReason, Event, InstrumentSpec, NewOrder, OrderId, OrderKind, RejectReason, StpMode, TimeInForce,
};

/// An order waiting in the naive book; `seq` orders time priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaiveOrder {
    pub id: OrderId,
    pub account: AccountId,
    pub side: Side,
    pub price: i64,
    pub leaves: i64,
    pub filled: i64,
    pub reduce_only: bool,
    pub post_only: bool,
    pub stp: StpMode,
    pub seq: u64,
}

/// Position, cash and fees, in the same units as the engine's `Account`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NaiveAccount {
    pub position: i64,
    pub cash: i128,
    pub fees: i128,
}

#[derive(Debug, Clone)]
pub struct NaiveMatcher {
    tick: i64,
    lot: i64,
    min_qty: i64,
    max_qty: i64,
    band_ppm: i128,
    maker_e8: i128,
    taker_e8: i128,
    pub orders: Vec<NaiveOrder>,
    pub accounts: BTreeMap<AccountId, NaiveAccount>,
    /// Accepted / Rejected / Cancelled / Amended / Trade, in order; no fills or level events.
    pub outcomes: Vec<Event>,
    ids: u64,
    trades: u64,
    seqs: u64,
}

struct Incoming {
    id: OrderId,
    account: AccountId,
    side: Side,
    limit: i64,
    left: i64,
    filled: i64,
    reduce_only: bool,
    stp: StpMode,
}

fn reduce_room(position: i64, side: Side) -> i64 {
    if side == Side::Buy && position < 0 {
        -position
    } else if side == Side::Sell && position > 0 {
        position
    } else {
        0
    }
}

impl NaiveMatcher {
    pub fn new(spec: &InstrumentSpec) -> NaiveMatcher {
        NaiveMatcher {
            tick: spec.tick,
            lot: spec.lot,
            min_qty: spec.min_qty,
            max_qty: spec.max_qty,
            band_ppm: (spec.market_band * 1e6).round() as i128,
            maker_e8: (spec.maker_fee * 1e8).round() as i128,
            taker_e8: (spec.taker_fee * 1e8).round() as i128,
            orders: Vec::new(),
            accounts: BTreeMap::new(),
            outcomes: Vec::new(),
            ids: 0,
            trades: 0,
            seqs: 0,
        }
    }

    fn position(&self, account: AccountId) -> i64 {
        self.accounts.get(&account).map_or(0, |a| a.position)
    }

    /// Best resting price on `side`.
    fn best(&self, side: Side) -> Option<i64> {
        let prices = self.orders.iter().filter(|o| o.side == side).map(|o| o.price);
        if side == Side::Buy { prices.max() } else { prices.min() }
    }

    /// Index of the order a taker on `side` with `limit` meets first.
    fn first_maker(&self, side: Side, limit: i64) -> Option<usize> {
        let mut found: Option<usize> = None;
        for (i, o) in self.orders.iter().enumerate() {
            if o.side == side {
                continue;
            }
            let ok = if side == Side::Buy { o.price <= limit } else { o.price >= limit };
            if !ok {
                continue;
            }
            found = match found {
                None => Some(i),
                Some(j) => {
                    let b = &self.orders[j];
                    let better = if side == Side::Buy { o.price < b.price } else { o.price > b.price };
                    if better || (o.price == b.price && o.seq < b.seq) { Some(i) } else { Some(j) }
                }
            };
        }
        found
    }

    fn book_trade(&mut self, account: AccountId, side: Side, price: i64, qty: i64, rate: i128) {
        let a = self.accounts.entry(account).or_default();
        let notional = price as i128 * qty as i128;
        let fee = notional * rate;
        if side == Side::Buy {
            a.position += qty;
            a.cash -= notional * 100_000_000;
        } else {
            a.position -= qty;
            a.cash += notional * 100_000_000;
        }
        a.cash -= fee;
        a.fees += fee;
    }

    /// Takes resting order `i` off the book and reports it cancelled.
    fn cancel_maker(&mut self, i: usize, reason: CancelReason) {
        let m = self.orders.remove(i);
        self.outcomes.push(Event::Cancelled { order_id: m.id, account: m.account, leaves_qty: m.leaves, reason });
    }

    /// Runs the matching loop; returns the cancel reason when it stopped for a reason other than price.
    fn run(&mut self, ts_us: i64, t: &mut Incoming) -> Option<CancelReason> {
        while t.left > 0 {
            let i = self.first_maker(t.side, t.limit)?;
            let m = self.orders[i];
            if m.account == t.account {
                if t.stp == StpMode::CancelTaker {
                    return Some(CancelReason::SelfTrade);
                }
                self.cancel_maker(i, CancelReason::SelfTrade);
                if t.stp == StpMode::CancelBoth {
                    return Some(CancelReason::SelfTrade);
                }
                continue;
            }
            let mut q = std::cmp::min(t.left, m.leaves);
            if m.reduce_only {
                q = std::cmp::min(q, reduce_room(self.position(m.account), m.side));
                if q == 0 {
                    self.cancel_maker(i, CancelReason::ReduceOnly);
                    continue;
                }
            }
            if t.reduce_only {
                q = std::cmp::min(q, reduce_room(self.position(t.account), t.side));
                if q == 0 {
                    return Some(CancelReason::ReduceOnly);
                }
            }
            self.trades += 1;
            self.outcomes.push(Event::Trade {
                trade_id: self.trades,
                ts_us,
                taker_side: t.side,
                price: m.price,
                qty: q,
                maker_order: m.id,
                taker_order: t.id,
            });
            let (maker_e8, taker_e8) = (self.maker_e8, self.taker_e8);
            self.book_trade(m.account, m.side, m.price, q, maker_e8);
            self.book_trade(t.account, t.side, m.price, q, taker_e8);
            self.orders[i].leaves -= q;
            self.orders[i].filled += q;
            if self.orders[i].leaves == 0 {
                self.orders.remove(i);
            }
            t.left -= q;
            t.filled += q;
        }
        None
    }

    fn place(&mut self, ts_us: i64, mut t: Incoming, rests: bool, post_only: bool) {
        let stopped = self.run(ts_us, &mut t);
        if t.left == 0 {
            return;
        }
        match stopped {
            None if rests => {
                self.seqs += 1;
                self.orders.push(NaiveOrder {
                    id: t.id,
                    account: t.account,
                    side: t.side,
                    price: t.limit,
                    leaves: t.left,
                    filled: t.filled,
                    reduce_only: t.reduce_only,
                    post_only,
                    stp: t.stp,
                    seq: self.seqs,
                });
            }
            _ => self.outcomes.push(Event::Cancelled {
                order_id: t.id,
                account: t.account,
                leaves_qty: t.left,
                reason: stopped.unwrap_or(CancelReason::Unfilled),
            }),
        }
    }

    fn reject(&mut self, order_id: OrderId, account: AccountId, reason: RejectReason) {
        self.outcomes.push(Event::Rejected { order_id, account, reason });
    }

    pub fn submit(&mut self, ts_us: i64, o: &NewOrder) -> OrderId {
        self.ids += 1;
        let id = self.ids;
        if o.qty <= 0 || o.qty % self.lot != 0 || o.qty < self.min_qty || o.qty > self.max_qty {
            self.reject(id, o.account, RejectReason::InvalidQty);
            return id;
        }
        let opposite = self.best(if o.side == Side::Buy { Side::Sell } else { Side::Buy });
        let (limit, tif) = match o.kind {
            OrderKind::Limit { price, tif } => {
                if price <= 0 || price > apex_sim::MAX_PRICE_UNITS || price % self.tick != 0 {
                    self.reject(id, o.account, RejectReason::InvalidPrice);
                    return id;
                }
                (price, tif)
            }
            OrderKind::Market => {
                let Some(best) = opposite else {
                    self.reject(id, o.account, RejectReason::NoLiquidity);
                    return id;
                };
                let best = best as i128;
                let tick = self.tick as i128;
                let limit = if o.side == Side::Buy {
                    // Largest tick price not above best * (1 + band).
                    let mut p = best;
                    while (p + tick) * 1_000_000 <= best * (1_000_000 + self.band_ppm) {
                        p += tick;
                    }
                    p
                } else {
                    // Smallest tick price not below best * (1 - band).
                    let mut p = best;
                    while p - tick > 0 && (p - tick) * 1_000_000 >= best * (1_000_000 - self.band_ppm) {
                        p -= tick;
                    }
                    p
                };
                (limit as i64, TimeInForce::Ioc)
            }
        };
        let mut qty = o.qty;
        if o.reduce_only {
            let room = reduce_room(self.position(o.account), o.side);
            if room == 0 {
                self.reject(id, o.account, RejectReason::ReduceOnlyWouldIncrease);
                return id;
            }
            qty = qty.min(room);
        }
        if tif == TimeInForce::PostOnly {
            let takes = opposite.is_some_and(|b| if o.side == Side::Buy { b <= limit } else { b >= limit });
            if takes {
                self.reject(id, o.account, RejectReason::PostOnlyWouldTake);
                return id;
            }
        }
        let incoming = Incoming {
            id,
            account: o.account,
            side: o.side,
            limit,
            left: qty,
            filled: 0,
            reduce_only: o.reduce_only,
            stp: o.stp,
        };
        let accepted = Event::Accepted { order_id: id, account: o.account, side: o.side, price: limit, qty };
        if tif == TimeInForce::Fok {
            let mut trial = self.clone();
            trial.outcomes.push(accepted);
            let mut t = incoming;
            trial.run(ts_us, &mut t);
            if t.left == 0 {
                *self = trial;
            } else {
                self.reject(id, o.account, RejectReason::FokUnfillable);
            }
            return id;
        }
        self.outcomes.push(accepted);
        let rests = matches!(tif, TimeInForce::Gtc | TimeInForce::PostOnly);
        self.place(ts_us, incoming, rests, tif == TimeInForce::PostOnly);
        id
    }

    fn find(&self, account: AccountId, id: OrderId) -> Option<usize> {
        self.orders.iter().position(|o| o.id == id && o.account == account)
    }

    pub fn cancel(&mut self, account: AccountId, id: OrderId) -> bool {
        match self.find(account, id) {
            Some(i) => {
                let o = self.orders.remove(i);
                self.outcomes.push(Event::Cancelled {
                    order_id: id,
                    account,
                    leaves_qty: o.leaves,
                    reason: CancelReason::User,
                });
                true
            }
            None => {
                self.reject(id, account, RejectReason::UnknownOrder);
                false
            }
        }
    }

    pub fn amend(&mut self, ts_us: i64, account: AccountId, id: OrderId, price: Option<i64>, qty: Option<i64>) -> bool {
        let Some(i) = self.find(account, id) else {
            self.reject(id, account, RejectReason::UnknownOrder);
            return false;
        };
        let o = self.orders[i];
        let new_price = price.unwrap_or(o.price);
        let new_total = qty.unwrap_or(o.leaves + o.filled);
        let reason = if new_price <= 0 || new_price > apex_sim::MAX_PRICE_UNITS || new_price % self.tick != 0 {
            Some(RejectReason::InvalidPrice)
        } else if new_total <= 0 || new_total % self.lot != 0 || new_total < self.min_qty || new_total > self.max_qty {
            Some(RejectReason::InvalidQty)
        } else if new_price == o.price && new_total == o.leaves + o.filled {
            Some(RejectReason::NothingToAmend)
        } else if new_total <= o.filled {
            Some(RejectReason::AmendBelowFilled)
        } else if o.post_only
            && self
                .best(if o.side == Side::Buy { Side::Sell } else { Side::Buy })
                .is_some_and(|b| if o.side == Side::Buy { b <= new_price } else { b >= new_price })
        {
            Some(RejectReason::PostOnlyWouldTake)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.reject(id, account, reason);
            return false;
        }
        let leaves = new_total - o.filled;
        let keeps = new_price == o.price && leaves < o.leaves;
        self.outcomes.push(Event::Amended {
            order_id: id,
            account,
            price: new_price,
            leaves_qty: leaves,
            kept_priority: keeps,
        });
        if keeps {
            self.orders[i].leaves = leaves;
            return true;
        }
        self.orders.remove(i);
        let t = Incoming {
            id,
            account,
            side: o.side,
            limit: new_price,
            left: leaves,
            filled: o.filled,
            reduce_only: o.reduce_only,
            stp: o.stp,
        };
        self.place(ts_us, t, true, o.post_only);
        true
    }

    /// Resting orders of `side` in priority order.
    pub fn book(&self, side: Side) -> Vec<NaiveOrder> {
        let mut v: Vec<NaiveOrder> = self.orders.iter().filter(|o| o.side == side).copied().collect();
        v.sort_by(|a, b| {
            let by_price = if side == Side::Buy { b.price.cmp(&a.price) } else { a.price.cmp(&b.price) };
            by_price.then(a.seq.cmp(&b.seq))
        });
        v
    }
}
