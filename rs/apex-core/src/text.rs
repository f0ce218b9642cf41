//! Text as users write it: where in a document (a TOML config or fault plan) a parser's complaint points, as one
//! line, and durations (`500ms`, `10m`) as every `--duration` and config spells them.

use std::ops::Range;
use std::time::Duration;

/// `message` on one line, prefixed `line N: ` when the parser gave the byte `span` it points at in `text`, then
/// `field: ` when the value's place in the document is known (`reject.ret_code`, `slots[1].capital`; "." is the
/// document itself).
#[must_use]
pub fn at_line(text: &str, span: Option<Range<usize>>, field: Option<&str>, message: &str) -> String {
    let message = message.trim().replace('\n', " ");
    let message = match field {
        Some(field) if !field.is_empty() && field != "." => format!("{field}: {message}"),
        _ => message,
    };
    match span {
        Some(span) => {
            let line = text.get(..span.start).map_or(1, |before| before.matches('\n').count() + 1);
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// `T` from TOML `text`; an error is one line naming the line and the field of the value (`reject.ret_code`,
/// `slots[1].capital`): the parser's own message says what is wrong, not where.
///
/// # Errors
/// The syntax error, unknown or missing field, or wrong-typed value, as [`at_line`] words it.
#[cfg(feature = "toml")]
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let named = |e: &toml::de::Error, field: Option<&str>| at_line(text, e.span(), field, e.message());
    let document = toml::Deserializer::parse(text).map_err(|e| named(&e, None))?;
    serde_path_to_error::deserialize(document).map_err(|e| named(e.inner(), Some(&e.path().to_string())))
}

/// The longest duration accepted: `Duration::from_secs_f64` panics past u64 seconds, and no run is meant to outlast
/// a decade.
const LONGEST_SECONDS: f64 = 3650.0 * 86_400.0;

/// A run length or time window as apexctl spells it on every command line and in configs: "250ms", "5s", "1.5s",
/// "10m", "2h", "1d" or a bare number of seconds.
///
/// # Errors
/// A message naming what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 5s, 10m, 1h, 1d)"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h or d)")),
    };
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(format!("{text:?} must be a positive duration"));
    }
    if seconds >= LONGEST_SECONDS {
        return Err(format!("{text:?} is longer than the longest duration, 3650d"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::{at_line, parse_duration};
    use std::time::Duration;

    #[test]
    fn names_the_line_of_the_span_and_the_field_and_keeps_one_line() {
        let text = "a = 1\n[b]\nc = \"x\"\n";
        let start = text.find("\"x\"").unwrap();
        assert_eq!(
            at_line(text, Some(start..start + 3), None, "invalid type:\nstring"),
            "line 3: invalid type: string"
        );
        assert_eq!(at_line(text, Some(start..start + 3), Some("b.c"), "bad"), "line 3: b.c: bad");
        assert_eq!(at_line(text, Some(0..1), Some("."), "bad"), "line 1: bad");
        // A span at the start of a line is on that line, not the one before.
        assert_eq!(at_line(text, Some(6..9), None, "bad"), "line 2: bad");
        assert_eq!(at_line(text, None, Some(""), "bad\n"), "bad");
        assert_eq!(at_line(text, None, Some("b"), "bad"), "b: bad");
    }

    #[cfg(feature = "toml")]
    #[test]
    fn a_toml_value_is_named_by_its_line_and_its_field() {
        use super::parse_toml;

        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // read only through Debug: what matters is which value is refused
        struct Slot {
            capital: f64,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Document {
            slots: Vec<Slot>,
        }
        let wrong = parse_toml::<Document>("[[slots]]\ncapital = 1.0\n\n[[slots]]\ncapital = \"x\"\n").unwrap_err();
        assert!(wrong.starts_with("line 5: slots[1].capital: invalid type: string \"x\""), "{wrong}");
        let unknown = parse_toml::<Document>("[[slots]]\ncapital = 1.0\nsize = 2\n").unwrap_err();
        assert!(unknown.starts_with("line 3: slots[0].size: unknown field `size`"), "{unknown}");
        let syntax = parse_toml::<Document>("[[slots]]\ncapital = = 1\n").unwrap_err();
        assert!(syntax.starts_with("line 2: ") && !syntax.contains('\n'), "{syntax}");
        assert!(parse_toml::<Document>("[[slots]]\ncapital = 2.5\n").is_ok());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(
            parse_duration("10 parsecs").is_err() && parse_duration("-1s").is_err() && parse_duration("0s").is_err()
        );
    }

    proptest::proptest! {
        /// A whole number with a unit is that many of the unit (to the nanosecond: `ms` divides in floating point);
        /// the bare number is seconds. Counts stay under the 3650d ceiling in every unit.
        #[test]
        fn a_number_with_a_unit_is_that_many_units(count in 1u64..3650, unit in 0usize..5) {
            let (name, nanos) = [("ms", 1_000_000u128), ("s", 1_000_000_000), ("m", 60_000_000_000),
                ("h", 3_600_000_000_000), ("d", 86_400_000_000_000)][unit];
            let expected = u128::from(count) * nanos;
            let parsed = parse_duration(&format!("{count}{name}")).unwrap().as_nanos();
            proptest::prop_assert!(parsed.abs_diff(expected) <= 1, "{count}{name}: {parsed} ns, expected {expected}");
            if name == "s" {
                proptest::prop_assert_eq!(parse_duration(&count.to_string()).unwrap().as_nanos(), expected);
            }
        }
    }
}
