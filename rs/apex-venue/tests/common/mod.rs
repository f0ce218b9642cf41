//! Test helpers: a venue in this process, a bare HTTP/1.1 client that signs like Bybit's clients, WebSocket clients.

#![allow(dead_code)]

use std::time::Duration;

use apex_bybit::sign::{rest_signature, ws_auth_signature};
use apex_venue::{AccountSpec, Venue, VenueConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn account(name: &str) -> AccountSpec {
    AccountSpec {
        name: name.to_owned(),
        api_key: format!("{name}-key"),
        api_secret: format!("{name}-secret"),
        balance: "10000".into(),
        latency_ms: 1.0,
    }
}

pub async fn venue(speed: f64) -> (Venue, VenueConfig) {
    let mut config = VenueConfig::new(vec![account("alice"), account("bob")]);
    config.speed = speed;
    config.seed = 5;
    let venue = Venue::start(config.clone()).await.expect("venue starts");
    (venue, config)
}

/// A venue's config for `accounts` at `speed` (market time per wall time) and `seed`, logging its faults to `log`.
pub fn logged_config(accounts: &[&str], speed: f64, seed: u64, log: &std::path::Path) -> VenueConfig {
    let mut config = VenueConfig::new(accounts.iter().map(|name| account(name)).collect());
    config.speed = speed;
    config.seed = seed;
    config.fault_log = Some(log.to_path_buf());
    config
}

pub fn now_ms() -> i64 {
    apex_venue::clock::wall_ms()
}

/// One HTTP response: status, headers (lower-case names), body.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> i64 {
        self.body["retCode"].as_i64().unwrap_or(-1)
    }
}

/// Sends raw bytes as a request and reads the whole response (the connection is closed after it).
pub async fn raw(venue: &Venue, request: &[u8]) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(venue.address()).await?;
    stream.write_all(request).await?;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await.expect("no stuck request")?;
    Ok(parse_response(&bytes))
}

/// An HTTP/1.1 answer as read off the socket: status, headers (lower-case names), JSON body (null if none).
pub fn parse_response(bytes: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    HttpResponse { status, headers, body }
}

fn request(method: &str, target: &str, headers: &[(String, String)], body: &str) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        text.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

pub fn signed_headers(account: &AccountSpec, timestamp: i64, recv_window: i64, payload: &str) -> Vec<(String, String)> {
    vec![
        ("X-BAPI-API-KEY".into(), account.api_key.clone()),
        ("X-BAPI-TIMESTAMP".into(), timestamp.to_string()),
        ("X-BAPI-RECV-WINDOW".into(), recv_window.to_string()),
        ("X-BAPI-SIGN".into(), rest_signature(&account.api_secret, &account.api_key, timestamp, recv_window, payload)),
    ]
}

pub async fn get(venue: &Venue, path: &str, query: &str) -> HttpResponse {
    raw(venue, &request("GET", &format!("{path}?{query}"), &[], "")).await.expect("GET")
}

pub async fn signed_get(venue: &Venue, account: &AccountSpec, path: &str, query: &str) -> HttpResponse {
    let headers = signed_headers(account, now_ms(), 5000, query);
    raw(venue, &request("GET", &format!("{path}?{query}"), &headers, "")).await.expect("GET")
}

pub async fn signed_post(venue: &Venue, account: &AccountSpec, path: &str, body: &str) -> HttpResponse {
    let headers = signed_headers(account, now_ms(), 5000, body);
    raw(venue, &request("POST", path, &headers, body)).await.expect("POST")
}

pub async fn post_with(venue: &Venue, path: &str, headers: &[(String, String)], body: &str) -> HttpResponse {
    raw(venue, &request("POST", path, headers, body)).await.expect("POST")
}

pub async fn connect(url: &str) -> Ws {
    connect_async(url).await.expect("websocket connects").0
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// The next text message as JSON (skipping pings), or None when the socket closed; panics after `timeout`.
pub async fn next_json(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(timeout, ws.next()).await.expect("a message in time")?;
        match message {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(text.as_str()).expect("JSON from the venue")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The next message whose `op` is `op` (data messages in between are skipped).
pub async fn next_op(ws: &mut Ws, op: &str) -> Value {
    loop {
        let message = next_json(ws, Duration::from_secs(10)).await.expect("socket open");
        if message["op"] == op {
            return message;
        }
    }
}

pub fn auth_request(account: &AccountSpec, expires: i64) -> String {
    let signature = ws_auth_signature(&account.api_secret, expires);
    format!(r#"{{"op":"auth","args":["{}",{expires},"{signature}"]}}"#, account.api_key)
}
