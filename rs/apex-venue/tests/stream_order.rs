//! One symbol's trades and book messages reach a subscriber in exchange-time order, even at 60x speed where one
//! tick of the simulation spans hundreds of simulated milliseconds: the engine's reorder window is then never needed
//! on the local venue, however loaded the machine is; the `trade_lag` fault puts the skew back on purpose.

mod common;

use std::time::Duration;

use apex_venue::Venue;
use apex_venue::faults::Lag;
use common::*;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_and_book_messages_arrive_in_exchange_time_order() {
    let (venue, _) = venue(60.0).await;
    let mut ws = connect(&venue.public_url()).await;
    send(&mut ws, r#"{"op":"subscribe","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["success"], true);
    let (mut trades, mut deltas, mut last) = (0, 0, i64::MIN);
    let deadline = Instant::now() + Duration::from_secs(20);
    while trades < 300 || deltas < 300 {
        assert!(Instant::now() < deadline, "20 s gave {trades} trades and {deltas} book deltas");
        let message = next_json(&mut ws, Duration::from_secs(10)).await.expect("socket open");
        let topic = message["topic"].as_str().unwrap_or_default();
        let times: Vec<i64> = if topic.starts_with("publicTrade") {
            let rows = message["data"].as_array().expect("trade rows");
            trades += rows.len();
            rows.iter().map(|t| t["T"].as_i64().expect("T")).collect()
        } else if topic.starts_with("orderbook") && message["type"] == "delta" {
            // The subscription's first snapshot is the book as it stands when the subscription lands, outside the
            // stream's order; deltas are the stream.
            deltas += 1;
            vec![message["ts"].as_i64().expect("ts")]
        } else {
            continue;
        };
        for ts in times {
            assert!(ts >= last, "{topic} at {ts} ms came after an event at {last} ms");
            last = ts;
        }
    }
    venue.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trade_lag_fault_holds_trades_behind_the_book_stream() {
    let temp = tempfile::Builder::new().prefix("apex-venue-trade-lag-").tempdir().unwrap();
    let log = temp.path().join("faults.jsonl");
    let mut config = logged_config(&["alice"], 60.0, 5, &log);
    config.faults.trade_lag = Some(Lag { delay_ms: 300 });
    let venue = Venue::start(config).await.expect("venue starts");
    let mut ws = connect(&venue.public_url()).await;
    send(&mut ws, r#"{"op":"subscribe","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["success"], true);
    let (mut book_ts, mut trades) = (None, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while trades < 100 {
        assert!(Instant::now() < deadline, "20 s gave {trades} trades");
        let message = next_json(&mut ws, Duration::from_secs(10)).await.expect("socket open");
        let topic = message["topic"].as_str().unwrap_or_default();
        if topic.starts_with("orderbook") && message["type"] == "delta" {
            book_ts = message["ts"].as_i64();
        } else if let (true, Some(book)) = (topic.starts_with("publicTrade"), book_ts) {
            // 300 ms of wall time is 18 s of the venue's time at 60x; half of it allows for a slow machine.
            for trade in message["data"].as_array().expect("trade rows") {
                let behind = book - trade["T"].as_i64().expect("T");
                assert!(behind >= 9_000, "a trade came {behind} ms behind the book stream");
                trades += 1;
            }
        }
    }
    let lines = std::fs::read_to_string(&log).unwrap();
    let logged: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(logged.iter().any(|f| f["fault"] == "trade_lag" && f["delay_ms"] == 300), "{lines}");
    venue.stop().await;
}
