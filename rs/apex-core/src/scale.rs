//! Fixed-point scales: decimal strings and floats to integer units (10^-decimals) and back, exactly.

use thiserror::Error;

/// Largest number of decimals a scale supports; 10^12 units keep prices up to ~9e6 inside i64 with room to spare.
pub const MAX_DECIMALS: u32 = 12;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum ScaleError {
    #[error("'{text}' is not a decimal number")]
    NotDecimal { text: String },
    #[error("'{text}' has more than {decimals} decimals")]
    TooPrecise { text: String, decimals: u32 },
    #[error("{value} is not a finite number")]
    NotFinite { value: f64 },
    #[error("{value} is not a multiple of 1e-{decimals}")]
    OffGrid { value: f64, decimals: u32 },
    #[error("{value} is out of range for 1e-{decimals} units")]
    OutOfRange { value: f64, decimals: u32 },
    #[error("scale of {decimals} decimals is over the maximum of {MAX_DECIMALS}")]
    BadDecimals { decimals: u32 },
}

/// A decimal fixed-point scale: a value `x` is stored as the integer `x * 10^decimals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    decimals: u32,
    factor: i64,
}

impl Scale {
    /// # Errors
    /// `BadDecimals` when `decimals` exceeds [`MAX_DECIMALS`].
    pub fn new(decimals: u32) -> Result<Scale, ScaleError> {
        if decimals > MAX_DECIMALS {
            return Err(ScaleError::BadDecimals { decimals });
        }
        Ok(Scale { decimals, factor: 10_i64.pow(decimals) })
    }

    #[must_use]
    pub fn decimals(self) -> u32 {
        self.decimals
    }

    /// Units per 1.0.
    #[must_use]
    pub fn factor(self) -> i64 {
        self.factor
    }

    /// Parses a decimal string such as `"28552.10"` exactly, without going through a float.
    ///
    /// # Errors
    /// `NotDecimal` for anything but `[-]digits[.digits]`, `TooPrecise` when it has more decimals than the scale
    /// (non-zero ones), `OutOfRange` on overflow.
    pub fn parse(self, text: &str) -> Result<i64, ScaleError> {
        let not_decimal = || ScaleError::NotDecimal { text: text.to_owned() };
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(not_decimal());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_decimal());
        }
        let significant_frac = frac_part.trim_end_matches('0');
        if significant_frac.len() > self.decimals as usize {
            return Err(ScaleError::TooPrecise { text: text.to_owned(), decimals: self.decimals });
        }
        let overflow = || ScaleError::OutOfRange { value: f64::NAN, decimals: self.decimals };
        let mut units: i64 = 0;
        for b in int_part.bytes() {
            units = units.checked_mul(10).and_then(|u| u.checked_add(i64::from(b - b'0'))).ok_or_else(overflow)?;
        }
        units = units.checked_mul(self.factor).ok_or_else(overflow)?;
        let mut frac_units: i64 = 0;
        for (i, b) in significant_frac.bytes().enumerate() {
            let weight = 10_i64.pow(self.decimals - 1 - i as u32);
            frac_units += i64::from(b - b'0') * weight;
        }
        units = units.checked_add(frac_units).ok_or_else(overflow)?;
        Ok(if negative { -units } else { units })
    }

    /// Converts a float that is meant to lie on the grid (e.g. a price read back from a table).
    ///
    /// # Errors
    /// `NotFinite` for NaN/inf, `OffGrid` when the value is further than 1e-6 units from the grid, `OutOfRange`
    /// when it does not fit in i64 units.
    pub fn from_f64(self, value: f64) -> Result<i64, ScaleError> {
        if !value.is_finite() {
            return Err(ScaleError::NotFinite { value });
        }
        let scaled = value * self.factor as f64;
        if scaled.abs() >= 9.0e18 {
            return Err(ScaleError::OutOfRange { value, decimals: self.decimals });
        }
        // f64::round (half away from zero), without its libm call on baseline x86-64: book replays round every price
        // and size. Below 2^52 the truncation and the fraction are exact; above it the value is already whole.
        let truncated = scaled as i64;
        let fraction = scaled - truncated as f64;
        let rounded = truncated + i64::from(fraction >= 0.5) - i64::from(fraction <= -0.5);
        // Floats carry ~16 significant digits; allow that much relative error before calling a value off-grid.
        let tolerance = (scaled.abs() * 4.0 * f64::EPSILON).max(1e-6);
        if (scaled - rounded as f64).abs() > tolerance {
            return Err(ScaleError::OffGrid { value, decimals: self.decimals });
        }
        Ok(rounded)
    }

    #[must_use]
    pub fn to_f64(self, units: i64) -> f64 {
        units as f64 / self.factor as f64
    }

    /// Exact decimal rendering with exactly `decimals` digits after the point (e.g. `28552.10`).
    #[must_use]
    pub fn format(self, units: i64) -> String {
        if self.decimals == 0 {
            return units.to_string();
        }
        let sign = if units < 0 { "-" } else { "" };
        let magnitude = units.unsigned_abs();
        let factor = self.factor.unsigned_abs();
        format!("{sign}{}.{:0width$}", magnitude / factor, magnitude % factor, width = self.decimals as usize)
    }
}

