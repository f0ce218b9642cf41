//! What a sweep of hostile and careless input found, each pinned: the recv_window rule cannot be switched off by a
//! header value, a WebSocket auth cannot be signed to last for ever, signatures are lower-case hex only, every error
//! the HTTP stack writes itself is in Bybit's envelope, retMsg speaks in fields and JSON types rather than Rust ones,
//! unknown enum values are refused, and bad options (`--port`, `--ready`, `--fault-log`, balances, a reject with
//! code 0) are refused naming what is wrong.

mod common;

use std::time::Duration;

use apex_bybit::sign::{rest_signature, ws_auth_signature};
use apex_venue::{FaultPlan, Venue, VenueConfig, VenueError, read_accounts};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WALLET: &str = "/v5/account/wallet-balance";
const QUERY: &str = "accountType=UNIFIED";
/// A stand-in for the current time in tables of timestamps (replaced by the time of sending).
const NOW: i64 = 1_000_000_000_000;

/// A signed wallet-balance GET with the given timestamp and recv_window header text, signed over that window.
async fn wallet_with(venue: &Venue, account: &apex_venue::AccountSpec, timestamp: i64, window: &str) -> HttpResponse {
    let signed_window: i64 = window.parse().unwrap_or(5000);
    let sign = rest_signature(&account.api_secret, &account.api_key, timestamp, signed_window, QUERY);
    let request = format!(
        "GET {WALLET}?{QUERY} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-BAPI-API-KEY: {}\r\n\
         X-BAPI-TIMESTAMP: {timestamp}\r\nX-BAPI-RECV-WINDOW: {window}\r\nX-BAPI-SIGN: {sign}\r\n\r\n",
        account.api_key
    );
    raw(venue, request.as_bytes()).await.expect("GET")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_window_cannot_switch_the_timestamp_check_off() {
    let (venue, config) = venue(1.0).await;
    let alice = &config.accounts[0];
    let now = NOW;
    for (timestamp, window, expected) in [
        // The sweep's bypasses: a window that wraps `now - window`, and one so wide the epoch is inside it.
        (1, i64::MIN.to_string(), 10002),
        (1, i64::MAX.to_string(), 10002),
        // A window must be positive and at most a minute.
        (now, "0".to_owned(), 10002),
        (now, "-5000".to_owned(), 10002),
        (now, "60001".to_owned(), 10002),
        (now - 6_000, "5000".to_owned(), 10002),
        // Not an integer: a malformed parameter.
        (now, "5e3".to_owned(), 10001),
        (now, "".to_owned(), 10001),
        // Good requests still pass, up to the edges of the widest window.
        (now, "5000".to_owned(), 0),
        (now - 50_000, "60000".to_owned(), 0),
    ] {
        // `now` stands for the time of sending; 1 is the epoch.
        let timestamp = if timestamp == 1 { 1 } else { now_ms() + timestamp - NOW };
        let reply = wallet_with(&venue, alice, timestamp, &window).await;
        assert_eq!(reply.code(), expected, "timestamp {timestamp}, window {window}: {:?}", reply.body);
        if expected == 10002 && window.parse::<i64>().is_ok_and(|w| !(1..=60_000).contains(&w)) {
            let message = reply.body["retMsg"].as_str().unwrap();
            assert!(message.contains("recv_window must be from 1 to 60000 ms"), "{message}");
        }
    }
    venue.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_lower_case_hex_only() {
    let (venue, config) = venue(1.0).await;
    let alice = &config.accounts[0];
    let mut headers = signed_headers(alice, now_ms(), 5000, QUERY);
    let request = |headers: &[(String, String)]| {
        let lines: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        format!("GET {WALLET}?{QUERY} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{lines}\r\n")
    };
    assert_eq!(raw(&venue, request(&headers).as_bytes()).await.unwrap().code(), 0);
    // The same bytes of HMAC spelled in upper case are not Bybit's signature.
    headers[3].1 = headers[3].1.to_ascii_uppercase();
    let upper = raw(&venue, request(&headers).as_bytes()).await.unwrap();
    assert_eq!(upper.code(), 10004, "{:?}", upper.body);

    let mut ws = connect(&venue.private_url()).await;
    let expires = now_ms() + 5_000;
    let upper_sign = ws_auth_signature(&alice.api_secret, expires).to_ascii_uppercase();
    send(&mut ws, &format!(r#"{{"op":"auth","args":["{}",{expires},"{upper_sign}"]}}"#, alice.api_key)).await;
    let reply = next_op(&mut ws, "auth").await;
    assert_eq!((reply["success"].as_bool(), reply["ret_msg"].as_str()), (Some(false), Some("Invalid sign")));
    send(&mut ws, &auth_request(alice, expires)).await;
    assert_eq!(next_op(&mut ws, "auth").await["success"], true);
    venue.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_auth_expires_must_be_soon() {
    let (venue, config) = venue(1.0).await;
    let alice = &config.accounts[0];
    let mut ws = connect(&venue.private_url()).await;
    for (expires, why) in [
        (i64::MAX, "a signature that never expires"),
        (now_ms() + 601_000, "over ten minutes ahead"),
        (now_ms() - 1, "already past"),
    ] {
        send(&mut ws, &auth_request(alice, expires)).await;
        let reply = next_op(&mut ws, "auth").await;
        assert_eq!(reply["success"], false, "{why}: {reply}");
        assert!(reply["ret_msg"].as_str().unwrap().starts_with("Params Error"), "{why}: {reply}");
    }
    send(&mut ws, &auth_request(alice, now_ms() + 590_000)).await;
    assert_eq!(next_op(&mut ws, "auth").await["success"], true, "within ten minutes is fine");
    venue.stop().await;
}

/// Writes `bytes` and reads one answer (up to its Content-Length: a venue refusing an unread body may keep the
/// connection open); the write may be cut short by the venue's answer.
async fn send_raw(venue: &Venue, bytes: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(venue.address()).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let mut answer = Vec::new();
    let complete = |answer: &[u8]| {
        let text = String::from_utf8_lossy(answer).to_ascii_lowercase();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
        let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok());
        length.is_some_and(|n: usize| body.len() >= n)
    };
    let read = async {
        let mut chunk = [0_u8; 4096];
        while !complete(&answer) {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("answered");
    common::parse_response(&answer)
}

fn assert_envelope(reply: &HttpResponse, status: u16, code: i64, what: &str) {
    assert_eq!((reply.status, reply.code()), (status, code), "{what}: {:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"), "{what}");
    for field in ["retMsg", "result", "retExtInfo", "time"] {
        assert!(reply.body.get(field).is_some(), "{what}: no {field} in {:?}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_the_http_stack_are_in_the_envelope() {
    let (venue, _) = venue(1.0).await;
    // A path served for another method: 405, the route is not there for it, Allow says which is.
    let wrong_method = send_raw(&venue, b"GET /v5/order/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_envelope(&wrong_method, 405, 10017, "GET of a POST path");
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert!(wrong_method.body["retMsg"].as_str().unwrap().contains("does not take GET"));
    // A body over 2 MB: refused from its Content-Length, before it is read.
    let big = b"POST /v5/order/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\
                Content-Length: 3000000\r\n\r\n{";
    let too_big = send_raw(&venue, big).await;
    assert_envelope(&too_big, 413, 10001, "3 MB body");
    assert!(too_big.body["retMsg"].as_str().unwrap().contains("2 MB"));
    // The same with the whole body sent (the venue answers without reading it).
    let mut whole = b"POST /v5/order/create HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                      Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n"
        .to_vec();
    whole.resize(whole.len() + 3_000_000, b' ');
    assert_envelope(&send_raw(&venue, &whole).await, 413, 10001, "3 MB body sent whole");
    // A URL over 65534 bytes (hyper answers before any handler runs).
    let long_url = format!("GET /v5/market/time?x={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    assert_envelope(&send_raw(&venue, long_url.as_bytes()).await, 414, 10001, "70 kB URL");
    // A request head filling hyper's whole buffer (417792 bytes) without ending.
    let mut endless = b"GET /v5/market/time?x=".to_vec();
    endless.resize(8192 + 4096 * 100, b'a');
    assert_envelope(&send_raw(&venue, &endless).await, 431, 10001, "400 kB head");
    // A request line that is not HTTP.
    let garbage = send_raw(&venue, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert_envelope(&garbage, 400, 10001, "garbage");
    assert!(garbage.body["retMsg"].as_str().unwrap().contains("not valid HTTP/1.1"));
    // A GET carrying a body: Bybit answers 403.
    let get_body = b"GET /v5/market/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
    assert_envelope(&send_raw(&venue, get_body).await, 403, 10001, "GET with a body");
    // A plain GET of a WebSocket path is not an upgrade.
    let not_upgrade = send_raw(&venue, b"GET /v5/public/linear HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(not_upgrade.status >= 400 && not_upgrade.code() == 10001, "{:?}", not_upgrade.body);
    // Everything else is untouched, and the venue still serves.
    let unknown = get(&venue, "/v5/market/nothing", "").await;
    assert_envelope(&unknown, 404, 10017, "unknown path");
    assert_eq!(get(&venue, "/v5/market/time", "").await.code(), 0);
    venue.stop().await;
}

/// True when a retMsg names no Rust type.
fn no_rust_in(message: &str) -> bool {
    let rust = ["struct ", "enum ", "CreateOrderRequest", "OrderbookRequest", "u32", "u16", "u64", "i64", "sequence"];
    !rust.iter().any(|w| message.contains(w))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_errors_name_the_field_in_json_terms() {
    let (venue, config) = venue(1.0).await;
    let alice = &config.accounts[0];
    for (body, field) in [
        ("[1,2,3]", "JSON object"),
        ("\"text\"", "JSON object"),
        (r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":5,"price":"1"}"#, "qty"),
        (r#"{"category":"linear","symbol":"BTCUSDT","side":1,"orderType":"Limit","qty":"1","price":"1"}"#, "side"),
        (
            r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","reduceOnly":"yes"}"#,
            "reduceOnly",
        ),
        (
            r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","positionIdx":[0]}"#,
            "positionIdx",
        ),
        (r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"1"} x"#, "not valid JSON"),
        (r#"{"category":"linear""#, "not valid JSON"),
    ] {
        let reply = signed_post(&venue, alice, "/v5/order/create", body).await;
        let message = reply.body["retMsg"].as_str().unwrap().to_owned();
        assert_eq!(reply.code(), 10001, "{body}: {message}");
        assert!(message.contains(field) && no_rust_in(&message), "{body}: {message}");
    }
    for (query, field) in [
        ("category=linear&symbol=BTCUSDT&limit=abc", "limit"),
        ("category=linear&symbol=BTCUSDT&limit=-1", "limit"),
        ("category=linear", "missing field `symbol`"),
    ] {
        let reply = get(&venue, "/v5/market/orderbook", query).await;
        let message = reply.body["retMsg"].as_str().unwrap().to_owned();
        assert_eq!(reply.code(), 10001, "{query}: {message}");
        assert!(message.contains(field) && no_rust_in(&message), "{query}: {message}");
    }
    venue.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_smp_type_is_refused() {
    let (venue, config) = venue(1.0).await;
    let bob = &config.accounts[1];
    let order = |smp: &str| {
        format!(
            r#"{{"category":"linear","symbol":"SOLUSDT","side":"Buy","orderType":"Limit","qty":"0.1","price":"100","smpType":"{smp}"}}"#
        )
    };
    let bogus = signed_post(&venue, bob, "/v5/order/create", &order("Bogus")).await;
    assert_eq!(bogus.code(), 10001, "{:?}", bogus.body);
    assert!(bogus.body["retMsg"].as_str().unwrap().contains("smpType"));
    for smp in ["None", "CancelMaker", "CancelTaker", "CancelBoth"] {
        let reply = signed_post(&venue, bob, "/v5/order/create", &order(smp)).await;
        assert_eq!(reply.code(), 0, "{smp}: {:?}", reply.body);
    }
    venue.stop().await;
}

/// A folder of one test, removed with its contents when dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("apex-venue-hardening-{name}-")).tempdir().unwrap()
}

fn input_error(result: Result<Venue, VenueError>) -> String {
    match result {
        Err(VenueError::Input(message)) => message,
        Err(other) => panic!("expected a bad-input error, got {other}"),
        Ok(_) => panic!("expected a bad-input error, the venue started"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_port_ready_and_fault_log_are_input_errors_naming_the_option() {
    let (running, _) = venue(1.0).await;
    let mut config = VenueConfig::new(vec![account("carol")]);
    config.port = running.address().port();
    let message = input_error(Venue::start(config).await);
    assert!(message.starts_with(&format!("--port {}:", running.address().port())), "{message}");
    assert!(message.contains("in use"), "{message}");
    running.stop().await;

    let temp = temp_dir("paths");
    let dir = temp.path();
    let mut config = VenueConfig::new(vec![account("carol")]);
    config.ready = Some(dir.join("missing-folder").join("ready.json"));
    let message = input_error(Venue::start(config).await);
    assert!(message.starts_with("--ready ") && message.contains("missing-folder"), "{message}");
    // A folder where the file should go: the write fails at the rename, and the temporary file (it holds the keys)
    // goes too.
    let mut config = VenueConfig::new(vec![account("carol")]);
    std::fs::create_dir_all(dir.join("a-folder")).unwrap();
    config.ready = Some(dir.join("a-folder"));
    let message = input_error(Venue::start(config).await);
    assert!(message.starts_with("--ready ") && message.contains("a-folder"), "{message}");
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["a-folder"], "only the folder is left");

    let mut config = VenueConfig::new(vec![account("carol")]);
    config.fault_log = Some(dir.join("missing-folder").join("faults.jsonl"));
    let message = input_error(Venue::start(config).await);
    assert!(message.starts_with("--fault-log ") && message.contains("missing-folder"), "{message}");
}

#[test]
fn balances_and_reject_codes_say_what_is_wrong() {
    let temp = temp_dir("files");
    let dir = temp.path();
    let accounts = dir.join("accounts.json");
    for (balance, reason) in [
        ("99999999999.99", "is too large: give a balance from 0 to 92233720368.54775807 USDT"),
        ("1.123456789", "has more than 8 decimals: give at most 8"),
        ("-1", "is negative"),
        ("ten", "is not a decimal number"),
    ] {
        let text = format!(r#"[{{"name":"a","api_key":"k","api_secret":"s","balance":"{balance}"}}]"#);
        std::fs::write(&accounts, text).unwrap();
        let message = read_accounts(&accounts).unwrap_err().to_string();
        assert!(message.contains(&format!("balance '{balance}' {reason}")), "{balance}: {message}");
    }
    std::fs::write(&accounts, r#"[{"name":"a","api_key":"k","api_secret":"s","balance":"92233720368.54775807"}]"#)
        .unwrap();
    assert!(read_accounts(&accounts).is_ok(), "the largest balance is accepted");
    // A JSON number is read as the decimal it spells, and checked the same way.
    for (number, balance) in [("1000", "1000"), ("2500.5", "2500.5"), ("0", "0")] {
        let text = format!(r#"[{{"name":"a","api_key":"k","api_secret":"s","balance":{number}}}]"#);
        std::fs::write(&accounts, text).unwrap();
        assert_eq!(read_accounts(&accounts).unwrap()[0].balance, balance);
    }
    for (number, reason) in [("-5", "balance '-5' is negative"), ("true", "a decimal number, as a string")] {
        let text = format!(r#"[{{"name":"a","api_key":"k","api_secret":"s","balance":{number}}}]"#);
        std::fs::write(&accounts, text).unwrap();
        let message = read_accounts(&accounts).unwrap_err().to_string();
        assert!(message.contains(reason), "{number}: {message}");
    }

    let plan = dir.join("faults.toml");
    std::fs::write(&plan, "[reject]\nprobability = 1.0\nret_code = 0\n").unwrap();
    let message = FaultPlan::read(&plan).unwrap_err().to_string();
    assert!(message.contains("[reject] ret_code must be a Bybit error code"), "{message}");
    std::fs::write(&plan, "[reject]\nprobability = 1.0\nret_code = 10006\n").unwrap();
    assert!(FaultPlan::read(&plan).is_ok());
    // A value of the wrong type is named by its line and field (the parser's message alone says neither).
    std::fs::write(&plan, "[reject]\nprobability = 1.0\nret_code = \"abc\"\n").unwrap();
    let message = FaultPlan::read(&plan).unwrap_err().to_string();
    assert!(message.contains("faults.toml: line 3: reject.ret_code: invalid type: string \"abc\""), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_price_band_advertised_in_instruments_info_is_the_one_enforced() {
    let (venue, config) = venue(1.0).await;
    let bob = &config.accounts[1];
    let info = get(&venue, "/v5/market/instruments-info", "category=linear&symbol=SOLUSDT").await;
    let instrument = &info.body["result"]["list"][0];
    let ratio = |key: &str| instrument["riskParameters"][key].as_str().unwrap().parse::<f64>().unwrap();
    let (x, y) = (ratio("priceLimitRatioX"), ratio("priceLimitRatioY"));
    assert_eq!((x, y), (apex_sim::DEFAULT_PRICE_LIMIT_RATIO_X, apex_sim::DEFAULT_PRICE_LIMIT_RATIO_Y));
    let tick_text = instrument["priceFilter"]["tickSize"].as_str().unwrap().to_owned();
    let decimals = tick_text.split_once('.').map_or(0, |(_, d)| d.len());
    let ticker = get(&venue, "/v5/market/tickers", "category=linear&symbol=SOLUSDT").await;
    let mark: f64 = ticker.body["result"]["list"][0]["markPrice"].as_str().unwrap().parse().unwrap();
    // With the index at the mark the band is mark * (1 ± x): three times x outside it, half of x inside it (PostOnly,
    // on the passive side, so each rests). The margins leave room for the mark to move between requests.
    let order = |side: &str, price: f64| {
        format!(
            r#"{{"category":"linear","symbol":"SOLUSDT","side":"{side}","orderType":"Limit","qty":"0.1","price":"{price:.decimals$}","timeInForce":"PostOnly"}}"#
        )
    };
    for (side, factor, code) in [
        ("Buy", 1.0 + 3.0 * x, 110_003),
        ("Sell", 1.0 - 3.0 * x, 110_003),
        ("Buy", 1.0 - x / 2.0, 0),
        ("Sell", 1.0 + x / 2.0, 0),
    ] {
        let reply = signed_post(&venue, bob, "/v5/order/create", &order(side, mark * factor)).await;
        assert_eq!(reply.code(), code, "{side} at {factor} x mark {mark}: {:?}", reply.body);
    }
    venue.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ready_file_goes_with_the_venue_unless_another_venue_wrote_it_since() {
    let temp = temp_dir("ready");
    let dir = temp.path();
    let ready = dir.join("ready.json");
    let mut config = VenueConfig::new(vec![account("carol")]);
    config.ready = Some(ready.clone());
    let venue = Venue::start(config.clone()).await.unwrap();
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    assert_eq!(written["rest"], venue.rest_url());
    venue.stop().await;
    assert!(!ready.exists(), "a stopped venue's ready file names a dead port and holds its keys");

    // Dropped without stop (an error path): the same.
    drop(Venue::start(config.clone()).await.unwrap());
    assert!(!ready.exists());

    // Another venue wrote the same path since: its file stays.
    let venue = Venue::start(config).await.unwrap();
    let other = r#"{"rest": "http://127.0.0.1:9", "pid": 1}"#;
    std::fs::write(&ready, other).unwrap();
    venue.stop().await;
    assert_eq!(std::fs::read_to_string(&ready).unwrap(), other);
}
