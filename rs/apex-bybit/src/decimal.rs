//! `Dec`: a price, quantity or amount kept as the decimal string Bybit sends, turned into fixed point only by `Scale`.

use std::fmt;
use std::str::FromStr;

use apex_core::{Scale, ScaleError};
use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

/// A string that is not a decimal number where the protocol requires one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{text}' is not a decimal number")]
pub struct DecError {
    pub text: String,
}

/// A decimal number exactly as written on the wire (`"28552.10"`, `"-0.00255"`), or `""` where Bybit leaves a value
/// unset (a market order's `price`, a flat position's `liqPrice`). JSON `null`, which some REST answers carry in the
/// same places, reads as `""`. No float ever holds it: [`Dec::to_units`] converts through [`Scale`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Dec(String);

impl Dec {
    /// The unset value, `""`.
    pub const EMPTY: Dec = Dec(String::new());

    /// # Errors
    /// `DecError` unless `text` is `""` or `[-]digits[.digits]` (digits on at least one side of the point).
    pub fn new(text: impl Into<String>) -> Result<Dec, DecError> {
        let text = text.into();
        if text.is_empty() || is_decimal(&text) { Ok(Dec(text)) } else { Err(DecError { text }) }
    }

    /// The exact decimal of `units` on `scale`, written with the scale's decimals (`2855210` at 2 → `"28552.10"`).
    #[must_use]
    pub fn from_units(units: i64, scale: Scale) -> Dec {
        Dec(scale.format(units))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the unset value `""`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True for any spelling of zero (`"0"`, `"0.000"`, `"-0"`); false for `""`.
    #[must_use]
    pub fn is_zero(&self) -> bool {
        !self.0.is_empty() && self.0.bytes().all(|b| matches!(b, b'0' | b'.' | b'-'))
    }

    /// Integer units of `scale`.
    ///
    /// # Errors
    /// `NotDecimal` for the unset value, `TooPrecise` when the number has more decimals than the scale,
    /// `OutOfRange` on overflow.
    pub fn to_units(&self, scale: Scale) -> Result<i64, ScaleError> {
        scale.parse(&self.0)
    }

    /// Integer units of `scale`, `None` for the unset value.
    ///
    /// # Errors
    /// As [`Dec::to_units`] for a set value.
    pub fn opt_units(&self, scale: Scale) -> Result<Option<i64>, ScaleError> {
        if self.0.is_empty() { Ok(None) } else { scale.parse(&self.0).map(Some) }
    }
}

/// `[-]digits[.digits]` with at least one digit: what `Scale::parse` accepts.
fn is_decimal(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    (!int_part.is_empty() || !frac_part.is_empty())
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit())
}

impl FromStr for Dec {
    type Err = DecError;

    fn from_str(text: &str) -> Result<Dec, DecError> {
        Dec::new(text)
    }
}

impl TryFrom<&str> for Dec {
    type Error = DecError;

    fn try_from(text: &str) -> Result<Dec, DecError> {
        Dec::new(text)
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Dec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dec, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        Dec::new(text.unwrap_or_default()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_bybit_spellings_and_rejects_the_rest() {
        for ok in ["0", "28552.10", "-0.00255", "0.000", "5.", ".5", ""] {
            assert_eq!(Dec::new(ok).unwrap().as_str(), ok);
        }
        for bad in ["-", ".", "1e5", "abc", "1.2.3", " 1", "+1", "1,5", "NaN"] {
            assert_eq!(Dec::new(bad), Err(DecError { text: bad.to_owned() }), "{bad}");
        }
    }

    #[test]
    fn json_null_reads_as_unset_and_numbers_are_refused() {
        let d: Dec = serde_json::from_str("null").unwrap();
        assert!(d.is_empty());
        assert!(serde_json::from_str::<Dec>("1.5").is_err());
        assert!(serde_json::from_str::<Dec>("\"1e3\"").is_err());
        assert_eq!(serde_json::to_string(&Dec::new("1.50").unwrap()).unwrap(), "\"1.50\"");
    }

    #[test]
    fn units_go_through_the_scale() {
        let two = Scale::new(2).unwrap();
        assert_eq!(Dec::new("28552.10").unwrap().to_units(two).unwrap(), 2_855_210);
        assert_eq!(Dec::EMPTY.opt_units(two).unwrap(), None);
        assert!(Dec::EMPTY.to_units(two).is_err());
        assert!(Dec::new("0.001").unwrap().to_units(two).is_err());
        assert_eq!(Dec::from_units(2_855_210, two).as_str(), "28552.10");
        assert!(Dec::new("0.000").unwrap().is_zero());
        assert!(!Dec::EMPTY.is_zero());
        assert!(!Dec::new("0.01").unwrap().is_zero());
    }

    proptest! {
        /// Against the reference: a string is a `Dec` exactly when `Scale` (with room for its decimals) parses it.
        #[test]
        fn accepts_what_scale_parses(text in "-?[0-9]{0,4}(\\.[0-9]{0,4})?|[-0-9.e+ ]{0,6}") {
            let scale = Scale::new(8).unwrap();
            let dec_ok = Dec::new(text.clone()).is_ok() && !text.is_empty();
            prop_assert_eq!(dec_ok, scale.parse(&text).is_ok());
        }

        #[test]
        fn units_roundtrip(units in -1_000_000_000_000_i64..1_000_000_000_000, decimals in 0u32..9) {
            let scale = Scale::new(decimals).unwrap();
            let dec = Dec::from_units(units, scale);
            prop_assert_eq!(Dec::new(dec.as_str()).unwrap(), dec.clone());
            prop_assert_eq!(dec.to_units(scale).unwrap(), units);
        }
    }
}
