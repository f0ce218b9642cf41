//! The simplest book that follows the V5 protocol text literally: the reference the property tests hold `L2Book` and
//! the update features to.

/// (price, qty) levels, in integer units, in no particular order.
pub type Levels = Vec<(i64, i64)>;

/// What one message did to a [`NaiveBook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NaiveOutcome {
    /// A snapshot, or the delta that follows the last applied message.
    Applied,
    /// A delta before the first snapshot.
    Dropped,
    /// A delta whose `u` does not follow: the book waits for a snapshot from now on.
    Gap,
    /// A delta while waiting for a snapshot.
    Stale,
}

/// Two unsorted vectors and linear scans: slow on purpose, so that it cannot share a bug with the real book.
#[derive(Debug, Clone, Default)]
pub struct NaiveBook {
    pub bids: Levels,
    pub asks: Levels,
    /// `u` of the last applied message.
    pub last: Option<u64>,
    pub stale: bool,
}

impl NaiveBook {
    /// Applies one message: a snapshot replaces the book, a delta sets each level (qty 0 deletes it) if its `u`
    /// follows the last one.
    pub fn apply(&mut self, snapshot: bool, u: u64, bids: &[(i64, i64)], asks: &[(i64, i64)]) -> NaiveOutcome {
        if snapshot {
            self.bids.clear();
            self.asks.clear();
            self.stale = false;
        } else {
            let Some(last) = self.last else { return NaiveOutcome::Dropped };
            if self.stale {
                return NaiveOutcome::Stale;
            }
            if u != last + 1 {
                self.stale = true;
                return NaiveOutcome::Gap;
            }
        }
        for &(price, qty) in bids {
            set(&mut self.bids, price, qty);
        }
        for &(price, qty) in asks {
            set(&mut self.asks, price, qty);
        }
        self.last = Some(u);
        NaiveOutcome::Applied
    }

    /// Bids, best (highest) first.
    #[must_use]
    pub fn sorted_bids(&self) -> Levels {
        let mut levels = self.bids.clone();
        levels.sort_by_key(|l| std::cmp::Reverse(l.0));
        levels
    }

    /// Asks, best (lowest) first.
    #[must_use]
    pub fn sorted_asks(&self) -> Levels {
        let mut levels = self.asks.clone();
        levels.sort_by_key(|l| l.0);
        levels
    }
}

fn set(side: &mut Levels, price: i64, qty: i64) {
    side.retain(|&(p, _)| p != price);
    if qty > 0 {
        side.push((price, qty));
    }
}
