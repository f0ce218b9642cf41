//! Where in a text document (a TOML config or fault plan) a parser's complaint points, as one line.

use std::ops::Range;

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

#[cfg(test)]
mod tests {
    use super::at_line;

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
}
