//! The market's event queue: tasks in (time, scheduling order), each keyed by one packed `u128`.
//!
//! The market pops hundreds of thousands of tasks per simulated hour. A dozen recurring tasks (agent wakes, quotes,
//! the L2 tick, the bar clock, orders in flight) are nearly all of them: they wait in a vector sorted latest first,
//! so a pop takes the last element and a push scans the few entries due before it. The ~150 noise-order expiry
//! timers, which mostly outlive their orders, wait aside in a 4-ary min-heap (half as deep as a binary one, one
//! integer compared per step). Keys are unique (the sequence number is), so [`SplitQueue`], popping the earlier of
//! the two heads, gives the order of one queue, and that order equals the tuple order.

/// Tasks by (time, sequence): `pop` returns the earliest time, ties in the order they were pushed with.
#[derive(Debug, Clone)]
pub(super) struct EventQueue<T> {
    heap: Vec<(u128, T)>,
}

/// Time and sequence as one key that orders like the tuple (time first; time may be negative).
fn key(ts: i64, seq: u64) -> u128 {
    (u128::from(ts as u64 ^ (1 << 63)) << 64) | u128::from(seq)
}

fn time_of(key: u128) -> i64 {
    ((key >> 64) as u64 ^ (1 << 63)) as i64
}

const ARITY: usize = 4;

impl<T: Copy> EventQueue<T> {
    pub(super) fn new() -> EventQueue<T> {
        EventQueue { heap: Vec::new() }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Adds `task` at `ts`; `seq` must be larger than every sequence pushed before.
    pub(super) fn push(&mut self, ts: i64, seq: u64, task: T) {
        let entry = (key(ts, seq), task);
        let mut at = self.heap.len();
        self.heap.push(entry);
        while at > 0 {
            let parent = (at - 1) / ARITY;
            if self.heap[parent].0 <= entry.0 {
                break;
            }
            self.heap[at] = self.heap[parent];
            at = parent;
        }
        self.heap[at] = entry;
    }

    /// The earliest task and its time.
    pub(super) fn peek(&self) -> Option<(i64, T)> {
        self.heap.first().map(|&(k, task)| (time_of(k), task))
    }

    fn first_key(&self) -> Option<u128> {
        self.heap.first().map(|&(k, _)| k)
    }

    /// Removes the earliest task.
    pub(super) fn pop(&mut self) -> Option<(i64, T)> {
        let top = self.peek()?;
        let last = self.heap.pop().expect("peeked");
        let len = self.heap.len();
        if len > 0 {
            // Sift `last` down from the root: move the smallest child up until `last` fits.
            let mut at = 0;
            loop {
                let first = at * ARITY + 1;
                if first >= len {
                    break;
                }
                // The smaller child is chosen without branching: the comparisons of a heap's keys are coin flips
                // the branch predictor mostly misses. A full node compares pairs, then the two winners.
                let smaller = |a: usize, b: usize| if self.heap[b].0 < self.heap[a].0 { b } else { a };
                let best = if first + ARITY <= len {
                    smaller(smaller(first, first + 1), smaller(first + 2, first + 3))
                } else {
                    (first + 1..len).fold(first, smaller)
                };
                if self.heap[best].0 >= last.0 {
                    break;
                }
                self.heap[at] = self.heap[best];
                at = best;
            }
            self.heap[at] = last;
        }
        Some(top)
    }
}

/// Tasks by (time, sequence) in a vector sorted latest first: for a queue of a dozen tasks, most of them due soon, a
/// pop is the vector's `pop` and a push scans a few entries from the due end, where a heap sifts on both.
#[derive(Debug, Clone)]
pub(super) struct SortedQueue<T> {
    items: Vec<(u128, T)>,
}

impl<T: Copy> SortedQueue<T> {
    pub(super) fn new() -> SortedQueue<T> {
        SortedQueue { items: Vec::new() }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// Adds `task` at `ts`; `seq` must be larger than every sequence pushed before.
    pub(super) fn push(&mut self, ts: i64, seq: u64, task: T) {
        let entry = (key(ts, seq), task);
        let mut at = self.items.len();
        while at > 0 && self.items[at - 1].0 < entry.0 {
            at -= 1;
        }
        self.items.insert(at, entry);
    }

    /// The earliest task and its time.
    pub(super) fn peek(&self) -> Option<(i64, T)> {
        self.items.last().map(|&(k, task)| (time_of(k), task))
    }

    fn first_key(&self) -> Option<u128> {
        self.items.last().map(|&(k, _)| k)
    }

    /// Removes the earliest task.
    pub(super) fn pop(&mut self) -> Option<(i64, T)> {
        self.items.pop().map(|(k, task)| (time_of(k), task))
    }
}

/// A [`SortedQueue`] and an [`EventQueue`] popped as one: the tasks the caller pushes `aside` (many, long-lived)
/// wait in the heap.
#[derive(Debug, Clone)]
pub(super) struct SplitQueue<T> {
    main: SortedQueue<T>,
    aside: EventQueue<T>,
}

impl<T: Copy> SplitQueue<T> {
    pub(super) fn new() -> SplitQueue<T> {
        SplitQueue { main: SortedQueue::new(), aside: EventQueue::new() }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.main.len() + self.aside.len()
    }

