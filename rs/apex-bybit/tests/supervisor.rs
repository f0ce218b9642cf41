//! The WebSocket supervisors against a scripted mock server: book sequencing (gap, duplicate, `u`=1 rebase, deltas
//! before the snapshot), resubscription exactly once per topic, batch rejections, silence and disconnects, and the
//! private stream's auth, topics and re-auth.

mod mock;

use std::sync::Arc;
use std::time::Duration;

use apex_book::{L2Book, Level, UpdateKind};
use apex_bybit::client::clock::{ClockSync, ManualClock};
use apex_bybit::client::private::{PrivateConfig, PrivateEvent, PrivateFeed};
use apex_bybit::client::public::{BookSnapshot, BookSpec, BookView, PublicConfig, PublicEvent, PublicFeed};
use apex_bybit::client::ws::Timing;
use apex_bybit::rest::protection::DcpProduct;
use apex_bybit::sign::{Credentials, verify, ws_auth_prehash};
use apex_core::{Scale, Side};
use mock::{MockConn, WAIT, WsMock, book_message, topics};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const BOOK: &str = "orderbook.50.BTCUSDT";

fn timing() -> Timing {
    Timing {
        ping_interval: Duration::from_secs(5),
        silence_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        reply_timeout: Duration::from_secs(3),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        healthy_after: Duration::from_secs(60),
    }
}

fn spec(symbol: &str, depth: u32) -> BookSpec {
    BookSpec { symbol: symbol.into(), depth, price_scale: Scale::new(2).unwrap(), qty_scale: Scale::new(3).unwrap() }
}

fn public_config(url: &str) -> PublicConfig {
    let mut config = PublicConfig::new(url);
    config.books = vec![spec("BTCUSDT", 50)];
    config.trades = vec!["BTCUSDT".into()];
    config.timing = timing();
    config
}

async fn wait_book(view: &mut BookView, what: &str, pred: impl Fn(&BookSnapshot) -> bool) -> BookSnapshot {
    let result = tokio::time::timeout(WAIT, view.wait_for(|b| pred(b))).await.map(|r| (*r.unwrap()).clone());
    result.unwrap_or_else(|_| panic!("book never reached: {what}; last {:?}", view.snapshot()))
}

