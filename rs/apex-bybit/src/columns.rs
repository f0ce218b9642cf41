//! Lines of V5 public messages (the order-book archive format, or a WebSocket recording) into owned table columns.
//!
//! One message per line, keys in any order. Order-book messages become `book` rows (one per level, or one marker row
//! for a message without levels), public-trade messages become `trades` rows; everything else (tickers, op replies,
//! pongs) is counted and skipped. Symbols are coded in order of first appearance so the output is deterministic.

use std::borrow::Cow;
use std::collections::BTreeMap;

use apex_core::MessageHead;
use rayon::prelude::*;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::error::Category;
use thiserror::Error;

use crate::messages::{Envelope, Level, OrderbookData, PublicTrade};

pub use apex_book::columns::{KIND_DELTA, KIND_SNAPSHOT};
pub use apex_core::{BookRows, TradeRows};

const NS_PER_MS: i64 = 1_000_000;

/// A line that cannot be turned into rows; `line` is 1-based, counted from the `first_line` the caller gave.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("line {line}: not valid UTF-8")]
    Utf8 { line: u64 },
    #[error("line {line}: malformed JSON at column {column}: {detail}")]
    Json { line: u64, column: usize, detail: String },
    #[error("line {line}: {topic}: {detail}")]
    Field { line: u64, topic: String, detail: String },
    #[error("line {line}: {topic}: non-numeric {field} '{value}'")]
    Number { line: u64, topic: String, field: String, value: String },
    #[error("line {line}: {topic}: message type '{value}', expected 'snapshot' or 'delta'")]
    Kind { line: u64, topic: String, value: String },
}

/// Accumulates rows from lines of messages; feed it with [`LineParser::push_lines`], then read the public fields.
#[derive(Debug, Clone, Default)]
pub struct LineParser {
    /// Symbol names; a row's `symbol` code indexes this list.
    pub symbols: Vec<String>,
    pub book: BookRows,
    pub trades: TradeRows,
    /// Non-empty lines read.
    pub lines: u64,
    /// Lines that were neither order-book nor public-trade messages (tickers, op replies, pongs).
    pub skipped: u64,
    codes: BTreeMap<String, u32>,
}

impl LineParser {
    /// An empty parser.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `data`: messages separated by `\n` (a trailing `\r` and blank lines are ignored); the first line of
    /// `data` is numbered `first_line` in errors. On error the rows of earlier lines stay pushed.
    ///
    /// # Errors
    /// The first line that is not UTF-8, not JSON, or an order-book/trade message with a missing or mistyped field.
    pub fn push_lines(&mut self, data: &[u8], first_line: u64) -> Result<(), ParseError> {
        for (line_no, raw) in (first_line..).zip(data.split(|&b| b == b'\n')) {
            let trimmed = raw.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            self.push_line(trimmed, line_no)?;
        }
        Ok(())
    }

    /// The result of [`LineParser::push_lines`] on a fresh parser, computed by splitting `data` at line boundaries
    /// into about `pieces` parts parsed on the rayon pool, then merged in order (symbol codes stay in order of first
    /// appearance, so the output equals the sequential one).
    ///
    /// # Errors
    /// The error of the earliest bad line, as the sequential parse reports it.
    pub fn parse_in_pieces(data: &[u8], first_line: u64, pieces: usize) -> Result<LineParser, ParseError> {
        let mut bounds = vec![0];
        for k in 1..pieces.max(1) {
            let target = (data.len() * k / pieces).max(*bounds.last().expect("starts with 0"));
            let cut = data[target..].iter().position(|&b| b == b'\n').map_or(data.len(), |at| target + at + 1);
            if cut > *bounds.last().expect("starts with 0") && cut < data.len() {
                bounds.push(cut);
            }
        }
        bounds.push(data.len());
        let slices: Vec<&[u8]> = bounds.windows(2).map(|w| &data[w[0]..w[1]]).collect();
        let mut firsts = Vec::with_capacity(slices.len());
        let mut line = first_line;
        for slice in &slices {
            firsts.push(line);
            line += slice.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        let parsed: Vec<Result<LineParser, ParseError>> = slices
            .par_iter()
            .zip(firsts.par_iter())
            .map(|(slice, &first)| {
                let mut parser = LineParser::new();
                parser.push_lines(slice, first).map(|()| parser)
            })
            .collect();
        let mut out = LineParser::new();
        for piece in parsed {
            out.append(piece?);
        }
        Ok(out)
    }

    /// Appends the rows of `other` (parsed from later lines), recoding its symbols into this parser's codes.
    fn append(&mut self, other: LineParser) {
        let recode: Vec<u32> = other.symbols.iter().map(|name| self.code(name)).collect();
        self.book.append(other.book, &recode);
        self.trades.append(other.trades, &recode);
        self.lines += other.lines;
        self.skipped += other.skipped;
    }

    /// Parses one message.
    ///
    /// # Errors
    /// As [`LineParser::push_lines`].
    pub fn push_line(&mut self, line: &[u8], line_no: u64) -> Result<(), ParseError> {
        let text = std::str::from_utf8(line).map_err(|_| ParseError::Utf8 { line: line_no })?;
        self.lines += 1;
        // One pass when `topic` precedes `data` (every real stream); otherwise, or to word an error, the slower path
        // that keeps `data` raw until the topic is known.
        if let Ok(fast) = serde_json::from_str::<Line<'_>>(text) {
            let topic = fast.topic.as_deref().unwrap_or_default();
            match (fast.data, fast.ts, fast.kind.as_deref()) {
                (LineData::Skipped, ..) => {
                    self.skipped += 1;
                    return Ok(());
                }
                (LineData::Book(book), Some(ts), Some(kind @ ("snapshot" | "delta"))) => {
                    let kind = if kind == "snapshot" { KIND_SNAPSHOT } else { KIND_DELTA };
                    return self.push_book(&book, kind, ts, line_no, topic);
                }
                (LineData::Trades(trades), ..) => return self.push_trades(&trades, line_no, topic),
                _ => {}
            }
        }
        self.push_line_slow(text, line_no)
    }

