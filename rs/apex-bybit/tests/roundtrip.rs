//! Property test: generated V5 messages, written with shuffled key order, parse back into exactly the expected rows.

use apex_bybit::{KIND_DELTA, KIND_SNAPSHOT, LineParser};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Message {
    Book { symbol: usize, snapshot: bool, ts: i64, u: i64, seq: i64, bids: Vec<(u32, u32)>, asks: Vec<(u32, u32)> },
    Trades { ts: i64, items: Vec<(usize, bool, u32, u32, String)> },
    Other,
}

const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "1000PEPEUSDT"];

/// Prices with 2 decimals, sizes with 3, as Bybit writes them (trailing zeros kept).
fn price(ticks: u32) -> String {
    format!("{}.{:02}", ticks / 100, ticks % 100)
}

fn size(lots: u32) -> String {
    format!("{}.{:03}", lots / 1000, lots % 1000)
}

fn object(mut pairs: Vec<(&str, String)>, order: &[usize]) -> String {
    // Rotate and swap by the generated order so every key position occurs.
    let n = pairs.len();
    for (i, &k) in order.iter().enumerate() {
        pairs.swap(i % n, k % n);
    }
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

fn levels(levels: &[(u32, u32)]) -> String {
    let items: Vec<String> = levels.iter().map(|&(p, q)| format!("[\"{}\",\"{}\"]", price(p), size(q))).collect();
    format!("[{}]", items.join(","))
}

fn render(message: &Message, order: &[usize]) -> String {
    match message {
        Message::Book { symbol, snapshot, ts, u, seq, bids, asks } => {
            let data = object(
                vec![
                    ("s", format!("\"{}\"", SYMBOLS[*symbol])),
                    ("b", levels(bids)),
                    ("a", levels(asks)),
                    ("u", u.to_string()),
                    ("seq", seq.to_string()),
                ],
                order,
            );
            let kind = if *snapshot { "snapshot" } else { "delta" };
            object(
                vec![
                    ("topic", format!("\"orderbook.200.{}\"", SYMBOLS[*symbol])),
                    ("type", format!("\"{kind}\"")),
                    ("ts", ts.to_string()),
                    ("data", data),
                    ("cts", (ts - 2).to_string()),
                ],
                order,
            )
        }
        Message::Trades { ts, items } => {
            let items: Vec<String> = items
                .iter()
                .map(|(symbol, buy, p, q, id)| {
                    object(
                        vec![
                            ("T", (ts - 1).to_string()),
                            ("s", format!("\"{}\"", SYMBOLS[*symbol])),
                            ("S", if *buy { "\"Buy\"".into() } else { "\"Sell\"".into() }),
                            ("v", format!("\"{}\"", size(*q))),
                            ("p", format!("\"{}\"", price(*p))),
                            ("L", "\"PlusTick\"".into()),
                            ("i", format!("\"{id}\"")),
                            ("BT", "false".into()),
                        ],
                        order,
                    )
                })
                .collect();
            object(
                vec![
                    ("topic", "\"publicTrade.BTCUSDT\"".into()),
                    ("type", "\"snapshot\"".into()),
                    ("ts", ts.to_string()),
                    ("data", format!("[{}]", items.join(","))),
                ],
                order,
            )
        }
        Message::Other => r#"{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}"#.to_owned(),
    }
}

fn message() -> impl Strategy<Value = Message> {
    let side = || proptest::collection::vec((1u32..10_000_000, 0u32..100_000), 0..6);
    prop_oneof![
        4 => (0..3usize, any::<bool>(), 1i64..2_000_000_000_000, 0i64..1 << 40, 0i64..1 << 50, side(), side())
            .prop_map(|(symbol, snapshot, ts, u, seq, bids, asks)| Message::Book { symbol, snapshot, ts, u, seq, bids, asks }),
        2 => (1i64..2_000_000_000_000, proptest::collection::vec((0..3usize, any::<bool>(), 1u32..10_000_000, 1u32..100_000, "[0-9a-f-]{1,36}"), 1..4))
            .prop_map(|(ts, items)| Message::Trades { ts, items }),
        1 => Just(Message::Other),
    ]
}

proptest! {
    #[test]
    fn round_trip(messages in proptest::collection::vec(message(), 0..30), order in proptest::collection::vec(0usize..8, 8), pieces in 1usize..9) {
        let text: String = messages.iter().map(|m| render(m, &order) + "\n").collect();
        let mut parser = LineParser::new();
        parser.push_lines(text.as_bytes(), 1).unwrap();
        let name = |code: u32| parser.symbols[code as usize].clone();

        let mut book = Vec::new();
        let mut trades = Vec::new();
        for m in &messages {
            match m {
                Message::Book { symbol, snapshot, ts, u, seq, bids, asks } => {
                    let kind = if *snapshot { KIND_SNAPSHOT } else { KIND_DELTA };
                    let mut rows: Vec<(i8, String, String)> = bids.iter().map(|&(p, q)| (1, price(p), size(q))).collect();
                    rows.extend(asks.iter().map(|&(p, q)| (-1, price(p), size(q))));
                    if rows.is_empty() {
                        book.push((ts * 1_000_000, SYMBOLS[*symbol].to_owned(), kind, 0, None, None, *u, *seq));
                    }
                    for (side, p, q) in rows {
                        let (p, q) = (p.parse::<f64>().unwrap(), q.parse::<f64>().unwrap());
                        book.push((ts * 1_000_000, SYMBOLS[*symbol].to_owned(), kind, side, Some(p), Some(q), *u, *seq));
                    }
                }
                Message::Trades { ts, items } => {
                    for (symbol, buy, p, q, id) in items {
                        let (p, q) = (price(*p).parse::<f64>().unwrap(), size(*q).parse::<f64>().unwrap());
                        trades.push(((ts - 1) * 1_000_000, SYMBOLS[*symbol].to_owned(), if *buy { 1 } else { -1 }, p, q, id.clone()));
                    }
                }
                Message::Other => {}
            }
        }
        let b = &parser.book;
        let got_book: Vec<_> = (0..b.len())
            .map(|i| {
                let level = (b.side[i] != 0).then_some(());
                (b.ts[i], name(b.symbol[i]), b.kind[i], b.side[i], level.map(|()| b.price[i]), level.map(|()| b.size[i]), b.update_id[i], b.seq[i])
            })
            .collect();
        prop_assert_eq!(got_book, book);
        let t = &parser.trades;
        let got_trades: Vec<_> = (0..t.len())
            .map(|i| (t.ts[i], name(t.symbol[i]), t.side[i], t.price[i], t.size[i], t.trade_id(i).to_owned()))
            .collect();
        prop_assert_eq!(got_trades, trades);
        prop_assert_eq!(parser.lines, messages.len() as u64);
        let others = messages.iter().filter(|m| matches!(m, Message::Other)).count();
        prop_assert_eq!(parser.skipped, others as u64);

        // Split into pieces and parsed in parallel: the same rows, codes and counts.
        let split = LineParser::parse_in_pieces(text.as_bytes(), 1, pieces).unwrap();
        prop_assert_eq!(&split.symbols, &parser.symbols);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (a, b) = (&split.book, &parser.book);
        prop_assert_eq!((&a.ts, &a.symbol, &a.kind, &a.side, &a.update_id, &a.seq), (&b.ts, &b.symbol, &b.kind, &b.side, &b.update_id, &b.seq));
        prop_assert_eq!((bits(&a.price), bits(&a.size)), (bits(&b.price), bits(&b.size)));
        prop_assert_eq!(&split.trades, &parser.trades);
        prop_assert_eq!((split.lines, split.skipped), (parser.lines, parser.skipped));
    }
}