async fn next_event<E: std::fmt::Debug>(events: &mut mpsc::Receiver<E>, what: &str, pred: impl Fn(&E) -> bool) -> E {
    let wait = async {
        loop {
            let event = events.recv().await.expect("the feed runs");
            if pred(&event) {
                return event;
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.unwrap_or_else(|_| panic!("no event: {what}"))
}

#[tokio::test]
async fn snapshot_deltas_gap_resubscribe() {
    let mut mock = WsMock::start("/v5/public/linear").await;
    let mut feed = PublicFeed::start(public_config(&mock.url), 1024).unwrap();
    let mut events = feed.take_events().unwrap();
    let mut book = feed.book("BTCUSDT").unwrap();
    let mut conn = mock.accept().await;
    assert_eq!(conn.ack_subscribe().await, [BOOK, "publicTrade.BTCUSDT"]);

    // A delta before any snapshot is dropped; the snapshot syncs the book.
    conn.send(&book_message(BOOK, "delta", 99, &[("1.00", "9.000")], &[])).await;
    conn.send(&book_message(BOOK, "snapshot", 100, &[("100.00", "1.000"), ("99.50", "2.000")], &[("100.50", "1.500")]))
        .await;
    let snap = wait_book(&mut book, "synced at 100", |b| b.synced && b.update_id == 100).await;
    assert_eq!(snap.bids, [Level::new(10_000, 1_000), Level::new(9_950, 2_000)]);
    assert!(feed.is_synced("BTCUSDT"));

    conn.send(&book_message(BOOK, "delta", 101, &[("100.00", "0")], &[("100.25", "0.100")])).await;
    let snap = wait_book(&mut book, "delta 101", |b| b.update_id == 101).await;
    assert_eq!((snap.bids[0], snap.asks[0]), (Level::new(9_950, 2_000), Level::new(10_025, 100)));
    assert_eq!(snap.cts, Some(1_700_000_000_100));

    // A gap: unsynced at once, then exactly one unsubscribe + subscribe of the book's topic.
    conn.send(&book_message(BOOK, "delta", 103, &[("99.00", "1.000")], &[])).await;
    let event = next_event(&mut events, "resync", |e| matches!(e, PublicEvent::BookResync { .. })).await;
    assert!(
        matches!(&event, PublicEvent::BookResync { symbol, reason } if symbol == "BTCUSDT" && reason.contains("gap"))
    );
    wait_book(&mut book, "unsynced", |b| !b.synced).await;
    assert!(!feed.is_synced("BTCUSDT"));
    let unsubscribe = conn.recv_op().await;
    assert_eq!((unsubscribe["op"].as_str(), topics(&unsubscribe)), (Some("unsubscribe"), vec![BOOK.to_owned()]));
    conn.ack(&unsubscribe, true, "").await;
    assert_eq!(conn.ack_subscribe().await, [BOOK]);
    // Deltas while waiting are refused, and a second gap sends nothing more.
    conn.send(&book_message(BOOK, "delta", 104, &[("98.00", "1.000")], &[])).await;
    conn.send(&book_message(BOOK, "snapshot", 200, &[("101.00", "3.000")], &[("101.50", "4.000")])).await;
    let event = next_event(&mut events, "synced", |e| matches!(e, PublicEvent::BookSynced { .. })).await;
    assert_eq!(event, PublicEvent::BookSynced { symbol: "BTCUSDT".into(), update_id: 200, rebased: false });
    let snap = wait_book(&mut book, "synced at 200", |b| b.synced && b.update_id == 200).await;
    assert_eq!((snap.bids.len(), snap.asks.len()), (1, 1));
    let stats = feed.stats();
    assert_eq!((stats.gaps, stats.resyncs, stats.topics_subscribed), (1, 1, 3));

    // Trades are forwarded.
    let trade = json!({"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[
        {"T":1,"s":"BTCUSDT","S":"Sell","v":"0.010","p":"101.00","L":"MinusTick","i":"t-1","BT":false}]});
    conn.send(&trade).await;
    let event = next_event(&mut events, "trade", |e| matches!(e, PublicEvent::Trades { .. })).await;
    let PublicEvent::Trades { message, .. } = event else { unreachable!() };
    assert_eq!(message.data[0].i, "t-1");
    feed.shutdown().await;
}

#[tokio::test]
async fn duplicate_delta_is_a_gap_and_u1_snapshot_rebases() {
    let mut mock = WsMock::start("/v5/public/linear").await;
    let mut feed = PublicFeed::start(public_config(&mock.url), 1024).unwrap();
    let mut events = feed.take_events().unwrap();
    let mut book = feed.book("BTCUSDT").unwrap();
    let mut conn = mock.accept().await;
    conn.ack_subscribe().await;
    conn.send(&book_message(BOOK, "snapshot", 500, &[("100.00", "1.000")], &[("100.50", "1.000")])).await;
    conn.send(&book_message(BOOK, "delta", 501, &[("100.00", "2.000")], &[])).await;
    wait_book(&mut book, "501", |b| b.update_id == 501).await;
    // The same delta again: not the successor of 501, so a gap (apex-book's rule, as nautilus').
    conn.send(&book_message(BOOK, "delta", 501, &[("100.00", "2.000")], &[])).await;
    next_event(&mut events, "resync on duplicate", |e| matches!(e, PublicEvent::BookResync { .. })).await;
    let unsubscribe = conn.recv_op().await;
    conn.ack(&unsubscribe, true, "").await;
    conn.ack_subscribe().await;
    conn.send(&book_message(BOOK, "snapshot", 505, &[("100.00", "2.000")], &[("100.50", "1.000")])).await;
    wait_book(&mut book, "505", |b| b.synced && b.update_id == 505).await;

    // A service restart: a u=1 snapshot replaces the book (rebase) and deltas continue from 1.
    conn.send(&book_message(BOOK, "snapshot", 1, &[("90.00", "5.000")], &[("90.50", "6.000")])).await;
    let event = next_event(&mut events, "rebase", |e| matches!(e, PublicEvent::BookSynced { rebased: true, .. })).await;
    assert_eq!(event, PublicEvent::BookSynced { symbol: "BTCUSDT".into(), update_id: 1, rebased: true });
    conn.send(&book_message(BOOK, "delta", 2, &[("89.00", "1.000")], &[])).await;
    let snap = wait_book(&mut book, "2", |b| b.update_id == 2).await;
    assert!(snap.synced);
    assert_eq!(snap.bids, [Level::new(9_000, 5_000), Level::new(8_900, 1_000)]);
    assert_eq!(snap.asks, [Level::new(9_050, 6_000)]);
    // The published checksum equals apex-book's on the same levels.
    let mut reference = L2Book::new(Scale::new(2).unwrap(), Scale::new(3).unwrap());
    reference.apply(UpdateKind::Snapshot, 2, 0, 0, &snap.bids, &snap.asks).unwrap();
    assert_eq!(snap.checksum(50), reference.checksum(50));
    assert_eq!(reference.best(Side::Buy), Some(Level::new(9_000, 5_000)));
    assert_eq!(feed.stats().gaps, 1);
    feed.shutdown().await;
}

/// Collects subscribe requests (acknowledging them) until `want` topics were asked for; returns every topic asked.
async fn collect_subscribes(conn: &mut MockConn, want: usize) -> Vec<String> {
    let mut asked = Vec::new();
    while asked.len() < want {
        asked.extend(conn.ack_subscribe().await);
    }
    asked
}

#[tokio::test]
async fn reconnect_resubscribes_each_topic_exactly_once() {
    let mut mock = WsMock::start("/v5/public/linear").await;
    let mut config = public_config(&mock.url);
    config.books = vec![spec("BTCUSDT", 50), spec("ETHUSDT", 200), spec("SOLUSDT", 1)];
    config.tickers = vec!["BTCUSDT".into()];
    config.batch_size = 2;
    let mut feed = PublicFeed::start(config, 1024).unwrap();
    let mut events = feed.take_events().unwrap();
    let mut eth = feed.book("ETHUSDT").unwrap();
    let mut conn = mock.accept().await;
    let mut first = collect_subscribes(&mut conn, 5).await;
    first.sort();
    let expected = [
        "orderbook.1.SOLUSDT",
        "orderbook.200.ETHUSDT",
        "orderbook.50.BTCUSDT",
        "publicTrade.BTCUSDT",
        "tickers.BTCUSDT",
    ];
    assert_eq!(first, expected);
    conn.send(&book_message("orderbook.200.ETHUSDT", "snapshot", 7, &[("10.00", "1.000")], &[("10.10", "1.000")]))
        .await;
    wait_book(&mut eth, "eth synced", |b| b.synced).await;

    conn.close().await;
    next_event(&mut events, "disconnect", |e| matches!(e, PublicEvent::Disconnected { .. })).await;
    wait_book(&mut eth, "eth unsynced after the disconnect", |b| !b.synced).await;
    let mut conn = mock.accept().await;
    let mut second = collect_subscribes(&mut conn, 5).await;
    second.sort();
    assert_eq!(second, expected, "each topic exactly once after the reconnect");
    // A delta of the new connection before its snapshot is not applied to the old book.
    conn.send(&book_message("orderbook.200.ETHUSDT", "delta", 8, &[("10.00", "0")], &[])).await;
    conn.send(&book_message("orderbook.200.ETHUSDT", "snapshot", 3, &[("11.00", "1.000")], &[("11.10", "1.000")]))
        .await;
    let snap = wait_book(&mut eth, "eth synced on the new connection", |b| b.synced).await;
    assert_eq!((snap.update_id, snap.bids[0]), (3, Level::new(1_100, 1_000)));
    assert!(mock.no_connection_within(Duration::from_millis(200)).await);
    assert_eq!(
        *feed.status().borrow(),
        apex_bybit::client::ws::LinkStatus {
            up: true,
            connections: 2,
            last_error: Some("closed by the server".into()),
            events_dropped: 0,
        }
    );
    assert_eq!(feed.stats().topics_subscribed, 10);
    feed.shutdown().await;
}

#[tokio::test]
async fn rejected_batches_resend_only_the_other_topics() {
    let mut mock = WsMock::start("/v5/public/linear").await;
    let mut config = public_config(&mock.url);
    config.books = vec![spec("BTCUSDT", 50), spec("ETHUSDT", 1000)];
    config.trades = vec![];
    config.tickers = vec!["BTCUSDT".into()];
    config.batch_size = 3;
    let mut feed = PublicFeed::start(config, 1024).unwrap();
    let mut events = feed.take_events().unwrap();
    let mut conn = mock.accept().await;
    let request = conn.recv_op().await;
    assert_eq!(topics(&request), ["orderbook.50.BTCUSDT", "orderbook.1000.ETHUSDT", "tickers.BTCUSDT"]);
    // Bybit rejects the whole batch when one topic is already subscribed.
    conn.ack(&request, false, "error:already subscribed,topic:orderbook.50.BTCUSDT").await;
    let request = conn.recv_op().await;
    assert_eq!(topics(&request), ["orderbook.1000.ETHUSDT", "tickers.BTCUSDT"]);
    // An unknown topic: reported, dropped; the rest is sent again.
    conn.ack(&request, false, "error:handler not found,topic:orderbook.1000.ETHUSDT").await;
    let request = conn.recv_op().await;
    assert_eq!(topics(&request), ["tickers.BTCUSDT"]);
    conn.ack(&request, true, "").await;
    let event = next_event(&mut events, "failed topic", |e| matches!(e, PublicEvent::SubscribeFailed { .. })).await;
    assert!(matches!(&event, PublicEvent::SubscribeFailed { topic, .. } if topic == "orderbook.1000.ETHUSDT"));

    // Ticker deltas merge into the snapshot.
    conn.send(&json!({"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","lastPrice":"100.00","bid1Price":"99.90"},"cs":1,"ts":1})).await;
    conn.send(&json!({"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","bid1Price":"99.95"},"cs":2,"ts":2})).await;
    let event = next_event(
        &mut events,
        "merged ticker",
        |e| matches!(e, PublicEvent::Ticker(t) if t.bid1_price.as_ref().is_some_and(|p| p.as_str() == "99.95")),
    )
    .await;
    let PublicEvent::Ticker(ticker) = event else { unreachable!() };
    assert_eq!(ticker.last_price.as_ref().map(|p| p.as_str()), Some("100.00"));

    // After a reconnect the refused topic is not asked for again; the already-subscribed one is.
    conn.close().await;
    let mut conn = mock.accept().await;
    let mut asked = collect_subscribes(&mut conn, 2).await;
    asked.sort();
    assert_eq!(asked, ["orderbook.50.BTCUSDT", "tickers.BTCUSDT"]);
    feed.shutdown().await;
}

