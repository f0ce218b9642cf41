//! The market's event queue: tasks in (time, scheduling order), as a 4-ary min-heap on one packed `u128` key.
//!
//! The market pops hundreds of thousands of tasks per simulated hour from a queue of a few hundred; a 4-ary heap is
//! half as deep as a binary one and compares one integer per step, where `BinaryHeap<Reverse<(i64, u64, Task)>>`
//! compared tuples. Keys are unique (the sequence number is), so the order is total and equals the tuple order.
//!
//! [`SplitQueue`] keeps one kind of task in a heap of its own and pops the earlier of the two heads: the same order as
//! one heap (keys are unique), but the frequent short-lived tasks no longer sift through the many long timers.

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
                let end = (first + ARITY).min(len);
                let mut best = first;
                for child in first + 1..end {
                    if self.heap[child].0 < self.heap[best].0 {
                        best = child;
                    }
                }
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

/// Two [`EventQueue`]s popped as one: the tasks the caller pushes `aside` wait in the second heap.
#[derive(Debug, Clone)]
pub(super) struct SplitQueue<T> {
    main: EventQueue<T>,
    aside: EventQueue<T>,
}

impl<T: Copy> SplitQueue<T> {
    pub(super) fn new() -> SplitQueue<T> {
        SplitQueue { main: EventQueue::new(), aside: EventQueue::new() }
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

    /// The heap holding the earliest task.
    fn earliest(&self) -> &EventQueue<T> {
        match (self.main.first_key(), self.aside.first_key()) {
            (Some(main), Some(aside)) if aside < main => &self.aside,
            (None, Some(_)) => &self.aside,
            _ => &self.main,
        }
    }

    /// The earliest task and its time.
    pub(super) fn peek(&self) -> Option<(i64, T)> {
        self.earliest().peek()
    }

    /// Removes the earliest task.
    pub(super) fn pop(&mut self) -> Option<(i64, T)> {
        if std::ptr::eq(self.earliest(), &self.aside) { self.aside.pop() } else { self.main.pop() }
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
    /// With nothing pushed aside, the split queue is its main `EventQueue` alone.
    fn same_as_binary_heap(ops: Vec<(bool, bool, i64)>) -> Result<(), TestCaseError> {
        let (mut ours, mut reference) = (SplitQueue::new(), BinaryHeap::new());
        for (seq, (pop, aside, ts)) in ops.into_iter().enumerate() {
            let seq = seq as u64;
            if pop {
                prop_assert_eq!(ours.pop(), reference.pop().map(|Reverse((t, _, x))| (t, x)));
            } else {
                let ts = if ts == -50 {
                    i64::MIN
                } else if ts == 49 {
                    i64::MAX
                } else {
                    ts
                };
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
        /// Any interleaving of pushes and pops gives what `BinaryHeap<Reverse<(ts, seq, task)>>` (the queue this one
        /// replaced) gives.
        #[test]
        fn pops_in_the_order_of_the_binary_heap(ops in prop::collection::vec((any::<bool>(), -50i64..50), 0..400)) {
            same_as_binary_heap(ops.into_iter().map(|(pop, ts)| (pop, false, ts)).collect())?;
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
