//! apex-bybit's client against the real venue with every fault on: the supervisor keeps each book equal to the
//! venue's (checksum of the top 50 levels at every synced update it checks), recovers from gaps, duplicates,
//! restarts and disconnects, the private stream follows an order's life, and order creation survives rejects,
//! 10006 bursts and latency spikes without ever making a second order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apex_bybit::client::ClientError;
use apex_bybit::client::clock::{ClockSync, SystemClock};
use apex_bybit::client::private::{PrivateConfig, PrivateEvent, PrivateFeed};
use apex_bybit::client::public::{BookSpec, PublicConfig, PublicEvent, PublicFeed};
use apex_bybit::client::rest::{RestClient, RestConfig};
use apex_bybit::client::target::Target;
use apex_bybit::client::target::VenueReady;
use apex_bybit::client::ws::Timing;
use apex_bybit::rest::account::WalletBalanceRequest;
use apex_bybit::rest::market::{InstrumentsInfoRequest, OrderbookRequest};
use apex_bybit::rest::order::{CancelOrderRequest, CreateOrderRequest, OrderQuery};
use apex_bybit::{Category, Dec, OrderStatus};
use apex_core::Side;
use apex_venue::faults::{Chance, Every, Lag, Reject, Window};
use apex_venue::{AccountSpec, FaultPlan, Venue, VenueConfig};
use serde_json::Value;

const SYMBOLS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

fn faults() -> FaultPlan {
    FaultPlan {
        seed: 11,
        drop: Some(Chance { probability: 0.01 }),
        skip: Some(Every { every_s: 2.0 }),
        duplicate: Some(Chance { probability: 0.01 }),
        disconnect: Some(Every { every_s: 4.0 }),
        restart: Some(Every { every_s: 5.0 }),
        latency_spike: Some(Window { every_s: 3.0, duration_ms: 200 }),
        reject: Some(Reject { probability: 0.2, ret_code: 10016 }),
        rate_limit_burst: Some(Window { every_s: 4.0, duration_ms: 500 }),
        // Its cancelled orders are the engine's concern (tests/e2e/test_trade_brackets.py), not the client's.
        unfilled: None,
        partial: None,
        execution_lag: Some(Lag { delay_ms: 100 }),
        trade_lag: Some(Lag { delay_ms: 20 }),
        // A lost private message is the engine's to read back (tests/e2e/test_trade_recovery.py).
        private_loss: None,
    }
}