#[tokio::test]
async fn silent_stream_is_dead_and_pongs_keep_it_alive() {
    let mut mock = WsMock::start("/v5/public/linear").await;
    let mut config = public_config(&mock.url);
    config.timing.ping_interval = Duration::from_millis(100);
    config.timing.silence_timeout = Duration::from_millis(400);
    let mut feed = PublicFeed::start(config, 1024).unwrap();
    let mut events = feed.take_events().unwrap();
    let mut book = feed.book("BTCUSDT").unwrap();

    // Answered pings: the link stays up well past the silence timeout.
    let mut conn = mock.accept().await;
    conn.ack_subscribe().await;
    conn.send(&book_message(BOOK, "snapshot", 10, &[("1.00", "1.000")], &[("1.10", "1.000")])).await;
    wait_book(&mut book, "synced", |b| b.synced).await;
    let started = tokio::time::Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1200) {
        let frame = conn.recv().await.expect("open");
        assert_eq!(frame["op"], "ping", "{frame}");
        assert!(frame["req_id"].is_string());
        pings += 1;
        conn.send(&json!({"success":true,"ret_msg":"pong","conn_id":"m","req_id":frame["req_id"],"op":"ping"})).await;
    }
    assert!(pings >= 8, "{pings} pings in 1.2 s at 100 ms");
    assert!(feed.is_synced("BTCUSDT"));

    // Unanswered pings: after 400 ms of silence the client drops the link and reconnects.
    let silent_from = tokio::time::Instant::now();
    conn.wait_closed().await;
    let silent_for = silent_from.elapsed();
    assert!(silent_for >= Duration::from_millis(350) && silent_for < Duration::from_secs(3), "{silent_for:?}");
    let event = next_event(&mut events, "silence", |e| matches!(e, PublicEvent::Disconnected { .. })).await;
    assert_eq!(event, PublicEvent::Disconnected { reason: "silent for 400 ms".into() });
    assert!(!feed.is_synced("BTCUSDT"));
    let mut conn = mock.accept().await;
    conn.ack_subscribe().await;
    feed.shutdown().await;
}

