//! The REST client against a scripted HTTP mock: exact-bytes signing, clock sync and the one retry on 10002,
//! rate-limit headers and 10006, and order creation that never makes a second order whatever is lost on the way.

mod mock;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apex_bybit::client::ClientError;
use apex_bybit::client::clock::{ClockSync, ManualClock};
use apex_bybit::client::rest::{RestClient, RestConfig};
use apex_bybit::client::target::{Network, Target};
use apex_bybit::rest::account::{PositionListRequest, WalletBalanceRequest};
use apex_bybit::rest::order::{CreateOrderRequest, OrderQuery};
use apex_bybit::rest::protection::DcpProduct;
use apex_bybit::sign::{Credentials, rest_prehash, verify};
use apex_bybit::{Category, Dec, RetCode};
use apex_core::Side;
use mock::{HttpAction, HttpMock, HttpRequest, error, ok};
use serde_json::{Value, json};
use tokio::time::Instant;

const NOW: i64 = 1_700_000_000_000;
const KEY: &str = "mock-key";
const SECRET: &str = "mock-secret";

fn client(base: &str, config: RestConfig) -> RestClient {
    let target =
        Target { network: Network::Local, rest: base.into(), ws_public: String::new(), ws_private: String::new() };
    let clock = Arc::new(ClockSync::new(Arc::new(ManualClock::new(NOW))));
    RestClient::new(&target, Some(Credentials::new(KEY, SECRET)), clock, config).unwrap()
}

fn signature_ok(request: &HttpRequest) -> bool {
    let (Some(ts), Some(recv), Some(sign)) =
        (request.header("X-BAPI-TIMESTAMP"), request.header("X-BAPI-RECV-WINDOW"), request.header("X-BAPI-SIGN"))
    else {
        return false;
    };
    request.header("X-BAPI-API-KEY") == Some(KEY)
        && verify(SECRET, &rest_prehash(ts.parse().unwrap(), KEY, recv.parse().unwrap(), request.payload()), sign)
}

fn time_result(ms: i64) -> Value {
    ok(json!({"timeSecond": (ms / 1000).to_string(), "timeNano": (ms as i128 * 1_000_000).to_string()}))
}

fn order_json(order_id: &str, link: &str) -> Value {
    let path = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .join("../../tests/data/bybit/nautilus_fixtures/http_get_orders_realtime.json");
    let mut fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut order = fixture["result"]["list"][0].take();
    order["orderId"] = json!(order_id);
    order["orderLinkId"] = json!(link);
    order
}

#[tokio::test]
async fn signs_exact_bytes_with_the_synced_clock() {
    let mock = HttpMock::start(Arc::new(|request: &HttpRequest| match request.path.as_str() {
        "/v5/market/time" => HttpAction::Json(time_result(NOW + 3_000), vec![]),
        _ if !signature_ok(request) => HttpAction::Json(error(10004, "Error sign"), vec![]),
        "/v5/position/list" => HttpAction::Json(ok(json!({"category":"linear","list":[],"nextPageCursor":""})), vec![]),
        "/v5/order/create" => HttpAction::Json(ok(json!({"orderId":"o-1","orderLinkId":"l-1"})), vec![]),
        _ => HttpAction::Json(error(10017, "Route not found"), vec![]),
    }))
    .await;
    let client = client(&mock.base, RestConfig::default());
    assert_eq!(client.sync_clock().await.unwrap(), 3_000);
    let positions = client
        .positions(&PositionListRequest { symbol: Some("BTCUSDT".into()), ..PositionListRequest::default() })
        .await
        .unwrap();
    assert!(positions.list.is_empty());
    let mut order = CreateOrderRequest::limit(
        Category::Linear,
        "BTCUSDT",
        Side::Buy,
        Dec::new("0.001").unwrap(),
        Dec::new("60000.5").unwrap(),
    );
    order.order_link_id = Some("l-1".into());
    assert_eq!(client.create_order(&order).await.unwrap().order_id, "o-1");

    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    let get = &requests[1];
    assert_eq!(get.query, "category=linear&symbol=BTCUSDT");
    assert_eq!(get.header("X-BAPI-TIMESTAMP"), Some((NOW + 3_000).to_string().as_str()));
    assert_eq!(get.header("X-BAPI-RECV-WINDOW"), Some("5000"));
    let post = &requests[2];
    assert_eq!(
        post.body,
        r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"60000.5","orderLinkId":"l-1"}"#
    );
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert!(requests[1..].iter().all(signature_ok));
    // The public endpoint carries no key.
    assert!(requests[0].header("X-BAPI-API-KEY").is_none());
}

