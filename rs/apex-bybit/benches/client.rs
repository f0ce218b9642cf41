//! Criterion benchmark of the client's hot paths: public order-book messages parsed and applied to the book (typed,
//! borrowing parse + `BookTracker`) against parsing each into a `serde_json::Value` first; and REST request signing
//! against RFC 2104 written out over plain SHA-256 with `format!` hex.

use std::hint::black_box;

use apex_book::{L2Book, Level, UpdateKind};
use apex_bybit::OrderbookMessage;
use apex_bybit::client::public::{BookSpec, BookTracker};
use apex_bybit::sign::rest_signature;
use apex_core::Scale;
use apex_core::timing::per_second;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MESSAGES: usize = 20_000;

fn scales() -> (Scale, Scale) {
    (Scale::new(1).unwrap(), Scale::new(3).unwrap())
}

/// An ob200-like stream as WebSocket text frames: a 200-level snapshot, then deltas touching 1-6 levels.
fn frames() -> Vec<String> {
    let mut rng = apex_core::XorShift64::new(0x9E37_79B9_7F4A_7C15_u64);
    let mut next = move || rng.next_u64();
    let (ps, qs) = scales();
    let level = |price: i64, qty: i64| format!("[\"{}\",\"{}\"]", ps.format(price), qs.format(qty));
    let frame = |kind: &str, u: usize, bids: &[String], asks: &[String]| {
        format!(
            "{{\"topic\":\"orderbook.200.BTCUSDT\",\"type\":\"{kind}\",\"ts\":{},\"data\":{{\"s\":\"BTCUSDT\",\
             \"b\":[{}],\"a\":[{}],\"u\":{u},\"seq\":{}}},\"cts\":{}}}",
            1_700_000_000_000_u64 + u as u64 * 100,
            bids.join(","),
            asks.join(","),
            50_000_000 + u * 3,
            1_700_000_000_000_u64 + u as u64 * 100 - 2,
        )
    };
    let bids: Vec<String> = (0..200).map(|i| level(600_000 - i, 1 + (i % 17) * 7)).collect();
    let asks: Vec<String> = (0..200).map(|i| level(600_001 + i, 1 + (i % 13) * 5)).collect();
    let mut out = vec![frame("snapshot", 1, &bids, &asks)];
    for u in 2..=MESSAGES {
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for _ in 0..(1 + next() % 6) {
            let offset = (next() % 220) as i64;
            let qty = if next() % 4 == 0 { 0 } else { 1 + (next() % 5000) as i64 };
            if next() % 2 == 0 {
                bids.push(level(600_000 - offset, qty));
            } else {
                asks.push(level(600_001 + offset, qty));
            }
        }
        out.push(frame("delta", u, &bids, &asks));
    }
    out
}

fn run_typed(frames: &[String]) -> u64 {
    let (price_scale, qty_scale) = scales();
    let mut tracker = BookTracker::new(BookSpec { symbol: "BTCUSDT".into(), depth: 200, price_scale, qty_scale });
    for frame in frames {
        let message: OrderbookMessage<'_> = serde_json::from_str(frame).unwrap();
        tracker.apply(&message).unwrap();
    }
    tracker.book().best_bid().map_or(0, |l| l.price as u64)
}

/// The baseline: a generic JSON tree per message, fields looked up by name, the same exact decimal parsing and book.
fn run_value(frames: &[String]) -> u64 {
    let (ps, qs) = scales();
    let mut book = L2Book::new(ps, qs);
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    for frame in frames {
        let v: Value = serde_json::from_str(frame).unwrap();
        let data = &v["data"];
        for (key, out) in [("b", &mut bids), ("a", &mut asks)] {
            out.clear();
            for level in data[key].as_array().unwrap() {
                let price = ps.parse(level[0].as_str().unwrap()).unwrap();
                let qty = qs.parse(level[1].as_str().unwrap()).unwrap();
                out.push(Level { price, qty });
            }
        }
        let kind = if v["type"] == "snapshot" { UpdateKind::Snapshot } else { UpdateKind::Delta };
        let (u, seq, ts) = (data["u"].as_u64().unwrap(), data["seq"].as_i64().unwrap(), v["ts"].as_i64().unwrap());
        book.apply(kind, u, seq, ts, &bids, &asks).unwrap();
    }
    book.best_bid().map_or(0, |l| l.price as u64)
}

fn reference_sign(secret: &str, message: &str) -> String {
    let mut key = [0u8; 64];
    key[..secret.len()].copy_from_slice(secret.as_bytes());
    let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    let outer = Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

fn bench_book(c: &mut Criterion) {
    let frames = frames();
    assert_eq!(run_typed(&frames), run_value(&frames), "both paths end on the same book");
    let typed = per_second(|| run_typed(&frames), frames.len(), 5);
    let value = per_second(|| run_value(&frames), frames.len(), 5);
    println!(
        "public_orderbook_parse_apply thrpt: typed + BookTracker {:.0} k msg/s, serde_json::Value baseline {:.0} k msg/s \
         (best of 5), ratio {:.2}x",
        typed / 1e3,
        value / 1e3,
        typed / value
    );
    let mut group = c.benchmark_group(format!("public_orderbook_parse_apply_{MESSAGES}"));
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.sample_size(10);
    group.bench_function("typed_book_tracker", |b| b.iter(|| run_typed(&frames)));
    group.bench_function("serde_json_value", |b| b.iter(|| run_value(&frames)));
    group.finish();
}

fn bench_sign(c: &mut Criterion) {
    let body = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"60000.5","timeInForce":"PostOnly","orderLinkId":"apx-mgk2v1q0-1f"}"#;
    let (secret, key, recv) = ("0123456789abcdef0123456789abcdef0123", "api-key-0123456789", 5000);
    let message = format!("{}{key}{recv}{body}", 1_700_000_000_000_i64);
    assert_eq!(rest_signature(secret, key, 1_700_000_000_000, recv, body), reference_sign(secret, &message));
    const N: usize = 20_000;
    let ours = per_second(
        || {
            (0..N as i64)
                .map(|i| rest_signature(secret, key, 1_700_000_000_000 + i, recv, body).len() as u64)
                .sum::<u64>()
        },
        N,
        5,
    );
    let reference = per_second(
        || {
            (0..N as i64)
                .map(|i| reference_sign(secret, &format!("{}{key}{recv}{body}", 1_700_000_000_000 + i)).len() as u64)
                .sum::<u64>()
        },
        N,
        5,
    );
    println!(
        "rest_sign thrpt: apex-bybit {:.0} k signatures/s, RFC 2104 over sha2 + format! hex {:.0} k/s (best of 5), \
         ratio {:.2}x",
        ours / 1e3,
        reference / 1e3,
        ours / reference
    );
    let mut group = c.benchmark_group("rest_sign");
    group.throughput(Throughput::Elements(1));
    group.bench_function("apex_bybit", |b| {
        b.iter(|| rest_signature(secret, key, 1_700_000_000_000, recv, black_box(body)))
    });
    group.bench_function("reference_hmac", |b| b.iter(|| reference_sign(secret, black_box(&message))));
    group.finish();
}

criterion_group!(benches, bench_book, bench_sign);
criterion_main!(benches);
