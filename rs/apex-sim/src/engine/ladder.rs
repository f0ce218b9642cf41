//! One side of the matching engine's book: its price levels in a vector sorted so the best level is last.
//!
//! The simulator's book holds a few hundred levels and nearly all of its work (matching, cancels, new quotes, the
//! top-N the L2 stream publishes) happens at the first few levels from the best. In a vector sorted away from the
//! best, those are the last elements: the best level is read and removed without a search, a new level near the top
//! shifts only the few levels above it, and the top N is one contiguous slice. A `BTreeMap` (the layout this
//! replaced) allocated a node per few levels and walked pointers for each of these. Removed levels hand their order
//! buffers back, so a level that empties and refills does not allocate either.

use std::collections::VecDeque;

use apex_core::Side;

use super::{Queue, RestingOrder};

/// Order buffers kept for reuse; beyond this many, a removed level's buffer is freed.
const SPARE_BUFFERS: usize = 64;

/// Price levels of one side, best last: ascending prices for bids, descending for asks (ordered by [`Ladder::key`]).
#[derive(Debug, Clone)]
pub(super) struct Ladder {
    side: Side,
    levels: Vec<(i64, Queue)>,
    spare: Vec<VecDeque<RestingOrder>>,
}

impl Ladder {
    pub(super) fn new(side: Side) -> Ladder {
        Ladder { side, levels: Vec::new(), spare: Vec::new() }
    }

    /// The sort key of a price: larger is better.
    fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => -price,
        }
    }

    /// Where `price`'s level is (`Ok`) or would go (`Err`), searched from the best end, where most lookups land.
    fn find(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        let side = self.side;
        let key_of = |&(p, _): &(i64, Queue)| match side {
            Side::Buy => p,
            Side::Sell => -p,
        };
        // A short scan covers the levels near the top; a binary search the rest.
        let len = self.levels.len();
        for at in (len.saturating_sub(4)..len).rev() {
            let here = key_of(&self.levels[at]);
            if here == key {
                return Ok(at);
            }
            if here < key {
                return Err(at + 1);
            }
        }
        self.levels[..len.saturating_sub(4)].binary_search_by_key(&key, key_of)
    }

    /// The best level.
    pub(super) fn best(&self) -> Option<(i64, &Queue)> {
        self.levels.last().map(|(price, queue)| (*price, queue))
    }

    /// The best level, to change.
    pub(super) fn best_mut(&mut self) -> Option<(i64, &mut Queue)> {
        self.levels.last_mut().map(|(price, queue)| (*price, queue))
    }

    /// Removes the best level.
    pub(super) fn remove_best(&mut self) {
        if let Some((_, queue)) = self.levels.pop() {
            self.recycle(queue);
        }
    }

    pub(super) fn get(&self, price: i64) -> Option<&Queue> {
        self.find(price).ok().map(|at| &self.levels[at].1)
    }

    pub(super) fn get_mut(&mut self, price: i64) -> Option<&mut Queue> {
        self.find(price).ok().map(|at| &mut self.levels[at].1)
    }

    /// The level at `price`, made empty if there is none.
    pub(super) fn entry(&mut self, price: i64) -> &mut Queue {
        let at = match self.find(price) {
            Ok(at) => at,
            Err(at) => {
                let orders = self.spare.pop().unwrap_or_default();
                self.levels.insert(at, (price, Queue { orders, total: 0, live: 0 }));
                at
            }
        };
        &mut self.levels[at].1
    }

    /// Removes the level at `price` (nothing if there is none).
    pub(super) fn remove(&mut self, price: i64) {
        if let Ok(at) = self.find(price) {
            let (_, queue) = self.levels.remove(at);
            self.recycle(queue);
        }
    }

    /// Every level, best first.
    pub(super) fn best_first(&self) -> impl Iterator<Item = (i64, &Queue)> {
        self.levels.iter().rev().map(|(price, queue)| (*price, queue))
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
                        ladder.remove(price);
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
                for probe in 0..40 {
                    prop_assert_eq!(ladder.get(probe).map(|q| q.total), reference.get(&probe).copied());
                }
            }
        }
    }
}
