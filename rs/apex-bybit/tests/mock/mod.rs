//! Scripted mock servers for the client tests: a WebSocket server whose connections the test drives frame by frame,
//! and an HTTP/1.1 server whose answers a handler decides (answer, answer late, or drop the connection unanswered).
//! Both listen on 127.0.0.1 with a port picked by the system.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Every wait in a test is bounded by this, so a broken client fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(10);

/// A WebSocket server; each accepted connection is handed to the test through [`WsMock::accept`].
pub struct WsMock {
    pub url: String,
    connections: mpsc::Receiver<MockConn>,
    task: JoinHandle<()>,
}

impl WsMock {
    pub async fn start(path: &str) -> WsMock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}{path}", listener.local_addr().unwrap());
        let (tx, connections) = mpsc::channel(16);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        let _ = tx.send(MockConn { ws, closed: false }).await;
                    }
                });
            }
        });
        WsMock { url, connections, task }
    }

    /// The next connection the client opens.
    pub async fn accept(&mut self) -> MockConn {
        tokio::time::timeout(WAIT, self.connections.recv()).await.expect("the client connects").expect("server runs")
    }

    /// True when no connection arrives within `wait`.
    pub async fn no_connection_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.connections.recv()).await.is_err()
    }
}

impl Drop for WsMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client connection on the mock server.
pub struct MockConn {
    ws: WebSocketStream<TcpStream>,
    pub closed: bool,
}

impl MockConn {
    /// The next text frame, as JSON (`None` when the client closed the connection).
    pub async fn recv(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next()).await.expect("the client sends a frame");
            match frame {
                Some(Ok(Message::Text(text))) => return Some(serde_json::from_str(text.as_str()).unwrap()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    self.closed = true;
                    return None;
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame that is not a ping (pings are answered with the linear pong shape).
    pub async fn recv_op(&mut self) -> Value {
        loop {
            let frame = self.recv().await.expect("connection open");
            if frame["op"] == "ping" {
                let pong = serde_json::json!({"success":true,"ret_msg":"pong","conn_id":"mock","req_id":frame["req_id"],"op":"ping"});
                self.send(&pong).await;
                continue;
            }
            return frame;
        }
    }

    /// Receives a subscribe and acknowledges it; returns its topics.
    pub async fn ack_subscribe(&mut self) -> Vec<String> {
        let request = self.recv_op().await;
        assert_eq!(request["op"], "subscribe", "{request}");
        self.ack(&request, true, "").await;
        topics(&request)
    }

    pub async fn ack(&mut self, request: &Value, success: bool, ret_msg: &str) {
        let reply = serde_json::json!({
            "success": success, "ret_msg": ret_msg, "conn_id": "mock", "req_id": request["req_id"], "op": request["op"]
        });
        self.send(&reply).await;
    }

    pub async fn send(&mut self, frame: &Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        // A client that already hung up makes sends fail; the tests check what the client did instead.
        let _ = self.ws.send(Message::text(text.to_owned())).await;
    }

    /// Closes from the server side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Waits until the client closes the connection (e.g. after its silence timeout), skipping its frames.
    pub async fn wait_closed(&mut self) {
        while !self.closed {
            let _ = self.recv().await;
        }
    }
}

pub fn topics(request: &Value) -> Vec<String> {
    request["args"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect()
}

/// An order-book message in Bybit's shape.
pub fn book_message(topic: &str, kind: &str, u: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> Value {
    let symbol = topic.rsplit('.').next().unwrap();
    let side = |levels: &[(&str, &str)]| levels.iter().map(|(p, q)| serde_json::json!([p, q])).collect::<Vec<_>>();
    serde_json::json!({
        "topic": topic, "type": kind, "ts": 1_700_000_000_000_u64 + u,
        "data": {"s": symbol, "b": side(bids), "a": side(asks), "u": u, "seq": 1000 + u},
        "cts": 1_700_000_000_000_u64 + u - 1
    })
}

/// A request the HTTP mock received.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The signed payload: the query string for GET, the body for POST.
    pub fn payload(&self) -> &str {
        if self.method == "GET" { &self.query } else { &self.body }
    }
}

/// What the HTTP mock does with a request.
pub enum HttpAction {
    /// Status 200, this JSON body, these extra headers.
    Json(Value, Vec<(String, String)>),
    /// Answer after a pause.
    Late(Duration, Value),
    /// Close the connection without answering, after reading the request.
    Drop,
}

pub type Handler = Arc<dyn Fn(&HttpRequest) -> HttpAction + Send + Sync>;

/// An HTTP/1.1 server (keep-alive, Content-Length bodies) answering through a handler; it logs every request.
pub struct HttpMock {
    pub base: String,
    pub log: Arc<Mutex<Vec<HttpRequest>>>,
    task: JoinHandle<()>,
}

impl HttpMock {
    pub async fn start(handler: Handler) -> HttpMock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, handler.clone(), task_log.clone()));
            }
        });
        HttpMock { base, log, task }
    }

    pub fn requests(&self) -> Vec<HttpRequest> {
        self.log.lock().unwrap().clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }
}

impl Drop for HttpMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, handler: Handler, log: Arc<Mutex<Vec<HttpRequest>>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
        let mut headers = BTreeMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let (path, query) =
            target.split_once('?').map_or((target.clone(), String::new()), |(p, q)| (p.into(), q.into()));
        let request = HttpRequest { method, path, query, headers, body: String::from_utf8(body).unwrap() };
        log.lock().unwrap().push(request.clone());
        let (value, extra) = match handler(&request) {
            HttpAction::Drop => return,
            HttpAction::Json(value, extra) => (value, extra),
            HttpAction::Late(pause, value) => {
                tokio::time::sleep(pause).await;
                (value, Vec::new())
            }
        };
        let body = value.to_string();
        let mut response =
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in extra {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&body);
        if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A V5 success envelope.
pub fn ok(result: Value) -> Value {
    serde_json::json!({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 1_700_000_000_000_u64})
}

/// A V5 error envelope.
pub fn error(code: i64, message: &str) -> Value {
    serde_json::json!({"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": 1_700_000_000_000_u64})
}