#[tokio::test]
async fn a_consumer_that_does_not_read_events_never_stalls_the_books() {
    let mut mock = WsMock::start("/v5/public/linear").await;
    // Room for one event, and nobody reads them.
    let feed = PublicFeed::start(public_config(&mock.url), 1).unwrap();
    let mut book = feed.book("BTCUSDT").unwrap();
    let mut conn = mock.accept().await;
    conn.ack_subscribe().await;
    conn.send(&book_message(BOOK, "snapshot", 1, &[("1.00", "1.000")], &[("2.00", "1.000")])).await;
    for u in 2..=50 {
        let trade = json!({"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":u,"data":[
            {"T":u,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"2.00","i":format!("t{u}"),"BT":false}]});
        conn.send(&trade).await;
        conn.send(&book_message(BOOK, "delta", u, &[("1.00", &format!("{u}.000"))], &[])).await;
    }
    let snap = wait_book(&mut book, "all deltas applied", |b| b.update_id == 50).await;
    assert_eq!((snap.synced, snap.bids[0]), (true, Level::new(100, 50_000)));
    let dropped = feed.status().borrow().events_dropped;
    assert!(dropped >= 48, "{dropped} events dropped");
    feed.shutdown().await;
}

#[tokio::test]
async fn a_consumer_on_the_same_thread_sees_each_frame_before_the_next_is_parsed() {
    // One thread runs the supervisor and the consumer (as in apex-nexus): a burst of frames already in the socket
    // must not all be parsed before the consumer sees the first, or the first waits for the whole burst.
    let mut mock = WsMock::start("/v5/public/linear").await;
    let mut feed = PublicFeed::start(public_config(&mock.url), 1024).unwrap();
    let mut events = feed.take_events().expect("events taken once");
    let mut conn = mock.accept().await;
    conn.ack_subscribe().await;
    let burst = 100;
    for u in 1..=burst {
        let trade = json!({"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":u,"data":[
            {"T":u,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"2.00","i":format!("t{u}"),"BT":false}]});
        conn.send(&trade).await;
    }
    let mut parsed_at = Vec::new();
    while parsed_at.len() < burst {
        next_event(&mut events, "a trade of the burst", |e| matches!(e, PublicEvent::Trades { .. })).await;
        parsed_at.push(feed.stats().messages);
    }
    // Frames parsed when the k-th trade is seen, less k: the subscribe reply, the trade itself and at most one
    // more. A supervisor that parsed the burst first would show the whole burst here.
    let ahead = parsed_at.iter().enumerate().map(|(k, &m)| m - k as u64).max().unwrap();
    assert!(ahead <= 3, "the supervisor ran ahead of its consumer: frames parsed at each trade {parsed_at:?}");
    feed.shutdown().await;
}

