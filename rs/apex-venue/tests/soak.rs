//! Soak: the venue binary runs an accelerated market with every fault enabled while a client (apex-bybit's REST
//! client and public/private supervisors, what the live engine uses) trades against it. At every resync point and
//! before every order, the client's rebuilt book must equal the venue's at the same `u` (CRC-32 of the top 50
//! levels): 0 divergences; no order is sent while a book is unsynced; the venue's memory stays bounded.
//!
//! `SOAK_SECONDS` sets the length (CI: 30 s; `just soak` runs 600).

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apex_bybit::client::ClientError;
use apex_bybit::client::clock::{ClockSync, SystemClock};
use apex_bybit::client::private::{PrivateConfig, PrivateFeed};
use apex_bybit::client::public::{BookSpec, PublicConfig, PublicEvent, PublicFeed};
use apex_bybit::client::rest::{RestClient, RestConfig};
use apex_bybit::client::target::{Target, VenueReady};
use apex_bybit::client::ws::Timing;
use apex_bybit::rest::market::InstrumentsInfoRequest;
use apex_bybit::rest::order::CreateOrderRequest;
use apex_bybit::{Category, Dec, InstrumentStatus, TimeInForce};
use apex_core::Side;
use serde_json::Value;

const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];
/// Every fault, often: a 30-second run sees each kind several times.
const FAULTS: &str = r#"
seed = 42
[drop]
probability = 0.004
[skip]
every_s = 3.0
[duplicate]
probability = 0.004
[disconnect]
every_s = 5.0
[restart]
every_s = 7.0
[latency_spike]
every_s = 4.0
duration_ms = 250
[reject]
probability = 0.1
ret_code = 10016
[rate_limit_burst]
every_s = 6.0
duration_ms = 800
"#;

struct VenueProcess(Child);