#[tokio::test]
async fn recv_window_error_resyncs_and_retries_once() {
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let mock = HttpMock::start(Arc::new(move |request: &HttpRequest| {
        if request.path == "/v5/market/time" {
            return HttpAction::Json(time_result(NOW - 20_000), vec![]);
        }
        let mut n = seen.lock().unwrap();
        *n += 1;
        // The first wallet call and every one from the third on are out of the window.
        let ts: i64 = request.header("X-BAPI-TIMESTAMP").unwrap().parse().unwrap();
        if *n == 2 && ts == NOW - 20_000 {
            HttpAction::Json(ok(json!({"list": []})), vec![])
        } else {
            HttpAction::Json(error(10002, &apex_bybit::errors::recv_window_message(ts, NOW - 20_000, 5000)), vec![])
        }
    }))
    .await;
    let client = client(&mock.base, RestConfig::default());
    let wallet = client.wallet_balance(&WalletBalanceRequest::default()).await.unwrap();
    assert!(wallet.list.is_empty());
    assert_eq!(mock.paths(), ["/v5/account/wallet-balance", "/v5/market/time", "/v5/account/wallet-balance"]);
    assert_eq!(client.clock().offset_ms(), -20_000);

    // Still out of the window after the re-sync: the error comes back, after exactly one more try.
    let error = client.wallet_balance(&WalletBalanceRequest::default()).await.unwrap_err();
    assert!(error.is(RetCode::RecvWindow), "{error}");
    assert_eq!(mock.paths().len(), 6);
}

#[tokio::test]
async fn rate_limit_headers_and_10006_wait_for_the_reset() {
    let calls = Arc::new(Mutex::new(0));
    let seen = calls.clone();
    let mock = HttpMock::start(Arc::new(move |request: &HttpRequest| {
        let mut n = seen.lock().unwrap();
        *n += 1;
        let reset = vec![
            ("X-Bapi-Limit".into(), "50".into()),
            ("X-Bapi-Limit-Status".into(), "0".into()),
            ("X-Bapi-Limit-Reset-Timestamp".into(), (NOW + 300).to_string()),
        ];
        match (*n, request.path.as_str()) {
            (1, _) => HttpAction::Json(error(10006, "Too many visits!"), reset),
            (2, _) => HttpAction::Json(ok(json!({"category":"linear","list":[],"nextPageCursor":""})), reset),
            (_, "/v5/order/realtime") => HttpAction::Json(ok(json!({"list":[],"nextPageCursor":""})), vec![]),
            _ => HttpAction::Json(ok(json!({"list":[]})), vec![]),
        }
    }))
    .await;
    let client = client(&mock.base, RestConfig::default());
    let query = OrderQuery { symbol: Some("BTCUSDT".into()), ..OrderQuery::default() };
    // 10006 with a reset 300 ms ahead (on the exchange's clock): the retry waits for it.
    let started = Instant::now();
    client.open_orders(&query).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(280), "{waited:?}");
    assert_eq!(mock.paths().len(), 2);
    // The success said 0 remaining until a reset 300 ms ahead: the next order query waits, a wallet query does not.
    let started = Instant::now();
    client.wallet_balance(&WalletBalanceRequest::default()).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(200), "{:?}", started.elapsed());
    client.open_orders(&query).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(280), "{:?}", started.elapsed());
}

#[tokio::test]
async fn exchange_errors_are_returned_with_the_key_masked() {
    let mock = HttpMock::start(Arc::new(|request: &HttpRequest| match request.path.as_str() {
        "/v5/order/create" => HttpAction::Json(error(110007, "ab not enough for new order"), vec![]),
        _ => {
            HttpAction::Json(error(10004, &format!("error sign! origin_string[{NOW}{KEY}5000category=linear]")), vec![])
        }
    }))
    .await;
    let client = client(&mock.base, RestConfig::default());
    let order = CreateOrderRequest::market(Category::Linear, "BTCUSDT", Side::Sell, Dec::new("1").unwrap());
    let error = client.create_order(&order).await.unwrap_err();
    assert!(error.is(RetCode::AvailableInsufficient) && !error.outcome_unknown(), "{error}");
    assert_eq!(mock.paths(), ["/v5/order/create"], "a rejection is not retried or looked up");
    let error = client.positions(&PositionListRequest::default()).await.unwrap_err().to_string();
    assert!(error.contains("origin_string[1700000000000***5000") && !error.contains(KEY), "{error}");
}

/// A tiny exchange: orders by `orderLinkId`, unique like Bybit's; `script` decides what each create does.
#[derive(Default)]
struct Exchange {
    orders: BTreeMap<String, String>,
    creates: usize,
}

#[derive(Clone, Copy)]
enum Create {
    /// Record the order and answer.
    Answer,
    /// Record the order, then drop the connection without answering.
    RecordAndDrop,
    /// Drop the connection before the order is recorded.
    DropUnrecorded,
    /// Record the order, answer after 2 s.
    RecordAndAnswerLate,
    /// Answer 10016 "Server error" without recording the order.
    ServerError,
}