    fn push_line_slow(&mut self, text: &str, line_no: u64) -> Result<(), ParseError> {
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| json_error(line_no, "message", &e))?;
        let Some(topic) = envelope.topic.as_deref() else {
            self.skipped += 1;
            return Ok(());
        };
        let is_book = topic.starts_with("orderbook.");
        if !is_book && !topic.starts_with("publicTrade.") {
            self.skipped += 1;
            return Ok(());
        }
        let field = |detail: &str| ParseError::Field { line: line_no, topic: topic.to_owned(), detail: detail.into() };
        let data = envelope.data.ok_or_else(|| field("missing field `data`"))?;
        if is_book {
            let ts = envelope.ts.ok_or_else(|| field("missing field `ts`"))?;
            let kind = match envelope.kind.as_deref() {
                Some("snapshot") => KIND_SNAPSHOT,
                Some("delta") => KIND_DELTA,
                Some(other) => {
                    return Err(ParseError::Kind { line: line_no, topic: topic.to_owned(), value: other.to_owned() });
                }
                None => return Err(field("missing field `type`")),
            };
            let book: OrderbookData<'_> = parse_data(data.get(), line_no, topic)?;
            self.push_book(&book, kind, ts, line_no, topic)
        } else {
            let trades: Vec<PublicTrade<'_>> = parse_data(data.get(), line_no, topic)?;
            self.push_trades(&trades, line_no, topic)
        }
    }

    fn code(&mut self, symbol: &str) -> u32 {
        if let Some(&code) = self.codes.get(symbol) {
            return code;
        }
        let code = u32::try_from(self.symbols.len()).expect("fewer than 2^32 symbols");
        self.symbols.push(symbol.to_owned());
        self.codes.insert(symbol.to_owned(), code);
        code
    }

    fn push_book(
        &mut self,
        data: &OrderbookData<'_>,
        kind: u8,
        ts_ms: i64,
        line: u64,
        topic: &str,
    ) -> Result<(), ParseError> {
        let symbol = self.code(&data.s);
        let ts = ms_to_ns(ts_ms, line, topic, "ts")?;
        let update_id = i64::try_from(data.u).map_err(|_| number_error(line, topic, "u", &data.u.to_string()))?;
        let levels = [(1_i8, "b", &data.b), (-1_i8, "a", &data.a)];
        // Parse every level before pushing any, so a bad message leaves no partial rows behind.
        let mut parsed = Vec::with_capacity(data.b.len() + data.a.len());
        for (side, name, side_levels) in levels {
            for (i, Level(price, size)) in side_levels.iter().enumerate() {
                let price = decimal(price, line, topic, || format!("price in data.{name}[{i}]"))?;
                let size = decimal(size, line, topic, || format!("size in data.{name}[{i}]"))?;
                parsed.push((side, price, size));
            }
        }
        let message = MessageHead { ts, symbol, kind, update_id, seq: data.seq };
        self.book.push_message(message, parsed);
        Ok(())
    }

    fn push_trades(&mut self, trades: &[PublicTrade<'_>], line: u64, topic: &str) -> Result<(), ParseError> {
        let mut parsed = Vec::with_capacity(trades.len());
        for (i, trade) in trades.iter().enumerate() {
            let ts = ms_to_ns(trade.T, line, topic, "T")?;
            let price = decimal(&trade.p, line, topic, || format!("price in data[{i}].p"))?;
            let size = decimal(&trade.v, line, topic, || format!("size in data[{i}].v"))?;
            parsed.push((ts, price, size));
        }
        for (trade, (ts, price, size)) in trades.iter().zip(parsed) {
            let symbol = self.code(&trade.s);
            self.trades.push(ts, symbol, trade.S.sign(), price, size, &trade.i);
        }
        Ok(())
    }
}

