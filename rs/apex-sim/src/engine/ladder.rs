//! One side of the matching engine's book: its price levels in a vector sorted so the best level is last.
//!
//! The simulator's book holds a few hundred levels and nearly all of its work (matching, cancels, new quotes, the
//! top-N the L2 stream publishes) happens at the first few levels from the best. In a vector sorted away from the
//! best, those are the last elements: the best level is read and removed without a search, a new level near the top
//! shifts only the few levels above it, and the top N is one contiguous slice. A `BTreeMap` (the layout this
//! replaced) allocated a node per few levels and walked pointers for each of these. Removed levels hand their order
//! buffers back, so a level that empties and refills does not allocate either.

use std::collections::VecDeque;

use apex_book::Level;
use apex_core::Side;

use super::{Queue, RestingOrder};

/// Order buffers kept for reuse; beyond this many, a removed level's buffer is freed.
const SPARE_BUFFERS: usize = 64;

/// The sort key of a price on `side`, and the price of a key: the price for bids, its negation for asks (so a larger
/// key is a better price on both sides).
fn key(side: Side, price: i64) -> i64 {
    match side {
        Side::Buy => price,
        Side::Sell => -price,
    }
}

/// Price levels of one side, best last: ascending prices for bids, descending for asks. The sort keys sit in a
/// vector of their own, so a search reads 8 bytes a level, not a whole queue.
#[derive(Debug, Clone)]
pub(super) struct Ladder {
    side: Side,
    /// Ascending; larger is better (see [`key`]).
    keys: Vec<i64>,
    queues: Vec<Queue>,
    spare: Vec<VecDeque<RestingOrder>>,
}

impl Ladder {
    pub(super) fn new(side: Side) -> Ladder {
        Ladder { side, keys: Vec::new(), queues: Vec::new(), spare: Vec::new() }
    }

    fn key(&self, price: i64) -> i64 {
        key(self.side, price)
    }

    /// Where `price`'s level is (`Ok`) or would go (`Err`), searched from the best end, where most lookups land.
    pub(super) fn find(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        // A short scan covers the levels near the top; a binary search the rest.
        let len = self.keys.len();
        let deep = len.saturating_sub(4);
        for at in (deep..len).rev() {
            let here = self.keys[at];
            if here == key {
                return Ok(at);
            }
            if here < key {
                return Err(at + 1);
            }
        }
        self.keys[..deep].binary_search(&key)
    }

    /// The best level.
    pub(super) fn best(&self) -> Option<(i64, &Queue)> {
        Some((self.key(*self.keys.last()?), self.queues.last()?))
    }

    /// The best level, to change.
    pub(super) fn best_mut(&mut self) -> Option<(i64, &mut Queue)> {
        let price = self.key(*self.keys.last()?);
        Some((price, self.queues.last_mut()?))
    }

    /// Removes the best level.
    pub(super) fn remove_best(&mut self) {
        self.keys.pop();
        if let Some(queue) = self.queues.pop() {
            self.recycle(queue);
        }
    }

    pub(super) fn get(&self, price: i64) -> Option<&Queue> {
        self.find(price).ok().map(|at| &self.queues[at])
    }

    /// The level at position `at` (from [`Ladder::find`]).
    pub(super) fn at_mut(&mut self, at: usize) -> &mut Queue {
        &mut self.queues[at]
    }

    /// The level at `price`, made empty if there is none.
    pub(super) fn entry(&mut self, price: i64) -> &mut Queue {
        let at = match self.find(price) {
            Ok(at) => at,
            Err(at) => {
                let orders = self.spare.pop().unwrap_or_default();
                self.keys.insert(at, self.key(price));
                self.queues.insert(at, Queue { orders, total: 0, live: 0 });
                at
            }
        };
        &mut self.queues[at]
    }

    /// Removes the level at position `at` (from [`Ladder::find`]).
    pub(super) fn remove_at(&mut self, at: usize) {
        self.keys.remove(at);
        let queue = self.queues.remove(at);
        self.recycle(queue);
    }

    /// The best `n` levels (price and total quantity), best first, appended to `out`: the L2 stream reads them at every
    /// tick, from the end of the two vectors.
    pub(super) fn top_into(&self, n: usize, out: &mut Vec<Level>) {
        // Slices of the two vectors rather than `best_first().take(n)`: this runs every 100 ms of every market, and
        // the bounded zip is the cheaper loop (1.6% of a market's instructions).
        let from = self.keys.len().saturating_sub(n);
        let side = self.side;
        let levels = self.keys[from..].iter().rev().zip(self.queues[from..].iter().rev());
        out.extend(levels.map(|(&k, queue)| Level::new(key(side, k), queue.total)));
    }

    /// Every level, best first.
    pub(super) fn best_first(&self) -> impl Iterator<Item = (i64, &Queue)> {
        let side = self.side;
        self.keys.iter().rev().zip(self.queues.iter().rev()).map(move |(&k, queue)| (key(side, k), queue))
    }

    fn recycle(&mut self, mut queue: Queue) {
        if self.spare.len() < SPARE_BUFFERS {
            queue.orders.clear();
            self.spare.push(queue.orders);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any sequence of level inserts and removals leaves the ladder holding what a `BTreeMap` holds, best first
        /// (the highest bid, the lowest ask), and finding the same levels.
        #[test]
        fn holds_what_a_btreemap_holds(buy in any::<bool>(), ops in prop::collection::vec((0u8..4, 0i64..40), 0..300)) {
            let side = if buy { Side::Buy } else { Side::Sell };
            let mut ladder = Ladder::new(side);
            let mut reference: BTreeMap<i64, i64> = BTreeMap::new();
            for (op, price) in ops {
                match op {
                    0 | 1 => {
                        ladder.entry(price).total += 1;
                        *reference.entry(price).or_default() += 1;
                    }
                    2 => {
                        if let Ok(at) = ladder.find(price) {
                            ladder.remove_at(at);
                        }
                        reference.remove(&price);
                    }
                    _ => {
                        ladder.remove_best();
                        match side {
                            Side::Buy => reference.pop_last(),
                            Side::Sell => reference.pop_first(),
                        };
                    }
                }
                let ours: Vec<(i64, i64)> = ladder.best_first().map(|(p, q)| (p, q.total)).collect();
                let expected: Vec<(i64, i64)> = match side {
                    Side::Buy => reference.iter().rev().map(|(&p, &t)| (p, t)).collect(),
                    Side::Sell => reference.iter().map(|(&p, &t)| (p, t)).collect(),
                };
                prop_assert_eq!(&ours, &expected);
                prop_assert_eq!(ladder.best().map(|(p, q)| (p, q.total)), expected.first().copied());
                for n in [0, 1, 3, 50] {
                    let mut top = Vec::new();
                    ladder.top_into(n, &mut top);
                    let top: Vec<(i64, i64)> = top.iter().map(|l| (l.price, l.qty)).collect();
                    prop_assert_eq!(&top[..], &expected[..n.min(expected.len())]);
                }
                for probe in 0..40 {
                    prop_assert_eq!(ladder.get(probe).map(|q| q.total), reference.get(&probe).copied());
                }
            }
        }
    }
}