/// Number of significant decimals in a decimal string (`"28552.10"` → 1, `"0.006"` → 3, `"5"` → 0).
#[must_use]
pub fn decimals_in(text: &str) -> u32 {
    match text.split_once('.') {
        Some((_, frac)) => frac.trim_end_matches('0').len() as u32,
        None => 0,
    }
}

/// Smallest number of decimals (up to [`MAX_DECIMALS`]) on whose grid every finite value lies.
///
/// Used when no instrument info is at hand: the scale is inferred from the data itself.
#[must_use]
pub fn infer_decimals(values: impl IntoIterator<Item = f64>) -> u32 {
    let mut needed = 0;
    let mut scale = Scale::new(needed).expect("0 decimals");
    for value in values {
        if !value.is_finite() {
            continue;
        }
        while needed < MAX_DECIMALS && scale.from_f64(value).is_err() {
            needed += 1;
            scale = Scale::new(needed).expect("needed stays within MAX_DECIMALS");
        }
    }
    needed
}

/// [`infer_decimals`] of the entries of `values` that `include` keeps, eight at a time: a block whose every value is
/// on the grid found so far (or not a number) passes in a few vector instructions, whatever `include` says of it,
/// and only the other blocks are read value by value. Book replays infer their scales on every call.
#[must_use]
pub fn infer_decimals_where(values: &[f64], include: impl Fn(usize) -> bool) -> u32 {
    const BLOCK: usize = 8;
    let mut needed = 0;
    let mut scale = Scale::new(needed).expect("0 decimals");
    for (number, block) in values.chunks(BLOCK).enumerate() {
        if block.len() == BLOCK && scale.all_on_grid(block) {
            continue;
        }
        for (offset, &value) in block.iter().enumerate() {
            if !value.is_finite() || !include(number * BLOCK + offset) {
                continue;
            }
            while needed < MAX_DECIMALS && scale.from_f64(value).is_err() {
                needed += 1;
                scale = Scale::new(needed).expect("needed stays within MAX_DECIMALS");
            }
        }
    }
    needed
}

