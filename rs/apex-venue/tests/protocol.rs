//! The venue's protocol against Bybit's rules: auth and the recv_window rule, rate limits and their headers, op
//! replies and pongs, whole-batch subscribe rejection, snapshot-then-delta sequencing, private auth; and bad input
//! (malformed JSON, unknown ops and topics, frames over 1 MB, bad signatures, stale timestamps, a thousand fuzzed
//! frames and requests): each gets a Bybit-shaped error or a closed connection with a reason, and everyone else is
//! still served.

mod common;

use std::time::Duration;

use apex_book::{L2Book, Level, UpdateKind};
use apex_core::Scale;
use common::*;
use futures_util::StreamExt;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_on_loopback_only_and_answers_market_data() {
    let (venue, _) = venue(5.0).await;
    assert!(venue.address().ip().is_loopback());
    let time = get(&venue, "/v5/market/time", "").await;
    assert_eq!((time.status, time.code()), (200, 0));
    let mut book = get(&venue, "/v5/market/orderbook", "category=linear&symbol=BTCUSDT&limit=5").await;
    while book.body["result"]["u"] == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        book = get(&venue, "/v5/market/orderbook", "category=linear&symbol=BTCUSDT&limit=5").await;
    }
    assert_eq!(book.body["result"]["s"], "BTCUSDT");
    assert!(book.body["result"]["b"].as_array().is_some_and(|b| b.len() == 5));
    let bad = get(&venue, "/v5/market/orderbook", "category=spot&symbol=BTCUSDT").await;
    assert_eq!(bad.code(), 10001);
    let missing = get(&venue, "/v5/market/orderbook", "category=linear").await;
    assert_eq!(missing.code(), 10001);
    let unknown = get(&venue, "/v5/market/nothing", "").await;
    assert_eq!((unknown.status, unknown.code()), (404, 10017));
    venue.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_recv_window_and_rate_limits() {
    let (venue, config) = venue(1.0).await;
    let alice = &config.accounts[0];
    let ok = signed_get(&venue, alice, "/v5/account/wallet-balance", "accountType=UNIFIED").await;
    assert_eq!(ok.code(), 0, "{:?}", ok.body);
    assert_eq!(ok.body["result"]["list"][0]["coin"][0]["walletBalance"], "10000");
    assert_eq!(ok.header("x-bapi-limit"), Some("50"));
    // The signed bytes must be the sent bytes.
    let mut headers = signed_headers(alice, now_ms(), 5000, "accountType=UNIFIED");
    let query = "accountType=UNIFIED&coin=USDT";
    let bad = raw(
        &venue,
        format!(
            "GET /v5/account/wallet-balance?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}\r\n",
            headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect::<String>()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(bad.code(), 10004);
    assert!(bad.body["retMsg"].as_str().unwrap().contains("origin_string["));
    // server - recv_window <= timestamp < server + 1000.
    let body = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.001"}"#;
    for (offset, expected) in [(-6_000, 10002), (2_000, 10002), (-1_000, 0)] {
        headers = signed_headers(alice, now_ms() + offset, 5000, body);
        let reply = post_with(&venue, "/v5/order/create", &headers, body).await;
        assert_eq!(reply.code(), expected, "offset {offset}: {:?}", reply.body);
    }
    // Eleven creates in one second: the eleventh is 10006 with the limit headers.
    let bob = &config.accounts[1];
    let far = r#"{"category":"linear","symbol":"SOLUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"100"}"#;
    let mut codes = Vec::new();
    let mut last = None;
    while codes.len() < 11 {
        let second = now_ms() / 1000;
        let reply = signed_post(&venue, bob, "/v5/order/create", far).await;
        if now_ms() / 1000 != second {
            codes.clear();
            continue;
        }
        codes.push(reply.code());
        last = Some(reply);
    }
    let last = last.unwrap();
    assert_eq!(codes.iter().filter(|&&c| c == 10006).count(), codes.len() - 10, "{codes:?}");
    if codes[10] == 10006 {
        assert_eq!((last.header("x-bapi-limit"), last.header("x-bapi-limit-status")), (Some("10"), Some("0")));
        let reset: i64 = last.header("x-bapi-limit-reset-timestamp").unwrap().parse().unwrap();
        assert!(reset > now_ms() - 1_000 && reset <= now_ms() + 1_000);
    }
    venue.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_subscribe_rules_and_book_sequencing() {
    let (venue, _) = venue(10.0).await;
    let mut ws = connect(&venue.public_url()).await;
    send(&mut ws, r#"{"req_id":"p1","op":"ping"}"#).await;
    let pong = next_op(&mut ws, "ping").await;
    assert_eq!(
        (pong["success"].as_bool(), pong["ret_msg"].as_str(), pong["req_id"].as_str()),
        (Some(true), Some("pong"), Some("p1"))
    );
    send(&mut ws, r#"{"req_id":"s1","op":"subscribe","args":["orderbook.50.BTCUSDT"]}"#).await;
    let ack = next_op(&mut ws, "subscribe").await;
    assert_eq!(
        (ack["success"].as_bool(), ack["req_id"].as_str(), ack["ret_msg"].as_str()),
        (Some(true), Some("s1"), Some(""))
    );
    // Snapshot first, then deltas with u + 1 each; the rebuilt book is never crossed. Only BTCUSDT arrives.
    let scales = (Scale::new(1).unwrap(), Scale::new(3).unwrap());
    let mut book = L2Book::new(scales.0, scales.1);
    let mut deltas = 0;
    let mut first = true;
    while deltas < 50 {
        let message = next_json(&mut ws, 5 * SECOND).await.expect("open");
        if message.get("topic").is_none() {
            continue;
        }
        assert_eq!(message["topic"], "orderbook.50.BTCUSDT");
        let kind = if message["type"] == "snapshot" { UpdateKind::Snapshot } else { UpdateKind::Delta };
        assert!(!first || kind == UpdateKind::Snapshot, "the first message is a snapshot");
        first = false;
        assert!(message["ts"].as_i64() >= message["cts"].as_i64());
        let levels = |side: &str| -> Vec<Level> {
            message["data"][side]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    Level::new(
                        scales.0.parse(l[0].as_str().unwrap()).unwrap(),
                        scales.1.parse(l[1].as_str().unwrap()).unwrap(),
                    )
                })
                .collect()
        };
        let u = message["data"]["u"].as_u64().unwrap();
        book.apply(kind, u, message["data"]["seq"].as_i64().unwrap(), 0, &levels("b"), &levels("a"))
            .expect("in sequence, never crossed");
        deltas += usize::from(kind == UpdateKind::Delta);
    }
    // One already-subscribed topic fails the whole batch: ETHUSDT is not subscribed either (no snapshot comes).
    send(&mut ws, r#"{"req_id":"s2","op":"subscribe","args":["orderbook.50.ETHUSDT","orderbook.50.BTCUSDT"]}"#).await;
    let rejected = next_op(&mut ws, "subscribe").await;
    assert_eq!(rejected["success"], false);
    assert_eq!(rejected["ret_msg"], "error:already subscribed,topic:orderbook.50.BTCUSDT");
    send(&mut ws, r#"{"req_id":"s3","op":"subscribe","args":["orderbook.500.BTCUSDT"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["ret_msg"], "error:handler not found,topic:orderbook.500.BTCUSDT");
    let until = tokio::time::Instant::now() + SECOND;
    while tokio::time::Instant::now() < until {
        let message = next_json(&mut ws, 5 * SECOND).await.expect("open");
        assert_ne!(message["topic"], "orderbook.50.ETHUSDT");
    }
    send(&mut ws, r#"{"op":"unsubscribe","args":["orderbook.50.BTCUSDT"]}"#).await;
    assert_eq!(next_op(&mut ws, "unsubscribe").await["success"], true);
    venue.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_auth_topics_and_pong() {
    let (venue, config) = venue(5.0).await;
    let alice = &config.accounts[0];
    let mut ws = connect(&venue.private_url()).await;
    send(&mut ws, r#"{"op":"subscribe","args":["order"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["ret_msg"], "Request not authorized");
    send(&mut ws, &auth_request(alice, now_ms() - 1)).await;
    assert_eq!(next_op(&mut ws, "auth").await["ret_msg"], "Params Error");
    let mut wrong = alice.clone();
    wrong.api_secret = "nope".into();
    send(&mut ws, &auth_request(&wrong, now_ms() + 10_000)).await;
    assert_eq!(next_op(&mut ws, "auth").await["success"], false);
    send(&mut ws, &auth_request(alice, now_ms() + 10_000)).await;
    assert_eq!(next_op(&mut ws, "auth").await["success"], true);
    send(&mut ws, r#"{"op":"subscribe","args":["order","execution.linear"]}"#).await;
    assert!(next_op(&mut ws, "subscribe").await["ret_msg"].as_str().unwrap().contains("cannot be in one request"));
    send(&mut ws, r#"{"op":"subscribe","args":["order","execution","position","wallet"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["success"], true);
    send(&mut ws, r#"{"op":"subscribe","args":["greeks"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["ret_msg"], "error:handler not found,topic:greeks");
    send(&mut ws, r#"{"req_id":"7","op":"ping"}"#).await;
    let pong = next_op(&mut ws, "pong").await;
    assert_eq!(pong["req_id"], "7");
    assert!(pong["args"][0].as_str().unwrap().parse::<i64>().is_ok());
    let create = signed_post(&venue, alice, "/v5/order/create", r#"{"category":"linear","symbol":"ETHUSDT","side":"Buy","orderType":"Market","qty":"0.05","orderLinkId":"ws-1"}"#).await;
    assert_eq!(create.code(), 0, "{:?}", create.body);
    let mut topics = std::collections::BTreeSet::new();
    while topics.len() < 4 {
        let message = next_json(&mut ws, 5 * SECOND).await.expect("open");
        if let Some(topic) = message["topic"].as_str() {
            topics.insert(topic.to_owned());
            if topic == "order" {
                assert_eq!(message["data"][0]["orderLinkId"], "ws-1");
            }
        }
    }
    venue.stop().await;
}

/// Frames and requests a client could send by mistake or malice.
fn fuzz_frame(rng: &mut Xoshiro256PlusPlus) -> String {
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"op\"",
        ":",
        ",",
        "\"subscribe\"",
        "\"args\"",
        "\"orderbook.50.BTCUSDT\"",
        "null",
        "1e999",
        "\"auth\"",
        "\"ping\"",
        "\u{0}",
        "\"\\ud800\"",
        "true",
        "-0",
        "\"req_id\"",
        "\"orderbook.1.\"",
    ];
    match rng.random_range(0..4) {
        0 => (0..rng.random_range(1..30)).map(|_| pieces[rng.random_range(0..pieces.len())]).collect(),
        1 => format!(
            r#"{{"op":"{}","args":[{}]}}"#,
            ["subscribe", "unsubscribe", "auth", "ping", "x", ""][rng.random_range(0..6)],
            rng.random_range(0..1_000_000)
        ),
        2 => format!(
            r#"{{"op":"subscribe","args":["{}"]}}"#,
            ["orderbook.50.BTCUSDT", "kline.2.X", "tickers.", "publicTrade.SOLUSDT", "orderbook.1000.ETHUSDT"]
                [rng.random_range(0..5)]
        ),
        _ => (0..rng.random_range(0..200)).map(|_| char::from(rng.random_range(32u8..127))).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_errors_and_everyone_else_is_served() {
    let (venue, config) = venue(10.0).await;
    // A bystander keeps a book subscription through everything.
    let mut bystander = connect(&venue.public_url()).await;
    send(&mut bystander, r#"{"op":"subscribe","args":["orderbook.1.SOLUSDT"]}"#).await;
    next_op(&mut bystander, "subscribe").await;

    // Malformed JSON and unknown ops get Bybit-shaped errors on the same connection.
    let mut ws = connect(&venue.public_url()).await;
    for (frame, expected) in [
        ("{not json", "error:request is not valid JSON"),
        (r#"{"op":"dance","args":[]}"#, "error:handler not found,op:dance"),
        (r#"{"op":"subscribe","args":[42]}"#, "error:args must be topic strings"),
        (r#"{"op":"subscribe","args":["nope"]}"#, "error:handler not found,topic:nope"),
    ] {
        send(&mut ws, frame).await;
        let reply = next_json(&mut ws, 5 * SECOND).await.expect("open");
        assert_eq!(reply["success"], false);
        assert!(reply["ret_msg"].as_str().unwrap().starts_with(expected), "{frame} -> {reply}");
    }
    // A frame over 1 MB closes the connection with a reason.
    let big = format!(r#"{{"op":"ping","req_id":"{}"}}"#, "x".repeat(1_100_000));
    let _ = futures_util::SinkExt::send(&mut ws, Message::text(big)).await;
    let mut reason = None;
    while let Ok(Some(message)) = tokio::time::timeout(5 * SECOND, ws.next()).await {
        match message {
            Ok(Message::Close(frame)) => {
                reason = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(reason.map(|r| r.0), Some(1009), "closed with 'message too big'");

    // A thousand fuzzed frames over a few connections: each answered or closed with a reason, never a hang.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let mut answered = 0;
    let mut closed = 0;
    let mut ws = connect(&venue.public_url()).await;
    for _ in 0..1_000 {
        let frame = fuzz_frame(&mut rng);
        if futures_util::SinkExt::send(&mut ws, Message::text(frame)).await.is_err() {
            closed += 1;
            ws = connect(&venue.public_url()).await;
            continue;
        }
        // Every frame gets exactly one op reply; data of topics it subscribed may come in between.
        loop {
            match next_json(&mut ws, 5 * SECOND).await {
                Some(reply) if reply.get("op").is_some() => {
                    answered += 1;
                    break;
                }
                Some(_) => {}
                None => {
                    closed += 1;
                    ws = connect(&venue.public_url()).await;
                    break;
                }
            }
        }
    }
    assert_eq!(answered + closed, 1_000);

    // A thousand fuzzed REST requests: each a Bybit envelope (or HTTP's own 4xx for broken HTTP), never a hang.
    let alice = &config.accounts[0];
    let paths =
        ["/v5/order/create", "/v5/order/cancel", "/v5/order/amend", "/v5/position/trading-stop", "/v5/market/kline"];
    for i in 0..1_000 {
        let path = paths[rng.random_range(0..paths.len())];
        let body = fuzz_frame(&mut rng);
        let reply = match i % 4 {
            0 => signed_post(&venue, alice, path, &body).await,
            1 => post_with(&venue, path, &signed_headers(alice, now_ms() - 60_000, 5000, &body), &body).await,
            2 => get(&venue, path, &body.replace(' ', "%20")).await,
            // Not HTTP at all (ended like a request, or the server would rightly wait for the rest).
            _ => raw(&venue, format!("{body}\r\n\r\n").as_bytes()).await.unwrap_or(HttpResponse {
                status: 400,
                headers: vec![],
                body: Value::Null,
            }),
        };
        let envelope = reply.body.get("retCode").is_some() && reply.body.get("retMsg").is_some();
        assert!(
            envelope || (400..500).contains(&reply.status),
            "request {i} to {path}: {} {:?}",
            reply.status,
            reply.body
        );
        assert!(reply.status != 500, "no server error");
    }
    // Still serving: the bystander's stream flows and REST answers.
    let mut flowing = 0;
    while flowing < 3 {
        let message = next_json(&mut bystander, 5 * SECOND).await.expect("the bystander is still connected");
        flowing += usize::from(message["topic"] == "orderbook.1.SOLUSDT");
    }
    assert_eq!(signed_get(&venue, alice, "/v5/position/list", "category=linear&symbol=BTCUSDT").await.code(), 0);
    venue.stop().await;
}
