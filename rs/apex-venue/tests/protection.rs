//! Disconnection protection on the venue: the two endpoints (signed, checked), the `dcp.future` topic, and the
//! trigger on the wall clock: an account whose last `dcp.future` connection has been gone for its window has every
//! open order cancelled (cancelType `CancelByDCP`, one `dcp_cancel` line in the fault log); a reconnect inside the
//! window saves them (until the next loss); an account that never set a window keeps its orders.

mod common;

use std::time::Duration;

use apex_venue::Venue;
use common::*;
use serde_json::Value;
use tokio::time::Instant;

const WINDOW_S: u64 = 3;

async fn private_with_dcp(venue: &Venue, account: &apex_venue::AccountSpec) -> Ws {
    let mut ws = connect(&venue.private_url()).await;
    send(&mut ws, &auth_request(account, now_ms() + 10_000)).await;
    assert_eq!(next_op(&mut ws, "auth").await["success"], true);
    send(&mut ws, r#"{"op":"subscribe","args":["order","execution"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["success"], true);
    send(&mut ws, r#"{"op":"subscribe","args":["dcp.future"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["success"], true);
    ws
}

/// A PostOnly buy 10% under the best bid: it rests for the whole test.
async fn resting_order(venue: &Venue, account: &apex_venue::AccountSpec, link: &str) {
    let info = get(venue, "/v5/market/instruments-info", "category=linear&symbol=ETHUSDT").await;
    let tick_text = info.body["result"]["list"][0]["priceFilter"]["tickSize"].as_str().unwrap().to_owned();
    let decimals = tick_text.split_once('.').map_or(0, |(_, d)| d.len());
    let tick: f64 = tick_text.parse().unwrap();
    let book = get(venue, "/v5/market/orderbook", "category=linear&symbol=ETHUSDT&limit=1").await;
    let bid: f64 = book.body["result"]["b"][0][0].as_str().unwrap().parse().unwrap();
    let price = format!("{:.*}", decimals, (bid * 0.9 / tick).floor() * tick);
    let body = format!(
        r#"{{"category":"linear","symbol":"ETHUSDT","side":"Buy","orderType":"Limit","qty":"0.05","price":"{price}","timeInForce":"PostOnly","orderLinkId":"{link}"}}"#
    );
    let create = signed_post(venue, account, "/v5/order/create", &body).await;
    assert_eq!(create.code(), 0, "{:?}", create.body);
}

async fn open_links(venue: &Venue, account: &apex_venue::AccountSpec) -> Vec<String> {
    let open = signed_get(venue, account, "/v5/order/realtime", "category=linear").await;
    assert_eq!(open.code(), 0, "{:?}", open.body);
    open.body["result"]["list"].as_array().unwrap().iter().map(|o| o["orderLinkId"].as_str().unwrap().into()).collect()
}

async fn history(venue: &Venue, account: &apex_venue::AccountSpec, link: &str) -> Value {
    let query = format!("category=linear&orderLinkId={link}");
    let found = signed_get(venue, account, "/v5/order/history", &query).await;
    found.body["result"]["list"][0].clone()
}

/// Polls until the account's open orders are `want` (within `limit`).
async fn wait_open(venue: &Venue, account: &apex_venue::AccountSpec, want: &[&str], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let open = open_links(venue, account).await;
        if open == want {
            return;
        }
        assert!(Instant::now() < deadline, "open orders {open:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_signed_checked_and_per_account() {
    let (venue, config) = venue(1.0).await;
    let (alice, bob) = (&config.accounts[0], &config.accounts[1]);
    let info = signed_get(&venue, alice, "/v5/account/query-dcp-info", "").await;
    assert_eq!((info.code(), info.body["result"]["dcpInfos"].as_array().unwrap().len()), (0, 0));
    for (body, expected) in [
        (r#"{"timeWindow":10}"#, "product OPTIONS is not served"),
        (r#"{"product":"SPOT","timeWindow":10}"#, "product SPOT is not served"),
        (r#"{"product":"DERIVATIVES","timeWindow":2}"#, "3 to 300"),
        (r#"{"product":"DERIVATIVES","timeWindow":301}"#, "3 to 300"),
        (r#"{"product":"DERIVATIVES"}"#, "Request parameter error"),
    ] {
        let refused = signed_post(&venue, alice, "/v5/order/disconnected-cancel-all", body).await;
        assert_eq!(refused.code(), 10001, "{body}");
        assert!(refused.body["retMsg"].as_str().unwrap().contains(expected), "{body}: {:?}", refused.body);
    }
    let unsigned = post_with(&venue, "/v5/order/disconnected-cancel-all", &[], r#"{"timeWindow":10}"#).await;
    assert_eq!(unsigned.code(), 10003);
    let set =
        signed_post(&venue, alice, "/v5/order/disconnected-cancel-all", r#"{"product":"DERIVATIVES","timeWindow":7}"#)
            .await;
    assert_eq!((set.code(), set.body["retMsg"].as_str()), (0, Some("success")), "{:?}", set.body);
    let info = signed_get(&venue, alice, "/v5/account/query-dcp-info", "").await;
    assert_eq!(
        info.body["result"]["dcpInfos"],
        serde_json::json!([{"product":"DERIVATIVES","dcpStatus":"ON","timeWindow":"7"}])
    );
    let other = signed_get(&venue, bob, "/v5/account/query-dcp-info", "").await;
    assert_eq!(other.body["result"]["dcpInfos"], serde_json::json!([]));

    // The topic: derivatives only, once per connection, with or beside the account topics.
    let mut ws = connect(&venue.private_url()).await;
    send(&mut ws, r#"{"op":"subscribe","args":["dcp.future"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["ret_msg"], "Request not authorized");
    send(&mut ws, &auth_request(alice, now_ms() + 10_000)).await;
    assert_eq!(next_op(&mut ws, "auth").await["success"], true);
    send(&mut ws, r#"{"op":"subscribe","args":["dcp.spot"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["ret_msg"], "error:handler not found,topic:dcp.spot");
    send(&mut ws, r#"{"op":"subscribe","args":["order","dcp.future"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["success"], true);
    send(&mut ws, r#"{"op":"subscribe","args":["dcp.future"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["ret_msg"], "error:already subscribed,topic:dcp.future");
    venue.stop().await;
}

/// Three accounts on one venue, each with a resting order: alice loses her only `dcp.future` connection and is
/// cancelled after the window; bob loses his but reconnects inside the window and keeps his order (until he loses
/// it again); carol subscribed `dcp.future` but never set a window and keeps hers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_cancelled_after_the_window_unless_a_connection_returns() {
    let temp = tempfile::Builder::new().prefix("apex-venue-dcp-").tempdir().unwrap();
    let dir = temp.path();
    let log = dir.join("faults.jsonl");
    // The market runs 30 times faster; the window does not: it is wall-clock time.
    let config = logged_config(&["alice", "bob", "carol"], 30.0, 9, &log);
    let venue = Venue::start(config.clone()).await.expect("venue starts");
    let [alice, bob, carol] = [&config.accounts[0], &config.accounts[1], &config.accounts[2]];
    let body = format!(r#"{{"product":"DERIVATIVES","timeWindow":{WINDOW_S}}}"#);
    for account in [alice, bob] {
        assert_eq!(signed_post(&venue, account, "/v5/order/disconnected-cancel-all", &body).await.code(), 0);
    }
    let mut sockets = Vec::new();
    for (account, link) in [(alice, "a-1"), (bob, "b-1"), (carol, "c-1")] {
        sockets.push(private_with_dcp(&venue, account).await);
        resting_order(&venue, account, link).await;
        wait_open(&venue, account, &[link], Duration::from_secs(5)).await;
    }
    // A second alice connection without `dcp.future` does not keep her protected orders alive.
    let mut bystander = connect(&venue.private_url()).await;
    send(&mut bystander, &auth_request(alice, now_ms() + 10_000)).await;
    assert_eq!(next_op(&mut bystander, "auth").await["success"], true);

    let lost = Instant::now();
    for ws in sockets {
        drop(ws);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut bob_again = private_with_dcp(&venue, bob).await;
    // Inside the window nothing is cancelled yet.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(lost.elapsed() < Duration::from_secs(WINDOW_S), "the machine is too slow for this check");
    assert_eq!(open_links(&venue, alice).await, ["a-1"]);
    // After it alice's order is gone, by DCP; bob's and carol's stay.
    wait_open(&venue, alice, &[], Duration::from_secs(WINDOW_S + 3)).await;
    let cancelled = lost.elapsed();
    assert!(cancelled >= Duration::from_secs(WINDOW_S), "cancelled after {cancelled:?}");
    let order = history(&venue, alice, "a-1").await;
    assert_eq!((order["orderStatus"].as_str(), order["cancelType"].as_str()), (Some("Cancelled"), Some("CancelByDCP")));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(open_links(&venue, bob).await, ["b-1"]);
    assert_eq!(open_links(&venue, carol).await, ["c-1"]);

    // Bob's protection was reset, not spent: his next loss cancels after the window in turn.
    let lost_again = Instant::now();
    bob_again.close(None).await.unwrap();
    wait_open(&venue, bob, &[], Duration::from_secs(WINDOW_S + 3)).await;
    assert!(lost_again.elapsed() >= Duration::from_secs(WINDOW_S));
    assert_eq!(history(&venue, bob, "b-1").await["cancelType"], "CancelByDCP");
    assert_eq!(open_links(&venue, carol).await, ["c-1"]);

    let counts = venue.fault_counts();
    assert_eq!(counts.get("dcp_cancel"), Some(&2), "{counts:?}");
    drop(bystander);
    venue.stop().await;
    let lines: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let triggers: Vec<(&str, &Value)> = lines
        .iter()
        .filter(|l| l["fault"] == "dcp_cancel")
        .map(|l| (l["account"].as_str().unwrap(), &l["cancelled"]))
        .collect();
    assert_eq!(triggers, [("alice", &serde_json::json!(["a-1"])), ("bob", &serde_json::json!(["b-1"]))]);
}
