//! The `execution_lag` fault: a market order's execution messages reach the private subscriber the plan's delay after
//! its order message (which is on time), every one of them, and the fault log says so; REST's execution list is not
//! held back.

mod common;

use std::time::Duration;

use apex_venue::Venue;
use apex_venue::faults::Lag;
use common::*;
use tokio::time::Instant;

const DELAY_MS: u64 = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executions_arrive_the_delay_after_their_order() {
    let temp = tempfile::Builder::new().prefix("apex-venue-lag-").tempdir().unwrap();
    let log = temp.path().join("faults.jsonl");
    let mut config = logged_config(&["alice"], 10.0, 4, &log);
    config.faults.execution_lag = Some(Lag { delay_ms: DELAY_MS });
    let venue = Venue::start(config.clone()).await.expect("venue starts");
    let alice = &config.accounts[0];
    let mut ws = connect(&venue.private_url()).await;
    send(&mut ws, &auth_request(alice, now_ms() + 10_000)).await;
    assert_eq!(next_op(&mut ws, "auth").await["success"], true);
    send(&mut ws, r#"{"op":"subscribe","args":["order","execution"]}"#).await;
    assert_eq!(next_op(&mut ws, "subscribe").await["success"], true);

    let body = r#"{"category":"linear","symbol":"ETHUSDT","side":"Buy","orderType":"Market","qty":"0.05","orderLinkId":"lag-1"}"#;
    assert_eq!(signed_post(&venue, alice, "/v5/order/create", body).await.code(), 0);
    let (mut filled_at, mut executions) = (None, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while executions.iter().map(|(_, qty)| qty).sum::<f64>() < 0.05 - 1e-9 {
        assert!(Instant::now() < deadline, "no full set of executions in 10 s: {executions:?}");
        let message = next_json(&mut ws, Duration::from_secs(10)).await.expect("socket open");
        let mine = |row: &&serde_json::Value| row["orderLinkId"] == "lag-1";
        let rows = message["data"].as_array().cloned().unwrap_or_default();
        match message["topic"].as_str() {
            Some("order") if rows.iter().filter(mine).any(|o| o["orderStatus"] == "Filled") => {
                filled_at = Some(Instant::now());
            }
            Some("execution") => {
                assert!(filled_at.is_some(), "an execution came before its order's Filled: {message}");
                let qty = |e: &serde_json::Value| e["execQty"].as_str().unwrap().parse::<f64>().unwrap();
                executions.extend(rows.iter().filter(mine).map(|e| (Instant::now(), qty(e))));
            }
            _ => {}
        }
    }
    // Measured at the client, so the order message's own delivery time blurs it: without the fault the two come
    // within a few milliseconds of each other.
    let filled_at = filled_at.expect("seen");
    for (at, _) in &executions {
        let lag = at.duration_since(filled_at);
        assert!(lag >= Duration::from_millis(DELAY_MS / 2), "an execution came {lag:?} after its order");
        assert!(lag < Duration::from_millis(DELAY_MS + 2_000), "an execution came {lag:?} after its order");
    }
    let listed = signed_get(&venue, alice, "/v5/execution/list", "category=linear&orderLinkId=lag-1").await;
    assert!(!listed.body["result"]["list"].as_array().unwrap().is_empty(), "{:?}", listed.body);
    let lines = std::fs::read_to_string(&log).unwrap();
    let logged: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(
        logged.iter().any(|f| f["fault"] == "execution_lag" && f["account"] == "alice" && f["delay_ms"] == DELAY_MS),
        "{lines}"
    );
    venue.stop().await;
}