    /// Adds `task` at `ts` to the main heap or the aside one; `seq` must be larger than every sequence pushed before
    /// to either.
    pub(super) fn push(&mut self, ts: i64, seq: u64, task: T, aside: bool) {
        if aside { self.aside.push(ts, seq, task) } else { self.main.push(ts, seq, task) }
    }

    /// Whether the earliest task waits aside.
    fn aside_first(&self) -> bool {
        match (self.main.first_key(), self.aside.first_key()) {
            (Some(main), Some(aside)) => aside < main,
            (None, aside) => aside.is_some(),
            (Some(_), None) => false,
        }
    }

    /// The earliest task and its time.
    #[cfg(test)]
    pub(super) fn peek(&self) -> Option<(i64, T)> {
        if self.aside_first() { self.aside.peek() } else { self.main.peek() }
    }

    /// Removes the earliest task.
    #[cfg(test)]
    pub(super) fn pop(&mut self) -> Option<(i64, T)> {
        self.pop_through(i64::MAX)
    }

    /// Removes and returns the earliest task if it is due by `until` (the market's loop: one comparison of the two
    /// heads where a peek and a pop made two).
    pub(super) fn pop_through(&mut self, until: i64) -> Option<(i64, T)> {
        let aside = self.aside_first();
        let (ts, _) = if aside { self.aside.peek() } else { self.main.peek() }?;
        if ts > until {
            return None;
        }
        if aside { self.aside.pop() } else { self.main.pop() }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    use super::*;

    /// Replays `ops` (pop, or push aside or not at a time; -50 and 49 stand for the extreme times) on a split queue
    /// and on `BinaryHeap<Reverse<(ts, seq, task)>>` (the queue these replaced), comparing every pop, peek and length.
    /// With nothing pushed aside, the split queue is its `SortedQueue` alone; with everything, its `EventQueue`.
    fn same_as_binary_heap(ops: Vec<(bool, bool, i64)>) -> Result<(), TestCaseError> {
        let (mut ours, mut reference) = (SplitQueue::new(), BinaryHeap::new());
        for (seq, (pop, aside, ts)) in ops.into_iter().enumerate() {
            let seq = seq as u64;
            let ts = if ts == -50 {
                i64::MIN
            } else if ts == 49 {
                i64::MAX
            } else {
                ts
            };
            if pop {
                // `ts` is the bound: the earliest task comes out only if it is due by then.
                let due = reference.peek().is_some_and(|&Reverse((t, _, _))| t <= ts);
                let expected = if due { reference.pop().map(|Reverse((t, _, x))| (t, x)) } else { None };
                prop_assert_eq!(ours.pop_through(ts), expected);
            } else {
                ours.push(ts, seq, seq * 7, aside);
                reference.push(Reverse((ts, seq, seq * 7)));
            }
            prop_assert_eq!(ours.peek(), reference.peek().map(|&Reverse((t, _, x))| (t, x)));
            prop_assert_eq!(ours.len(), reference.len());
        }
        while let Some(Reverse((t, _, x))) = reference.pop() {
            prop_assert_eq!(ours.pop(), Some((t, x)));
        }
        prop_assert_eq!(ours.pop(), None);
        Ok(())
    }

    proptest! {
        /// Any interleaving of pushes and pops gives, in either queue alone, what
        /// `BinaryHeap<Reverse<(ts, seq, task)>>` (the queue these replaced) gives.
        #[test]
        fn pops_in_the_order_of_the_binary_heap(ops in prop::collection::vec((any::<bool>(), -50i64..50), 0..400)) {
            same_as_binary_heap(ops.iter().map(|&(pop, ts)| (pop, false, ts)).collect())?;
            same_as_binary_heap(ops.into_iter().map(|(pop, ts)| (pop, true, ts)).collect())?;
        }

        /// The split queue pops what one heap pops, whichever heap each task waited in.
        #[test]
        fn a_split_queue_pops_in_the_order_of_one_heap(
            ops in prop::collection::vec((any::<bool>(), any::<bool>(), -50i64..50), 0..400),
        ) {
            same_as_binary_heap(ops)?;
        }
    }
}
