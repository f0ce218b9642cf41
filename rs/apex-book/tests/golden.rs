//! Golden tests: real Bybit V5 order-book messages (tests/data/bybit) replayed through the book.

use std::collections::BTreeMap;
use std::path::PathBuf;

use apex_book::{Applied, BookError, L2Book, Level, UpdateKind};
use apex_core::{Scale, Side, decimals_in};
use serde_json::Value;

fn data(path: &str) -> Value {
    let file = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../tests/data/bybit")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

fn levels(side: &Value, price: Scale, qty: Scale) -> Vec<Level> {
    side.as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            Level::new(price.parse(pair[0].as_str().unwrap()).unwrap(), qty.parse(pair[1].as_str().unwrap()).unwrap())
        })
        .collect()
}

/// The outcome of each message, tagged with its topic.
type Outcomes = Vec<(String, Result<Applied, BookError>)>;

/// Replays every orderbook message of a file, one book per topic, with scales taken from the strings themselves.
fn replay(messages: &[Value]) -> (BTreeMap<String, L2Book>, Outcomes) {
    let mut books: BTreeMap<String, L2Book> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for msg in messages.iter().filter(|m| m["topic"].as_str().unwrap_or("").starts_with("orderbook.")) {
        let topic = msg["topic"].as_str().unwrap().to_owned();
        let d = &msg["data"];
        let all: Vec<&Value> = d["b"].as_array().unwrap().iter().chain(d["a"].as_array().unwrap()).collect();
        let price_decimals = all.iter().map(|p| decimals_in(p[0].as_str().unwrap())).max().unwrap_or(0);
        let qty_decimals = all.iter().map(|p| decimals_in(p[1].as_str().unwrap())).max().unwrap_or(0);
        // Generous fixed scales: every message of a topic must fit the same grid.
        let (ps, qs) = (Scale::new(price_decimals.max(2)).unwrap(), Scale::new(qty_decimals.max(6)).unwrap());
        let book = books.entry(topic.clone()).or_insert_with(|| L2Book::new(ps, qs));
        let (ps, qs) = (book.price_scale(), book.qty_scale());
        let kind = if msg["type"] == "snapshot" { UpdateKind::Snapshot } else { UpdateKind::Delta };
        let outcome = book.apply(
            kind,
            d["u"].as_u64().unwrap(),
            d["seq"].as_i64().unwrap(),
            msg["ts"].as_i64().unwrap(),
            &levels(&d["b"], ps, qs),
            &levels(&d["a"], ps, qs),
        );
        outcomes.push((topic, outcome));
    }
    (books, outcomes)
}

fn best(book: &L2Book, side: Side) -> (String, String) {
    let level = book.best(side).unwrap();
    (book.price_scale().format(level.price), book.qty_scale().format(level.qty))
}

#[test]
fn derivatives_messages() {
    let messages = data("tardis/bybit_v5_derivatives_messages.json");
    let (books, outcomes) = replay(messages.as_array().unwrap());
    // orderbook.1.BTCUSDT: snapshot u=7003305, delta u=7003306, then a delta u=1188472 from another day: a gap.
    let btc: Vec<_> = outcomes.iter().filter(|(t, _)| t == "orderbook.1.BTCUSDT").map(|(_, o)| o.clone()).collect();
    assert_eq!(btc[0], Ok(Applied::Snapshot { rebased: false }));
    assert_eq!(btc[1], Ok(Applied::Delta));
    assert_eq!(btc[2], Err(BookError::Gap { expected: 7_003_307, got: 1_188_472 }));
    let book = &books["orderbook.1.BTCUSDT"];
    assert_eq!(best(book, Side::Buy), ("28552.00".into(), "0.012000".into()));
    assert_eq!(best(book, Side::Sell), ("28552.10".into(), "25.433000".into()));
    assert!(!book.is_synced());

    let perp = &books["orderbook.50.BTCPERP"];
    assert!(perp.is_synced());
    assert_eq!(best(perp, Side::Buy), ("28555.20".into(), "0.677000".into()));
    assert_eq!(best(perp, Side::Sell), ("28555.30".into(), "0.029000".into()));
    assert_eq!(perp.stats().deltas, 1);
}

#[test]
fn spot_messages() {
    let messages = data("tardis/bybit_v5_spot_messages.json");
    let (books, outcomes) = replay(messages.as_array().unwrap());
    assert!(outcomes.iter().all(|(_, o)| o.is_ok()), "{outcomes:?}");
    let top = &books["orderbook.1.BTCUSDT"];
    assert_eq!(best(top, Side::Buy), ("28165.07".into(), "0.166754".into()));
    assert_eq!(best(top, Side::Sell), ("28165.08".into(), "0.996816".into()));
    // The orderbook.50 delta inserts a bid below the best and deletes two levels the trimmed snapshot never held.
    let deep = &books["orderbook.50.BTCUSDT"];
    assert_eq!(deep.top_n(Side::Buy, 5).len(), 2);
    assert_eq!(deep.top_n(Side::Sell, 5).len(), 1);
    assert_eq!(best(deep, Side::Buy), ("28162.57".into(), "0.075620".into()));
    assert_eq!(deep.stats().deltas, 1);
}

#[test]
fn nautilus_fixture_snapshot_then_delta() {
    let snapshot = data("nautilus_fixtures/ws_orderbook_snapshot.json");
    let delta = data("nautilus_fixtures/ws_orderbook_delta.json");
    let (books, outcomes) = replay(&[snapshot, delta]);
    assert!(outcomes.iter().all(|(_, o)| o.is_ok()));
    let book = &books["orderbook.1.BTCUSDT"];
    assert_eq!(best(book, Side::Buy), ("27450.00".into(), "0.400000".into()));
    // The delta deleted 27451.00; the next ask takes over.
    assert_eq!(best(book, Side::Sell), ("27451.50".into(), "0.900000".into()));
    assert_eq!(book.depth_levels(Side::Buy, 10), 1_400_000);
}