impl Drop for VenueProcess {
    fn drop(&mut self) {
        // Never leave the venue behind, whatever the test did.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The venue's checksum of its book at `u`, if it still keeps it.
async fn venue_checksum(rest: &RestClient, symbol: &str, u: u64) -> Option<u32> {
    let query = [("symbol", symbol.to_owned()), ("depth", "50".to_owned()), ("u", u.to_string())];
    match rest.get::<_, Value>("/apex/v1/book-checksum", &query, false).await {
        Ok(result) => result["checksum"].as_u64().map(|c| c as u32),
        Err(ClientError::Http { status: 404, .. }) => None,
        Err(e) => panic!("checksum query failed: {e}"),
    }
}

#[derive(Debug, Default)]
struct Tally {
    compared: u64,
    divergences: Vec<String>,
    orders_sent: u64,
    orders_withheld: u64,
    orders_refused: u64,
    resyncs: u64,
    reconnects: u64,
}

/// Compares the client's book of `symbol` with the venue's at the same `u`; returns whether it was synced.
async fn check_book(feed: &PublicFeed, rest: &RestClient, symbol: &str, tally: &mut Tally) -> bool {
    let snapshot = feed.book(symbol).expect("a configured book").snapshot();
    if !snapshot.synced || snapshot.update_id == 0 {
        return false;
    }
    if let Some(expected) = venue_checksum(rest, symbol, snapshot.update_id).await {
        tally.compared += 1;
        let mine = snapshot.checksum(50);
        if mine != expected {
            tally.divergences.push(format!("{symbol} u={} client {mine:08x} venue {expected:08x}", snapshot.update_id));
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_every_fault() {
    let seconds: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let temp = tempfile::Builder::new().prefix("apex-venue-soak-").tempdir().unwrap();
    let dir = temp.path();
    let (ready, faults, fault_log, accounts) =
        (dir.join("ready.json"), dir.join("faults.toml"), dir.join("faults.jsonl"), dir.join("accounts.json"));
    let _ = std::fs::remove_file(&ready);
    std::fs::write(&faults, FAULTS).unwrap();
    std::fs::write(
        &accounts,
        r#"[{"name":"soak","api_key":"soak-key","api_secret":"soak-secret","balance":"1000000"}]"#,
    )
    .unwrap();
    let venue = VenueProcess(
        Command::new(env!("CARGO_BIN_EXE_apex-venue"))
            .args(["--port", "0", "--speed", "20", "--seed", "9"])
            .arg("--ready")
            .arg(&ready)
            .arg("--faults")
            .arg(&faults)
            .arg("--fault-log")
            .arg(&fault_log)
            .arg("--accounts")
            .arg(&accounts)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the venue binary starts"),
    );
    let pid = venue.0.id();
    let started = Instant::now();
    while !ready.exists() {
        assert!(started.elapsed() < Duration::from_secs(30), "no ready file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = VenueReady::read(&ready).expect("a loopback ready file");
    let target = Target::local(&ready);
    let clock = Arc::new(ClockSync::new(Arc::new(SystemClock)));
    let credentials = ready.account("soak").expect("the soak account").credentials();
    let rest = RestClient::new(&target, Some(credentials.clone()), clock.clone(), RestConfig::default()).unwrap();
    rest.sync_clock().await.unwrap();

    let instruments = rest.instruments(&InstrumentsInfoRequest::of(Category::Linear, None)).await.unwrap();
    let mut scales = BTreeMap::new();
    for i in &instruments.list {
        assert_eq!(i.status, InstrumentStatus::Trading);
        scales.insert(i.symbol.clone(), (i.price_scale().unwrap(), i.qty_scale().unwrap()));
    }
    let timing = Timing {
        ping_interval: Duration::from_secs(5),
        silence_timeout: Duration::from_secs(10),
        reply_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        ..Timing::default()
    };
    let mut public = PublicConfig::new(&target.ws_public);
    public.books = SYMBOLS
        .iter()
        .map(|s| BookSpec { symbol: (*s).into(), depth: 50, price_scale: scales[*s].0, qty_scale: scales[*s].1 })
        .collect();
    public.trades = SYMBOLS.iter().map(|s| (*s).to_owned()).collect();
    public.timing = timing.clone();
    let mut feed = PublicFeed::start(public, 4_096).unwrap();
    let mut events = feed.take_events().unwrap();
    let mut private_config = PrivateConfig::new(&target.ws_private, credentials);
    private_config.timing = timing;
    let mut private = PrivateFeed::start(private_config, clock.clone(), 4_096).unwrap();
    let mut private_events = private.take_events().unwrap();

    let mut tally = Tally::default();
    let mut rss = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut next_order = Instant::now() + Duration::from_millis(500);
    let mut next_sample = Instant::now();
    let mut next_check = Instant::now();
    let mut private_messages = 0_u64;
    let mut order = 0_u64;
    while Instant::now() < deadline {
        tokio::select! {
            event = events.recv() => match event {
                // A resync point: the client took a fresh snapshot; prove the book it now holds.
                Some(PublicEvent::BookSynced { symbol, .. }) => {
                    tally.resyncs += 1;
                    check_book(&feed, &rest, &symbol, &mut tally).await;
                }
                Some(PublicEvent::Connected { .. }) => tally.reconnects += 1,
                Some(_) => {}
                None => panic!("the public supervisor stopped"),
            },
            message = private_events.recv() => {
                assert!(message.is_some(), "the private supervisor stopped");
                private_messages += 1;
            }
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let now = Instant::now();
        if now >= next_sample {
            rss.push(rss_kib(pid));
            next_sample = now + Duration::from_secs(1);
        }
        if now >= next_check {
            for symbol in SYMBOLS {
                check_book(&feed, &rest, symbol, &mut tally).await;
            }
            next_check = now + Duration::from_millis(700);
        }
        if now >= next_order {
            next_order = now + Duration::from_millis(300);
            order += 1;
            let symbol = SYMBOLS[order as usize % SYMBOLS.len()];
            // No order is priced off a book that does not mirror the venue: check it (and prove it) first.
            if !check_book(&feed, &rest, symbol, &mut tally).await {
                tally.orders_withheld += 1;
                continue;
            }
            let book = feed.book(symbol).unwrap().snapshot();
            let (price_scale, _) = &scales[symbol];
            let side = if order.is_multiple_of(2) { Side::Buy } else { Side::Sell };
            let Some(touch) = (if side == Side::Buy { book.bids.first() } else { book.asks.first() }) else { continue };
            let lot = match symbol {
                "BTCUSDT" => "0.001",
                "ETHUSDT" => "0.01",
                _ => "0.1",
            };
            let mut request = CreateOrderRequest::limit(
                Category::Linear,
                symbol,
                side,
                Dec::new(lot).unwrap(),
                Dec::from_units(touch.price, *price_scale),
            );
            request.time_in_force = Some(TimeInForce::PostOnly);
            request.order_link_id = Some(rest.new_order_link_id());
            match rest.create_order(&request).await {
                Ok(_) => tally.orders_sent += 1,
                Err(_) => tally.orders_refused += 1,
            }
        }
    }
    let counts: BTreeMap<String, u64> =
        serde_json::from_value(rest.get::<_, Value>("/apex/v1/faults", &[("x", "")], false).await.unwrap()).unwrap();
    let log = std::fs::read_to_string(&fault_log).unwrap();
    feed.shutdown().await;
    private.shutdown().await;
    eprintln!(
        "soak {seconds} s: {tally:?}, private messages {private_messages}, faults {counts:?}, rss KiB first {:?} last {:?}",
        rss.first(),
        rss.last()
    );
    assert!(tally.divergences.is_empty(), "books diverged: {:?}", tally.divergences);
    assert!(tally.compared >= seconds, "too few comparisons: {}", tally.compared);
    assert!(tally.orders_sent > 0 && private_messages > 0);
    assert!(tally.resyncs > 0 && tally.reconnects > 1, "faults forced recoveries");
    for fault in ["drop", "skip", "duplicate", "disconnect", "restart", "latency_spike", "reject", "rate_limit_burst"] {
        assert!(counts.get(fault).copied().unwrap_or(0) > 0, "no {fault} fault injected: {counts:?}");
        assert!(log.contains(&format!("\"fault\":\"{fault}\"")), "{fault} missing from the fault log");
    }
    // Memory: after warm-up (the first third), the venue grows no more than a bounded amount.
    let third = rss.len() / 3;
    let warm = rss[third..2 * third].iter().max().copied().unwrap_or(0);
    let late = rss[2 * third..].iter().max().copied().unwrap_or(0);
    assert!(late <= warm + warm / 2 + 16_384, "RSS grew from {warm} KiB to {late} KiB");
}