/// Which table a topic feeds.
fn topic_table(topic: &str) -> Option<bool> {
    if topic.starts_with("orderbook.") {
        Some(true)
    } else if topic.starts_with("publicTrade.") {
        Some(false)
    } else {
        None
    }
}

/// `data` of a line read in one pass: typed when `topic` came first, else left for the slow path.
enum LineData<'a> {
    Book(OrderbookData<'a>),
    Trades(Vec<PublicTrade<'a>>),
    Skipped,
    Unknown,
}

/// A message read in one pass (see [`LineParser::push_line`]).
struct Line<'a> {
    topic: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    ts: Option<i64>,
    data: LineData<'a>,
}

#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Deserialize<'de> for Line<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LineVisitor;
        impl<'de> serde::de::Visitor<'de> for LineVisitor {
            type Value = Line<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a V5 message object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Line<'de>, A::Error> {
                let mut line = Line { topic: None, kind: None, ts: None, data: LineData::Unknown };
                let mut has_data = false;
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    match key.as_ref() {
                        "topic" => line.topic = Some(map.next_value::<Text<'de>>()?.0),
                        "type" => line.kind = Some(map.next_value::<Text<'de>>()?.0),
                        "ts" => line.ts = Some(map.next_value()?),
                        "data" => {
                            has_data = true;
                            line.data = match line.topic.as_deref().map(topic_table) {
                                Some(Some(true)) => LineData::Book(map.next_value()?),
                                Some(Some(false)) => LineData::Trades(map.next_value()?),
                                Some(None) => {
                                    map.next_value::<IgnoredAny>()?;
                                    LineData::Skipped
                                }
                                None => {
                                    map.next_value::<IgnoredAny>()?;
                                    LineData::Unknown
                                }
                            };
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                // Op replies and pongs carry no topic; a known non-data topic without `data` is skipped too.
                let skip = match line.topic.as_deref() {
                    None => true,
                    Some(topic) => topic_table(topic).is_none(),
                };
                if skip {
                    line.data = LineData::Skipped;
                } else if !has_data {
                    line.data = LineData::Unknown;
                }
                Ok(line)
            }
        }
        deserializer.deserialize_map(LineVisitor)
    }
}

fn parse_data<'a, T: Deserialize<'a>>(raw: &'a str, line: u64, topic: &str) -> Result<T, ParseError> {
    serde_json::from_str(raw).map_err(|e| json_error(line, topic, &e))
}

/// A serde error without its position suffix: within one line the position only helps for syntax errors.
fn json_error(line: u64, topic: &str, error: &serde_json::Error) -> ParseError {
    let text = error.to_string();
    let detail = text.rsplit_once(" at line ").map_or(text.as_str(), |(head, _)| head).to_owned();
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ParseError::Json { line, column: error.column(), detail },
        Category::Data => ParseError::Field { line, topic: topic.to_owned(), detail: format!("data: {detail}") },
    }
}

fn number_error(line: u64, topic: &str, field: &str, value: &str) -> ParseError {
    ParseError::Number { line, topic: topic.to_owned(), field: field.to_owned(), value: value.to_owned() }
}

fn decimal(text: &str, line: u64, topic: &str, field: impl FnOnce() -> String) -> Result<f64, ParseError> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(number_error(line, topic, &field(), text)),
    }
}

fn ms_to_ns(ms: i64, line: u64, topic: &str, field: &str) -> Result<i64, ParseError> {
    ms.checked_mul(NS_PER_MS).ok_or_else(|| number_error(line, topic, field, &ms.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_row_for_message_without_levels() {
        let mut parser = LineParser::new();
        let line = br#"{"type":"delta","topic":"orderbook.50.X","ts":5,"data":{"s":"X","b":[],"a":[],"u":7,"seq":9}}"#;
        parser.push_lines(line, 1).unwrap();
        assert_eq!(parser.book.side, vec![0]);
        assert!(parser.book.price[0].is_nan() && parser.book.size[0].is_nan());
        assert_eq!((parser.book.ts[0], parser.book.update_id[0], parser.book.seq[0]), (5_000_000, 7, 9));
    }

    #[test]
    fn bad_price_leaves_no_partial_rows() {
        let mut parser = LineParser::new();
        let line = br#"{"topic":"orderbook.50.X","type":"delta","ts":5,"data":{"s":"X","b":[["1.0","2"]],"a":[["x","1"]],"u":7,"seq":9}}"#;
        let err = parser.push_lines(line, 10).unwrap_err();
        assert_eq!(err.to_string(), "line 10: orderbook.50.X: non-numeric price in data.a[0] 'x'");
        assert!(parser.book.is_empty());
    }
}
