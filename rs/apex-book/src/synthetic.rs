//! Deterministic synthetic order-book streams shaped like Bybit's ob200 archives, for benchmarks and tests.

use apex_core::XorShift64;

use crate::Level;

/// The bid and ask levels of one message.
pub type Sides = (Vec<Level>, Vec<Level>);

/// A 200-level snapshot around 100000/100001 ticks, then `count` deltas each touching 1-6 levels within 220 ticks of
/// the touch (a quarter of them removals); the same stream on every machine.
#[must_use]
pub fn ob200_stream(count: usize) -> (Sides, Vec<Sides>) {
    let mut rng = XorShift64::new(0x9E37_79B9_7F4A_7C15_u64);
    let mut next = move || rng.next_u64();
    let snap_bids: Vec<Level> = (0..200).map(|i| Level::new(100_000 - i, 1 + (i % 17))).collect();
    let snap_asks: Vec<Level> = (0..200).map(|i| Level::new(100_001 + i, 1 + (i % 13))).collect();
    let deltas = (0..count)
        .map(|_| {
            let mut bids = Vec::new();
            let mut asks = Vec::new();
            for _ in 0..(1 + next() % 6) {
                let offset = i64::try_from(next() % 220).expect("below 220");
                let qty = if next() % 4 == 0 { 0 } else { 1 + i64::try_from(next() % 500).expect("below 500") };
                if next() % 2 == 0 {
                    bids.push(Level::new(100_000 - offset, qty));
                } else {
                    asks.push(Level::new(100_001 + offset, qty));
                }
            }
            (bids, asks)
        })
        .collect();
    ((snap_bids, snap_asks), deltas)
}