async fn exchange(script: Vec<Create>) -> (HttpMock, Arc<Mutex<Exchange>>) {
    let state = Arc::new(Mutex::new(Exchange::default()));
    let shared = state.clone();
    let mock = HttpMock::start(Arc::new(move |request: &HttpRequest| {
        let mut ex = shared.lock().unwrap();
        match request.path.as_str() {
            "/v5/order/create" => {
                let body: Value = serde_json::from_str(&request.body).unwrap();
                let link = body["orderLinkId"].as_str().expect("creates always carry an orderLinkId").to_owned();
                let step = script.get(ex.creates).copied().unwrap_or(Create::Answer);
                ex.creates += 1;
                if ex.orders.contains_key(&link) {
                    return HttpAction::Json(error(110072, "OrderLinkedID is duplicate"), vec![]);
                }
                let order_id = format!("order-{}", ex.orders.len() + 1);
                let answer = ok(json!({"orderId": order_id, "orderLinkId": link}));
                match step {
                    Create::DropUnrecorded => return HttpAction::Drop,
                    Create::ServerError => return HttpAction::Json(error(10016, "Server error"), vec![]),
                    Create::Answer | Create::RecordAndDrop | Create::RecordAndAnswerLate => {}
                }
                ex.orders.insert(link, order_id);
                match step {
                    Create::RecordAndDrop => HttpAction::Drop,
                    Create::RecordAndAnswerLate => HttpAction::Late(Duration::from_secs(2), answer),
                    _ => HttpAction::Json(answer, vec![]),
                }
            }
            "/v5/order/realtime" | "/v5/order/history" => {
                let query: BTreeMap<String, String> = serde_urlencoded::from_str(&request.query).unwrap();
                let link = &query["orderLinkId"];
                // Open orders are listed by realtime; this exchange keeps them open.
                let list: Vec<Value> = match (request.path.as_str(), ex.orders.get(link)) {
                    ("/v5/order/realtime", Some(id)) => vec![order_json(id, link)],
                    _ => vec![],
                };
                HttpAction::Json(ok(json!({"category":"linear","list": list, "nextPageCursor": ""})), vec![])
            }
            _ => HttpAction::Json(error(10017, "Route not found"), vec![]),
        }
    }))
    .await;
    (mock, state)
}

fn quick() -> RestConfig {
    RestConfig { timeout: Duration::from_millis(400), max_retries: 2, ..RestConfig::default() }
}

fn order() -> CreateOrderRequest {
    CreateOrderRequest::limit(
        Category::Linear,
        "BTCUSDT",
        Side::Buy,
        Dec::new("0.010").unwrap(),
        Dec::new("100.00").unwrap(),
    )
}

#[tokio::test]
async fn lost_answer_is_looked_up_not_resent() {
    let (mock, state) = exchange(vec![Create::RecordAndDrop]).await;
    let client = client(&mock.base, quick());
    let ids = client.create_order(&order()).await.unwrap();
    assert_eq!(ids.order_id, "order-1");
    assert!(ids.order_link_id.starts_with("apx-"), "{}", ids.order_link_id);
    assert_eq!(mock.paths(), ["/v5/order/create", "/v5/order/realtime"]);
    let ex = state.lock().unwrap();
    assert_eq!((ex.orders.len(), ex.creates), (1, 1));
}

#[tokio::test]
async fn late_answer_after_the_timeout_is_looked_up_not_resent() {
    let (mock, state) = exchange(vec![Create::RecordAndAnswerLate]).await;
    let client = client(&mock.base, quick());
    let mut request = order();
    request.order_link_id = Some("late-1".into());
    let ids = client.create_order(&request).await.unwrap();
    assert_eq!((ids.order_id.as_str(), ids.order_link_id.as_str()), ("order-1", "late-1"));
    assert_eq!(state.lock().unwrap().creates, 1);
}

#[tokio::test]
async fn create_that_never_arrived_is_sent_again_once() {
    let (mock, state) = exchange(vec![Create::DropUnrecorded, Create::Answer]).await;
    let client = client(&mock.base, quick());
    let ids = client.create_order(&order()).await.unwrap();
    assert_eq!(ids.order_id, "order-1");
    assert_eq!(mock.paths(), ["/v5/order/create", "/v5/order/realtime", "/v5/order/history", "/v5/order/create"]);
    let requests = mock.requests();
    let link = |r: &HttpRequest| serde_json::from_str::<Value>(&r.body).unwrap()["orderLinkId"].clone();
    assert_eq!(link(&requests[0]), link(&requests[3]), "the retry reuses the orderLinkId");
    assert_eq!(state.lock().unwrap().orders.len(), 1);
}

