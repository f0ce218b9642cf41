//! A tiny deterministic generator (Marsaglia's xorshift64, shifts 13/7/17) for synthetic benchmark and test data.

/// Marsaglia's xorshift64: fast, seedable and the same on every machine; for synthetic data, not for statistics.
#[derive(Debug, Clone)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A generator from `seed` (0, which xorshift cannot leave, is replaced by 1).
    #[must_use]
    pub const fn new(seed: u64) -> XorShift64 {
        XorShift64 { state: if seed == 0 { 1 } else { seed } }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// The next number in [0, 1), from the top 53 bits.
    #[allow(clippy::cast_precision_loss)] // 53 bits: exact in an f64
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift64;

    #[test]
    fn matches_the_three_shift_definition() {
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut rng = XorShift64::new(state);
        for _ in 0..1000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            assert_eq!(rng.next_u64(), state);
        }
        let u = XorShift64::new(7).uniform();
        assert!((0.0..1.0).contains(&u));
    }
}
