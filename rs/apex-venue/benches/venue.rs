//! Venue benchmarks, each beside a baseline measured in the same run:
//! - public fan-out: messages per second delivered over loopback WebSockets to 6 subscribers, each message serialized
//!   once and shared (the venue's path), against the same path serializing each message once per subscriber;
//! - REST order round trip (a signed `/v5/order/create`, checked and acknowledged): p50/p99 on loopback, against a
//!   bare axum handler echoing the same body.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apex_bybit::sign::rest_signature;
use apex_bybit::{MessageKind, PublicTrade, PublicTradeMessage, TakerSide};
use apex_venue::{AccountSpec, Venue, VenueConfig};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const SUBSCRIBERS: usize = 6;
const ACCOUNTS: usize = 40;

fn trade_message(i: u64) -> PublicTradeMessage<'static> {
    PublicTradeMessage {
        topic: "publicTrade.BTCUSDT".into(),
        kind: MessageKind::Snapshot,
        ts: 1_700_000_000_000 + i as i64,
        data: vec![PublicTrade {
            T: 1_700_000_000_000 + i as i64,
            s: "BTCUSDT".into(),
            S: if i.is_multiple_of(2) { TakerSide::Buy } else { TakerSide::Sell },
            v: "0.013".into(),
            p: format!("108{:03}.5", i % 1000).into(),
            L: Some("PlusTick".into()),
            i: format!("2a74ac78-691c-5b54-9dbe-{i:012x}").into(),
            BT: Some(false),
            RPI: Some(false),
            seq: Some(457_514_743_450 + i as i64),
        }],
    }
}

/// Messages per second each of the subscribers received, sending `total` messages in bursts; `copies` is how many
/// times each message is serialized (1: shared bytes; SUBSCRIBERS: once per subscriber).
async fn fanout(venue: &Venue, received: &[Arc<AtomicU64>], total: u64, copies: usize) -> f64 {
    let start_counts: Vec<u64> = received.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let burst = 2_000;
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        for _ in 0..burst {
            let message = trade_message(sent);
            let mut text = String::new();
            for _ in 0..copies {
                text = serde_json::to_string(&message).expect("serializes");
            }
            let _ = venue.publish_raw("publicTrade.BTCUSDT", text);
            sent += 1;
        }
        // Closed loop: the next burst waits for every subscriber to have this one (no message is lost to lag).
        loop {
            let behind = received.iter().zip(&start_counts).any(|(c, s)| c.load(Ordering::Relaxed) - s < sent);
            if !behind {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn fanout_bench() {
    let mut config = VenueConfig::new(vec![AccountSpec::generate("bench")]);
    // Nearly idle market: the load is the benchmark's messages.
    config.speed = 0.001;
    let venue = Venue::start(config).await.expect("venue");
    let mut counters = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let (mut ws, _) = tokio_tungstenite::connect_async(venue.public_url()).await.expect("connect");
        ws.send(Message::text(r#"{"op":"subscribe","args":["publicTrade.BTCUSDT"]}"#)).await.expect("subscribe");
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message
                    && text.as_str().starts_with(r#"{"topic""#)
                {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        counters.push(count);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let total = 60_000;
    fanout(&venue, &counters, 2_000, 1).await; // warm-up
    let shared = fanout(&venue, &counters, total, 1).await;
    let per_subscriber = fanout(&venue, &counters, total, SUBSCRIBERS).await;
    println!(
        "venue fan-out to {SUBSCRIBERS} WebSocket subscribers ({total} publicTrade messages): serialized once {shared:>10.0} msg/s \
         ({:.0} deliveries/s); serialized per subscriber {per_subscriber:>10.0} msg/s; ratio {:.2}x",
        shared * SUBSCRIBERS as f64,
        shared / per_subscriber
    );
    venue.stop().await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "p50 {:>6.0} us  p99 {:>6.0} us  max {:>6.0} us",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)
    )
}

async fn round_trip_bench() {
    let accounts: Vec<AccountSpec> = (0..ACCOUNTS).map(|i| AccountSpec::generate(&format!("bench-{i}"))).collect();
    let venue = Venue::start(VenueConfig::new(accounts.clone())).await.expect("venue");
    let client = reqwest::Client::new();
    let url = format!("{}/v5/order/create", venue.rest_url());
    let n = 2_000;
    // Per key 10 creates/s: 40 keys in turn allow one create every 2.5 ms.
    let pace = Duration::from_micros(2_600);
    let mut samples = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    for i in 0..n {
        let account = &accounts[i % ACCOUNTS];
        let body = format!(
            r#"{{"category":"linear","symbol":"SOLUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"{}.000","timeInForce":"PostOnly","orderLinkId":"bench-{i}"}}"#,
            100 + i % 50
        );
        bodies.push(body.clone());
        let next = Instant::now() + pace;
        let timestamp = apex_venue::clock::wall_ms();
        let sign = rest_signature(&account.api_secret, &account.api_key, timestamp, 5000, &body);
        let started = Instant::now();
        let response = client
            .post(&url)
            .header("X-BAPI-API-KEY", &account.api_key)
            .header("X-BAPI-TIMESTAMP", timestamp.to_string())
            .header("X-BAPI-RECV-WINDOW", "5000")
            .header("X-BAPI-SIGN", sign)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("answered");
        let text = response.text().await.expect("body");
        samples.push(started.elapsed());
        assert!(text.contains(r#""retCode":0"#), "create {i} refused: {text}");
        tokio::time::sleep_until(next.into()).await;
    }
    venue.stop().await;

    // Baseline: a bare axum handler on loopback echoing the body, same client and bodies.
    let app = axum::Router::new().route("/echo", axum::routing::post(|body: String| async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let echo_url = format!("http://{address}/echo");
    let mut echo = Vec::with_capacity(n);
    for body in bodies {
        let started = Instant::now();
        let text = client.post(&echo_url).body(body).send().await.expect("echo").text().await.expect("body");
        echo.push(started.elapsed());
        assert!(text.starts_with('{'));
        tokio::time::sleep(pace).await;
    }
    server.abort();
    println!("venue REST order round trip ({n} signed creates, loopback): {}", summary(samples));
    println!("bare axum echo handler round trip ({n} requests, loopback):    {}", summary(echo));
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        fanout_bench().await;
        round_trip_bench().await;
    });
}