impl Scale {
    /// Whether `from_f64` takes every value of `values` or it is NaN, without a branch a value (so the loop
    /// vectorizes). The distance to the nearest integer is the same whichever way a tie rounds, so rounding ties to
    /// even (one instruction) decides exactly as `from_f64`'s half-away rounding does.
    fn all_on_grid(self, values: &[f64]) -> bool {
        let factor = self.factor as f64;
        values.iter().fold(true, |all, &value| {
            let scaled = value * factor;
            let off = (scaled - scaled.round_ties_even()).abs();
            let tolerance = (scaled.abs() * 4.0 * f64::EPSILON).max(1e-6);
            // NaN passes (`infer_decimals` skips it); an infinity fails the range test and is read one by one.
            let near = off <= tolerance || off.is_nan();
            let in_range = scaled.abs() < 9.0e18 || scaled.is_nan();
            all & near & in_range
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_bybit_strings_exactly() {
        let s = Scale::new(2).unwrap();
        assert_eq!(s.parse("28552.10").unwrap(), 2_855_210);
        assert_eq!(s.parse("0").unwrap(), 0);
        assert_eq!(s.parse("7.5").unwrap(), 750);
        assert_eq!(s.parse("-1.25").unwrap(), -125);
        assert!(matches!(s.parse("1.234"), Err(ScaleError::TooPrecise { .. })));
        assert!(matches!(s.parse("abc"), Err(ScaleError::NotDecimal { .. })));
        assert!(matches!(s.parse(""), Err(ScaleError::NotDecimal { .. })));
        assert!(matches!(s.parse("1e5"), Err(ScaleError::NotDecimal { .. })));
    }

    #[test]
    fn infers_decimals_from_floats() {
        assert_eq!(infer_decimals([28552.1, 28552.0]), 1);
        assert_eq!(infer_decimals([0.006, 25.433]), 3);
        assert_eq!(infer_decimals([1.0, 2.0]), 0);
        assert_eq!(infer_decimals([1.9531, f64::NAN]), 4);
    }

    #[test]
    fn rejects_nan_and_off_grid() {
        let s = Scale::new(1).unwrap();
        assert!(matches!(s.from_f64(f64::NAN), Err(ScaleError::NotFinite { .. })));
        assert!(matches!(s.from_f64(1.25), Err(ScaleError::OffGrid { .. })));
    }

    /// `from_f64` as written with `f64::round`: the reference for the inlined rounding.
    fn from_f64_with_round(scale: Scale, value: f64) -> Result<i64, ScaleError> {
        if !value.is_finite() {
            return Err(ScaleError::NotFinite { value });
        }
        let scaled = value * scale.factor as f64;
        if scaled.abs() >= 9.0e18 {
            return Err(ScaleError::OutOfRange { value, decimals: scale.decimals });
        }
        let rounded = scaled.round();
        let tolerance = (scaled.abs() * 4.0 * f64::EPSILON).max(1e-6);
        if (scaled - rounded).abs() > tolerance {
            return Err(ScaleError::OffGrid { value, decimals: scale.decimals });
        }
        Ok(rounded as i64)
    }

    proptest! {
        #[test]
        fn from_f64_rounds_like_f64_round(
            value in prop_oneof![
                any::<f64>(),
                -1e6..1e6f64,
                (-1_000_000_i64..1_000_000, 0u32..4).prop_map(|(n, k)| n as f64 / 10f64.powi(k as i32)),
                (-1_000_000_i64..1_000_000).prop_map(|n| n as f64 + 0.5),
                -1e19..1e19f64,
            ],
            decimals in 0u32..9,
        ) {
            let scale = Scale::new(decimals).unwrap();
            prop_assert_eq!(scale.from_f64(value), from_f64_with_round(scale, value));
        }

        #[test]
        fn infer_where_is_infer_over_the_kept_values(
            values in proptest::collection::vec(prop_oneof![
                4 => (-1_000_000_i64..1_000_000, 0u32..3).prop_map(|(n, k)| n as f64 / 10f64.powi(k as i32)),
                1 => (-1_000_000_i64..1_000_000, 0u32..13).prop_map(|(n, k)| n as f64 / 10f64.powi(k as i32)),
                1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-f64::INFINITY), Just(0.5), Just(1e19)],
                1 => any::<f64>(),
            ], 0..70),
            kept in proptest::collection::vec(any::<bool>(), 70),
        ) {
            let expected = infer_decimals(values.iter().zip(&kept).filter(|(_, k)| **k).map(|(v, _)| *v));
            prop_assert_eq!(infer_decimals_where(&values, |i| kept[i]), expected);
        }

        #[test]
        fn format_parse_roundtrip(units in -1_000_000_000_000_i64..1_000_000_000_000, decimals in 0u32..9) {
            let s = Scale::new(decimals).unwrap();
            prop_assert_eq!(s.parse(&s.format(units)).unwrap(), units);
            prop_assert_eq!(s.from_f64(s.to_f64(units)).unwrap(), units);
        }
    }
}
