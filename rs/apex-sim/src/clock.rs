//! Simulated time: a deterministic queue of timestamped items (earliest first, first-in first-out on ties), and the
//! requests that travel through it to the engine after an agent's order-entry latency.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::MatchingEngine;
use crate::order::{AccountId, Event, NewOrder, OrderId};

/// Items waiting for their time. Ties in time come out in the order they were pushed, so a run depends only on what
/// was scheduled, never on heap internals.
#[derive(Debug, Clone)]
pub struct TimedQueue<T> {
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    items: BTreeMap<u64, T>,
    pushed: u64,
}

impl<T> Default for TimedQueue<T> {
    fn default() -> Self {
        TimedQueue { heap: BinaryHeap::new(), items: BTreeMap::new(), pushed: 0 }
    }
}

impl<T> TimedQueue<T> {
    /// An empty queue.
    #[must_use]
    pub fn new() -> TimedQueue<T> {
        TimedQueue::default()
    }

    /// Schedules `item` for `ts_us`.
    pub fn push(&mut self, ts_us: i64, item: T) {
        self.pushed += 1;
        self.heap.push(Reverse((ts_us, self.pushed)));
        self.items.insert(self.pushed, item);
    }

    /// Time of the earliest item.
    #[must_use]
    pub fn next_time(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((ts, _))| *ts)
    }

    /// The earliest item with its time.
    pub fn pop(&mut self) -> Option<(i64, T)> {
        let Reverse((ts, id)) = self.heap.pop()?;
        let item = self.items.remove(&id).expect("every heap entry has its item");
        Some((ts, item))
    }

    /// The earliest item if it is due at or before `ts_us`.
    pub fn pop_due(&mut self, ts_us: i64) -> Option<(i64, T)> {
        if self.next_time()? <= ts_us { self.pop() } else { None }
    }

    /// Number of items waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// What an account can ask of the venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Submit(NewOrder),
    /// Cancel a resting order of `account`.
    Cancel {
        account: AccountId,
        order_id: OrderId,
    },
    /// New price and/or new total quantity (see [`MatchingEngine::amend`]).
    Amend {
        account: AccountId,
        order_id: OrderId,
        price: Option<i64>,
        total_qty: Option<i64>,
    },
}

impl MatchingEngine {
    /// Carries out one request at `ts_us` (its arrival time at the venue). Returns the new order's id for a
    /// submission, `None` otherwise.
    pub fn handle(&mut self, ts_us: i64, request: &Request, events: &mut Vec<Event>) -> Option<OrderId> {
        match *request {
            Request::Submit(order) => Some(self.submit(ts_us, &order, events)),
            Request::Cancel { account, order_id } => {
                self.cancel(ts_us, account, order_id, events);
                None
            }
            Request::Amend { account, order_id, price, total_qty } => {
                self.amend(ts_us, account, order_id, price, total_qty, events);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstrumentSpec, TimeInForce};
    use apex_core::Side;
    use proptest::prelude::*;

    #[test]
    fn earliest_first_and_fifo_on_ties() {
        let mut queue = TimedQueue::new();
        queue.push(30, "c");
        queue.push(10, "a1");
        queue.push(20, "b");
        queue.push(10, "a2");
        assert_eq!(queue.next_time(), Some(10));
        assert_eq!(queue.pop_due(5), None);
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, vec![(10, "a1"), (10, "a2"), (20, "b"), (30, "c")]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_slower_order_arrives_after_a_faster_one_sent_later() {
        // Account 1 (latency 500 us) and account 2 (latency 100 us) both send a buy for the one lot on offer; account
        // 2 sends 200 us later but arrives first and gets the fill.
        let spec = InstrumentSpec::bybit_linear("BTCUSDT", "0.1", "0.001", "0.001").unwrap();
        let mut engine = MatchingEngine::new(spec).unwrap();
        let mut events = Vec::new();
        engine.submit(0, &NewOrder::limit(9, Side::Sell, 1000, 1, TimeInForce::Gtc), &mut events);
        let mut queue = TimedQueue::new();
        queue.push(1_000 + 500, Request::Submit(NewOrder::market(1, Side::Buy, 1)));
        queue.push(1_200 + 100, Request::Submit(NewOrder::market(2, Side::Buy, 1)));
        while let Some((ts, request)) = queue.pop() {
            engine.handle(ts, &request, &mut events);
        }
        assert_eq!((engine.account(1).position, engine.account(2).position), (0, 1));
        assert!(events.iter().any(|e| matches!(e, Event::Trade { ts_us: 1_300, .. })));
    }

    proptest! {
        #[test]
        fn pops_are_sorted_by_time_then_push_order(times in prop::collection::vec(0_i64..20, 0..200)) {
            let mut queue = TimedQueue::new();
            for (i, &t) in times.iter().enumerate() {
                queue.push(t, i);
            }
            let mut expected: Vec<(i64, usize)> = times.iter().copied().zip(0..).collect();
            expected.sort();
            let popped: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
            prop_assert_eq!(popped, expected);
        }
    }
}
