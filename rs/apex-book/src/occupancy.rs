//! Which slots of a dense price window hold a level, one bit each: a scan from the touch skips 64 empty slots a step.

/// A set of slot indexes below a fixed length: `next_from`/`prev_from` find the nearest member in either direction by
/// word, where a scan of the quantities would read every empty slot between two levels.
#[derive(Debug, Clone, Default)]
pub(crate) struct Occupancy {
    words: Vec<u64>,
}

impl Occupancy {
    /// Empties the set and sizes it for slots `0..len`.
    pub(crate) fn reset(&mut self, len: usize) {
        self.words.clear();
        self.words.resize(len.div_ceil(64), 0);
    }

    #[inline]
    pub(crate) fn insert(&mut self, slot: usize) {
        self.words[slot / 64] |= 1 << (slot % 64);
    }

    #[inline]
    pub(crate) fn remove(&mut self, slot: usize) {
        self.words[slot / 64] &= !(1 << (slot % 64));
    }

    /// The smallest member at or above `slot`.
    #[inline]
    pub(crate) fn next_from(&self, slot: usize) -> Option<usize> {
        let mut word = slot / 64;
        let mut bits = *self.words.get(word)? & (u64::MAX << (slot % 64));
        while bits == 0 {
            word += 1;
            bits = *self.words.get(word)?;
        }
        Some(word * 64 + bits.trailing_zeros() as usize)
    }

    /// The largest member at or below `slot` (which may be past the end: the search then starts at the last slot).
    #[inline]
    pub(crate) fn prev_from(&self, slot: usize) -> Option<usize> {
        let (mut word, mut bits) = if slot / 64 >= self.words.len() {
            let last = self.words.len().checked_sub(1)?;
            (last, self.words[last])
        } else {
            (slot / 64, self.words[slot / 64] & (u64::MAX >> (63 - slot % 64)))
        };
        while bits == 0 {
            word = word.checked_sub(1)?;
            bits = self.words[word];
        }
        Some(word * 64 + 63 - bits.leading_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::Occupancy;
    use proptest::prelude::*;

    proptest! {
        /// Against a vector of flags scanned slot by slot.
        #[test]
        fn nearest_members_equal_a_linear_scan(
            len in 1usize..300,
            ops in prop::collection::vec((any::<bool>(), 0usize..300), 0..200),
            probes in prop::collection::vec(0usize..320, 1..20),
        ) {
            let mut set = Occupancy::default();
            set.reset(len);
            let mut flags = vec![false; len];
            for (on, slot) in ops {
                let slot = slot % len;
                if on { set.insert(slot) } else { set.remove(slot) }
                flags[slot] = on;
            }
            for probe in probes {
                let next = (probe.min(len)..len).find(|&i| flags[i]);
                let prev = (0..=probe.min(len - 1)).rev().find(|&i| flags[i]);
                prop_assert_eq!(set.next_from(probe), next, "next from {}", probe);
                prop_assert_eq!(set.prev_from(probe), prev, "prev from {}", probe);
            }
        }
    }
}