#[tokio::test]
async fn server_error_is_looked_up_then_sent_again() {
    let (mock, state) = exchange(vec![Create::ServerError, Create::Answer]).await;
    let client = client(&mock.base, quick());
    assert_eq!(client.create_order(&order()).await.unwrap().order_id, "order-1");
    assert_eq!(mock.paths(), ["/v5/order/create", "/v5/order/realtime", "/v5/order/history", "/v5/order/create"]);
    assert_eq!(state.lock().unwrap().orders.len(), 1);
}

#[tokio::test]
async fn duplicate_link_id_counts_as_placed() {
    let (mock, state) = exchange(vec![]).await;
    state.lock().unwrap().orders.insert("dup-1".into(), "order-9".into());
    let client = client(&mock.base, quick());
    let mut request = order();
    request.order_link_id = Some("dup-1".into());
    let ids = client.create_order(&request).await.unwrap();
    assert_eq!((ids.order_id.as_str(), ids.order_link_id.as_str()), ("order-9", "dup-1"));
    assert_eq!(state.lock().unwrap().orders.len(), 1);
}

#[tokio::test]
async fn unknown_outcome_is_reported_after_the_retries() {
    let (mock, state) = exchange(vec![Create::DropUnrecorded; 10]).await;
    let client = client(&mock.base, quick());
    let error = client.create_order(&order()).await.unwrap_err();
    assert!(matches!(&error, ClientError::UnknownOutcome { attempts: 3, .. }), "{error}");
    assert_eq!(state.lock().unwrap().creates, 3);
    assert!(state.lock().unwrap().orders.is_empty());
    let mut bad = order();
    bad.order_link_id = Some("has space".into());
    assert!(matches!(client.create_order(&bad).await, Err(ClientError::Config { .. })));
}

/// Disconnection protection: the set body is Bybit's exact JSON, signed over those bytes; the query reads the
/// documented answer; a window outside [3, 300] s is refused before anything is sent; an account without DCP gets
/// the exchange's refusal as `Api` (the code here stands in for whatever non-zero code Bybit sends).
#[tokio::test]
async fn disconnect_protection_set_and_query() {
    let enabled = Arc::new(Mutex::new(true));
    let state = enabled.clone();
    let mock = HttpMock::start(Arc::new(move |request: &HttpRequest| match request.path.as_str() {
        _ if !signature_ok(request) => HttpAction::Json(error(10004, "Error sign"), vec![]),
        "/v5/order/disconnected-cancel-all" if *state.lock().unwrap() => HttpAction::Json(
            json!({"retCode":0,"retMsg":"success","result":{},"retExtInfo":{},"time":1_717_065_530_867_i64}),
            vec![],
        ),
        "/v5/order/disconnected-cancel-all" => {
            HttpAction::Json(error(10001, "DCP is not enabled for this account"), vec![])
        }
        "/v5/account/query-dcp-info" => HttpAction::Json(
            json!({"retCode":0,"retMsg":"success","result":{"dcpInfos":[
                {"product":"SPOT","dcpStatus":"ON","timeWindow":"10"},
                {"product":"DERIVATIVES","dcpStatus":"ON","timeWindow":"10"}]},"retExtInfo":{},"time":1}),
            vec![],
        ),
        _ => HttpAction::Json(error(10017, "Route not found"), vec![]),
    }))
    .await;
    let client = client(&mock.base, RestConfig::default());
    client.set_disconnect_protection(DcpProduct::Derivatives, 10).await.unwrap();
    let sent = mock.requests().pop().unwrap();
    assert_eq!((sent.method.as_str(), sent.body.as_str()), ("POST", r#"{"product":"DERIVATIVES","timeWindow":10}"#));
    let info = client.disconnect_protection().await.unwrap();
    let derivatives = info.product(&DcpProduct::Derivatives).unwrap();
    assert!(derivatives.is_on());
    assert_eq!(derivatives.window_s(), Some(10));
    assert_eq!(mock.requests().last().unwrap().query, "");

    let before = mock.requests().len();
    for bad in [0, 2, 301] {
        let error = client.set_disconnect_protection(DcpProduct::Derivatives, bad).await.unwrap_err();
        assert!(matches!(error, ClientError::Config { .. }), "{bad}: {error}");
    }
    assert_eq!(mock.requests().len(), before, "a bad window is never sent");

    *enabled.lock().unwrap() = false;
    let refused = client.set_disconnect_protection(DcpProduct::Derivatives, 3).await.unwrap_err();
    assert_eq!(refused.ret_code(), Some(10001), "{refused}");
    assert!(refused.to_string().contains("/v5/order/disconnected-cancel-all"), "{refused}");
}