fn timing() -> Timing {
    Timing {
        ping_interval: Duration::from_secs(2),
        silence_timeout: Duration::from_secs(6),
        reply_timeout: Duration::from_secs(4),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..Timing::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_the_venue_with_every_fault() {
    let account = AccountSpec {
        name: "it".into(),
        api_key: "it-key".into(),
        api_secret: "it-secret".into(),
        balance: "100000".into(),
        latency_ms: 1.0,
    };
    let mut config = VenueConfig::new(vec![account.clone()]);
    config.symbols = SYMBOLS.iter().map(|s| (*s).to_owned()).collect();
    config.speed = 5.0;
    config.seed = 3;
    config.faults = faults();
    let venue = Venue::start(config.clone()).await.unwrap();
    let ready: VenueReady = serde_json::from_value(venue.ready_document(&config)).unwrap();
    let target = Target::local(&ready);
    let credentials = ready.account("it").unwrap().credentials();

    let clock = Arc::new(ClockSync::new(Arc::new(SystemClock)));
    let rest = RestClient::new(&target, Some(credentials.clone()), clock.clone(), RestConfig::default()).unwrap();
    rest.sync_clock().await.unwrap();
    let instruments = rest.instruments(&InstrumentsInfoRequest::of(Category::Linear, None)).await.unwrap();
    let mut public = PublicConfig::new(&target.ws_public);
    for symbol in SYMBOLS {
        let instrument = instruments.list.iter().find(|i| i.symbol == symbol).unwrap();
        public.books.push(BookSpec {
            symbol: symbol.into(),
            depth: 50,
            price_scale: instrument.price_scale().unwrap(),
            qty_scale: instrument.qty_scale().unwrap(),
        });
    }
    public.trades = SYMBOLS.iter().map(|s| (*s).to_owned()).collect();
    public.timing = timing();
    let mut feed = PublicFeed::start(public, 1 << 16).unwrap();
    let mut public_events = feed.take_events().unwrap();
    let mut private_config = PrivateConfig::new(&target.ws_private, credentials);
    private_config.timing = timing();
    let mut private = PrivateFeed::start(private_config, clock.clone(), 1 << 12).unwrap();
    let mut private_events = private.take_events().unwrap();

    // Record (u, checksum) of every synced state of each book for 12 s, while placing and cancelling orders.
    let mut checks: BTreeMap<String, Vec<(u64, u32)>> = BTreeMap::new();
    let (mut btc, mut eth) = (feed.book(SYMBOLS[0]).unwrap(), feed.book(SYMBOLS[1]).unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    let mut resyncs = 0;
    let mut orders_seen = BTreeMap::new();
    let mut placed = Vec::new();
    let mut next_order = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut failed = 0;
    while tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = btc.changed() => {
                let b = btc.snapshot();
                if b.synced { checks.entry(b.symbol.clone()).or_default().push((b.update_id, b.checksum(50))); }
            }
            _ = eth.changed() => {
                let b = eth.snapshot();
                if b.synced { checks.entry(b.symbol.clone()).or_default().push((b.update_id, b.checksum(50))); }
            }
            Some(event) = public_events.recv() => {
                if matches!(event, PublicEvent::BookResync { .. }) { resyncs += 1; }
            }
            Some(event) = private_events.recv() => {
                if let PrivateEvent::Orders(orders) = event {
                    for o in orders { orders_seen.insert(o.order_link_id.clone(), o.order_status.clone()); }
                }
            }
            () = tokio::time::sleep_until(next_order) => {
                next_order += Duration::from_millis(700);
                let book = feed.book("BTCUSDT").unwrap().snapshot();
                // The engine's rule: never price an order off an unsynced book.
                if !book.synced || book.bids.is_empty() { continue; }
                let price = book.price_scale.format(book.bids[0].price * 9 / 10);
                let order = CreateOrderRequest::limit(
                    Category::Linear, "BTCUSDT", Side::Buy, Dec::new("0.001").unwrap(), Dec::new(price).unwrap());
                match rest.create_order(&order).await {
                    Ok(ids) => placed.push(ids),
                    // Injected rejects (10016) are looked up and re-sent; only a run of them can exhaust the retries.
                    Err(e) => {
                        assert!(matches!(e, ClientError::UnknownOutcome { .. }) || e.ret_code() == Some(10006), "{e}");
                        failed += 1;
                    }
                }
            }
        }
    }
    assert!(resyncs > 0, "the fault plan made the client resync");
    assert!(venue.fault_counts().values().sum::<u64>() > 0);

    // Every synced state checked against the venue's own book at the same u.
    let mut compared = 0;
    for (symbol, states) in &checks {
        for (u, checksum) in states.iter().rev().take(200) {
            let answer: Result<Value, _> = rest
                .get(
                    "/apex/v1/book-checksum",
                    &[("symbol", symbol.as_str()), ("depth", "50"), ("u", &u.to_string())],
                    false,
                )
                .await;
            // A restart rewinds u: only states the venue still keeps are comparable.
            if let Ok(answer) = answer {
                assert_eq!(answer["checksum"].as_u64(), Some(u64::from(*checksum)), "{symbol} at u={u}");
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "only {compared} states compared");

    // Each order placed exists exactly once (no retry made a second one), and is seen on the private stream.
    assert!(!placed.is_empty());
    let all = rest
        .open_orders(&OrderQuery {
            category: Category::Linear,
            symbol: Some("BTCUSDT".into()),
            limit: Some(50),
            ..OrderQuery::default()
        })
        .await
        .unwrap();
    if failed == 0 {
        assert_eq!(
            all.list.len(),
            placed.len(),
            "open orders: {:?}",
            all.list.iter().map(|o| &o.order_link_id).collect::<Vec<_>>()
        );
    }
    for ids in &placed {
        let query = OrderQuery {
            category: Category::Linear,
            symbol: Some("BTCUSDT".into()),
            order_link_id: Some(ids.order_link_id.clone()),
            ..OrderQuery::default()
        };
        let open = rest.open_orders(&query).await.unwrap();
        assert_eq!(open.list.len(), 1, "{}", ids.order_link_id);
        let cancel = CancelOrderRequest {
            category: Category::Linear,
            symbol: "BTCUSDT".into(),
            order_link_id: Some(ids.order_link_id.clone()),
            ..CancelOrderRequest::default()
        };
        rest.cancel_order(&cancel).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(event) = private_events.try_recv() {
        if let PrivateEvent::Orders(orders) = event {
            for o in orders {
                orders_seen.insert(o.order_link_id.clone(), o.order_status.clone());
            }
        }
    }
    let cancelled =
        placed.iter().filter(|ids| orders_seen.get(&ids.order_link_id) == Some(&OrderStatus::Cancelled)).count();
    assert!(cancelled > 0, "cancellations seen on the private stream: {orders_seen:?}");
    let wallet = rest.wallet_balance(&WalletBalanceRequest::default()).await.unwrap();
    assert!(wallet.list[0].coin("USDT").is_some());
    let book = rest
        .orderbook(&OrderbookRequest { category: Category::Linear, symbol: "ETHUSDT".into(), limit: Some(5) })
        .await
        .unwrap();
    assert!(!book.b.is_empty());
    println!(
        "checked {compared} states, {resyncs} resyncs, {} orders ({failed} failed), faults {:?}",
        placed.len(),
        venue.fault_counts()
    );
    feed.shutdown().await;
    private.shutdown().await;
    venue.stop().await;
}