#[tokio::test]
async fn missing_snapshot_or_ack_drops_the_connection() {
    let mut mock = WsMock::start("/v5/public/linear").await;
    let mut config = public_config(&mock.url);
    config.timing.reply_timeout = Duration::from_millis(300);
    let feed = PublicFeed::start(config, 1024).unwrap();
    // Subscribed, but no snapshot ever comes.
    let mut conn = mock.accept().await;
    conn.ack_subscribe().await;
    conn.wait_closed().await;
    // No ack at all.
    let mut conn = mock.accept().await;
    let request = conn.recv_op().await;
    assert_eq!(request["op"], "subscribe");
    conn.wait_closed().await;
    let mut conn = mock.accept().await;
    conn.ack_subscribe().await;
    assert!(feed.status().borrow().last_error.as_deref().unwrap().starts_with("no answer to subscribe"));
    feed.shutdown().await;
}

#[tokio::test]
async fn config_refuses_topics_the_stream_does_not_serve() {
    let mut config = PublicConfig::new("ws://127.0.0.1:1/v5/public/linear");
    config.books = vec![spec("BTCUSDT", 500)];
    let error = PublicFeed::start(config, 16).err().unwrap().to_string();
    assert_eq!(error, "error:handler not found,topic:orderbook.500.BTCUSDT");
}

