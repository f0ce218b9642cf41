//! Where in a text document (a TOML config or fault plan) a parser's complaint points, as one line.

use std::ops::Range;

/// `message` on one line, prefixed `line N: ` when the parser gave the byte `span` it points at in `text`.
#[must_use]
pub fn at_line(text: &str, span: Option<Range<usize>>, message: &str) -> String {
    let message = message.trim().replace('\n', " ");
    match span {
        Some(span) => {
            let line = text.get(..span.start).map_or(1, |before| before.lines().count().max(1));
            format!("line {line}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::at_line;

    #[test]
    fn names_the_line_of_the_span_and_keeps_one_line() {
        let text = "a = 1\n[b]\nc = \"x\"\n";
        let start = text.find("\"x\"").unwrap();
        assert_eq!(at_line(text, Some(start..start + 3), "invalid type:\nstring"), "line 3: invalid type: string");
        assert_eq!(at_line(text, Some(0..1), "bad"), "line 1: bad");
        assert_eq!(at_line(text, None, "bad\n"), "bad");
    }
}