fn fixture(name: &str) -> Value {
    let path = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .join("../../tests/data/bybit/nautilus_fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn private_stream_auth_topics_and_reauth() {
    let mut mock = WsMock::start("/v5/private").await;
    let wall = Arc::new(ManualClock::new(1_700_000_000_000));
    let clock = Arc::new(ClockSync::new(wall));
    clock.observe(1_700_000_000_000, 1_700_000_000_500, 1_700_000_000_000);
    let mut config = PrivateConfig::new(&mock.url, Credentials::new("key-1", "secret-1"));
    config.timing = timing();
    let mut feed = PrivateFeed::start(config, clock, 1024).unwrap();
    let mut events = feed.take_events().unwrap();
    let mut up = feed.up();

    let mut conn = mock.accept().await;
    let auth = conn.recv_op().await;
    assert_eq!(auth["op"], "auth");
    let args = auth["args"].as_array().unwrap();
    let expires = args[1].as_i64().unwrap();
    // The expiry is 10 s ahead on the exchange's clock (local + 500 ms offset).
    assert_eq!(expires, 1_700_000_010_500);
    assert_eq!(args[0], "key-1");
    assert!(verify("secret-1", &ws_auth_prehash(expires), args[2].as_str().unwrap()));
    assert!(!feed.is_up());
    conn.send(&json!({"success":true,"ret_msg":"","op":"auth","conn_id":"c1"})).await;
    let subscribe = conn.recv_op().await;
    assert_eq!(topics(&subscribe), ["order", "execution", "position", "wallet"]);
    conn.send(&json!({"success":true,"ret_msg":"","op":"subscribe","conn_id":"c1","req_id":subscribe["req_id"]})).await;
    tokio::time::timeout(WAIT, up.wait_for(|u| *u)).await.unwrap().unwrap();
    next_event(&mut events, "up", |e| matches!(e, PrivateEvent::Up { connection: 1 })).await;

    conn.send(&fixture("ws_account_order_filled.json")).await;
    conn.send(&fixture("ws_account_execution.json")).await;
    conn.send(&fixture("ws_account_position.json")).await;
    conn.send(&fixture("ws_account_wallet.json")).await;
    let orders = next_event(&mut events, "orders", |e| matches!(e, PrivateEvent::Orders(_))).await;
    let PrivateEvent::Orders(orders) = orders else { unreachable!() };
    assert_eq!(orders[0].order_link_id, "test-client-order-001");
    next_event(
        &mut events,
        "executions",
        |e| matches!(e, PrivateEvent::Executions(x) if x[0].exec_qty.as_str() == "0.5"),
    )
    .await;
    next_event(&mut events, "positions", |e| matches!(e, PrivateEvent::Positions(_))).await;
    next_event(&mut events, "wallets", |e| matches!(e, PrivateEvent::Wallets(_))).await;

    // Lost connection: down at once, then a new auth and subscribe.
    conn.close().await;
    next_event(&mut events, "down", |e| matches!(e, PrivateEvent::Down { .. })).await;
    let mut conn = mock.accept().await;
    let auth = conn.recv_op().await;
    assert_eq!(auth["op"], "auth");
    // A refused auth: reported, connection dropped, tried again.
    conn.send(&json!({"success":false,"ret_msg":"Params Error","op":"auth","conn_id":"c2"})).await;
    let event = next_event(&mut events, "auth failed", |e| matches!(e, PrivateEvent::AuthFailed { .. })).await;
    assert_eq!(event, PrivateEvent::AuthFailed { message: "Params Error".into() });
    conn.wait_closed().await;
    let mut conn = mock.accept().await;
    assert_eq!(conn.recv_op().await["op"], "auth");
    conn.send(&json!({"op":"auth","success":true,"retCode":0,"retMsg":"","connId":"c3"})).await;
    let subscribe = conn.recv_op().await;
    conn.send(&json!({"success":true,"ret_msg":"","op":"subscribe","conn_id":"c3"})).await;
    assert_eq!(topics(&subscribe).len(), 4);
    next_event(&mut events, "up again", |e| matches!(e, PrivateEvent::Up { connection: 3 })).await;
    assert!(feed.is_up());
    feed.shutdown().await;
}

/// With disconnection protection the `dcp.*` topic goes in a subscribe of its own once the account topics are up;
/// a refusal (`handler not found`, an account without DCP) is reported and the stream stays up; a `dcp` push does
/// not upset the parser; every reconnect subscribes it again.
#[tokio::test]
async fn private_stream_subscribes_dcp_on_its_own_and_survives_a_refusal() {
    let mut mock = WsMock::start("/v5/private").await;
    let clock = Arc::new(ClockSync::new(Arc::new(ManualClock::new(1_700_000_000_000))));
    let mut config = PrivateConfig::new(&mock.url, Credentials::new("key-1", "secret-1"));
    config.timing = timing();
    config.protection = Some(DcpProduct::Derivatives);
    let mut feed = PrivateFeed::start(config, clock, 1024).unwrap();
    let mut events = feed.take_events().unwrap();

    let mut conn = mock.accept().await;
    assert_eq!(conn.recv_op().await["op"], "auth");
    conn.send(&json!({"success":true,"ret_msg":"","op":"auth","conn_id":"c1"})).await;
    assert_eq!(conn.ack_subscribe().await, ["order", "execution", "position", "wallet"]);
    next_event(&mut events, "up", |e| matches!(e, PrivateEvent::Up { connection: 1 })).await;
    let dcp = conn.recv_op().await;
    assert_eq!((dcp["op"].as_str(), topics(&dcp)), (Some("subscribe"), vec!["dcp.future".to_owned()]));
    // Bybit's refusal, without a req_id.
    conn.send(
        &json!({"success":false,"ret_msg":"error:handler not found,topic:dcp.future","conn_id":"c1","op":"subscribe"}),
    )
    .await;
    let refused = next_event(&mut events, "refused", |e| matches!(e, PrivateEvent::Protection { .. })).await;
    assert_eq!(
        refused,
        PrivateEvent::Protection {
            connection: 1,
            topic: "dcp.future".into(),
            refused: Some("error:handler not found,topic:dcp.future".into())
        }
    );
    assert!(feed.is_up());
    conn.send(
        &json!({"topic":"dcp.future","creationTime":1_700_000_000_000_i64,"data":[{"dcpStatus":"ON","timeWindow":10}]}),
    )
    .await;
    conn.send(&fixture("ws_account_order_filled.json")).await;
    next_event(&mut events, "orders after a dcp push", |e| matches!(e, PrivateEvent::Orders(_))).await;
    assert!(feed.is_up());

    conn.close().await;
    let mut conn = mock.accept().await;
    assert_eq!(conn.recv_op().await["op"], "auth");
    conn.send(&json!({"success":true,"ret_msg":"","op":"auth","conn_id":"c2"})).await;
    conn.ack_subscribe().await;
    assert_eq!(conn.ack_subscribe().await, ["dcp.future"]);
    let accepted = next_event(&mut events, "accepted", |e| matches!(e, PrivateEvent::Protection { .. })).await;
    assert_eq!(accepted, PrivateEvent::Protection { connection: 2, topic: "dcp.future".into(), refused: None });
    feed.shutdown().await;
}

/// With tokio's clock paused, the reconnect schedule is exactly the seeded backoff: each failed connection waits
/// the next jittered delay, doubling up to the cap.
#[tokio::test(start_paused = true)]
async fn reconnects_follow_the_jittered_exponential_backoff() {
    use apex_bybit::client::backoff::Backoff;
    // A server that accepts TCP and hangs up at once: every WebSocket handshake fails.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v5/public/linear", listener.local_addr().unwrap());
    let mut config = public_config(&url);
    config.timing.backoff_base = Duration::from_millis(500);
    config.timing.backoff_max = Duration::from_secs(8);
    config.seed = 42;
    let feed = PublicFeed::start(config.clone(), 16).unwrap();
    let mut accepted = Vec::new();
    for _ in 0..8 {
        let (stream, _) = listener.accept().await.unwrap();
        accepted.push(tokio::time::Instant::now());
        drop(stream);
    }
    let mut expected = Backoff::new(config.timing.backoff_base, config.timing.backoff_max, 42);
    for pair in accepted.windows(2) {
        let gap = pair[1] - pair[0];
        let delay = expected.next_delay();
        let diff = gap.abs_diff(delay);
        assert!(diff < Duration::from_millis(5), "gap {gap:?}, backoff {delay:?}");
    }
    assert_eq!(expected.ceiling(), Duration::from_secs(8), "the schedule reached its cap");
    assert!(feed.status().borrow().last_error.as_deref().is_some_and(|e| e.starts_with("connect:")));
    feed.shutdown().await;
}
