//! The WebSockets: public `/v5/public/linear` (order books as a snapshot then deltas, trades, tickers, klines) and
//! private `/v5/private` (auth, then order/execution/position/wallet, and `dcp.future` for disconnection
//! protection), with Bybit's op replies, pongs and errors.
//!
//! One task per connection: it reads the client's ops, forwards the broadcast messages of its topics (shared bytes,
//! never re-serialized), applies the per-connection faults, and closes with a reason on shutdown, idleness, a frame
//! over 1 MB or a fault.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use apex_bybit::messages::TopicError;
use apex_bybit::rest::protection::DcpProduct;
use apex_bybit::{Category, OpRequest, OpResponse, PrivateStream, PrivateTopic, sign};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::any;
use futures_util::SinkExt;
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::clock::wall_ms;
use crate::faults::Dice;
use crate::rest::is_lowercase_hex;
use crate::shared::{Control, PrivateMsg, PublicMsg, Shared, TopicId, TopicKind};

/// Largest frame or message a client may send.
pub const MAX_FRAME: usize = 1 << 20;
/// Public frames queued before one flush.
const MAX_BATCH: usize = 256;
/// A connection that sends nothing for this long is closed (Bybit: 10 minutes without ping or data).
pub const IDLE: Duration = Duration::from_secs(600);
/// Longest `args` of one public request, in characters (reference §1).
const MAX_ARGS_CHARS: usize = 21_000;
/// Subscribe, unsubscribe and auth are answered after this long: about the best round trip to Bybit. On loopback an
/// answer could otherwise beat the client's own bookkeeping (pybit records a subscription's `req_id` and callback
/// only after sending it, and drops the connection on an answer it cannot match).
pub const OP_REPLY_DELAY: Duration = Duration::from_millis(5);

/// How far ahead an auth's `expires` may be, in ms. Bybit asks only for a time in the future (docs/v5/ws/connect,
/// reference §4.5); without a bound an `expires` of 2^63-1 makes a signed auth message that never expires, so anyone
/// who sees it once can replay it. Clients sign `now + 1 s` (pybit) to `now + 10 s` (ccxt, pybit users with slow
/// links); ten minutes leaves room for any of them and for clock skew while bounding how long a captured auth works.
pub const MAX_AUTH_EXPIRES_AHEAD_MS: i64 = 600_000;

/// The WebSocket paths.
pub fn router() -> Router<Arc<Shared>> {
    Router::new().route("/v5/public/linear", any(public)).route("/v5/private", any(private))
}

async fn public(upgrade: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| Connection::new(shared, false).run(socket))
}

async fn private(upgrade: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| Connection::new(shared, true).run(socket))
}

/// Why a connection ends.
enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The socket is gone (closed by the client or broken).
    Gone,
}

/// One client connection.
struct Connection {
    shared: Arc<Shared>,
    id: u64,
    conn_id: String,
    private: bool,
    /// Public topics subscribed (by id), and per book topic the `u` of the snapshot sent: deltas at or below it are
    /// already in the client's book.
    subscribed: Vec<bool>,
    floors: HashMap<TopicId, u64>,
    /// Private: the authenticated account, the topic names subscribed and the streams they cover.
    account: Option<usize>,
    private_topics: BTreeSet<String>,
    streams: BTreeSet<PrivateStream>,
    /// Subscribed to `dcp.future`: the account's disconnection protection counts this connection as alive.
    dcp: bool,
    dice: Dice,
}

impl Connection {
    fn new(shared: Arc<Shared>, private: bool) -> Connection {
        let topics = shared.topics.len();
        let seed = shared.faults.seed;
        Connection {
            shared,
            id: 0,
            conn_id: String::new(),
            private,
            subscribed: vec![false; topics],
            floors: HashMap::new(),
            account: None,
            private_topics: BTreeSet::new(),
            streams: BTreeSet::new(),
            dcp: false,
            dice: Dice::new(seed, 0),
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        let (id, mut control) = self.shared.register();
        self.id = id;
        self.conn_id = Shared::conn_id(id);
        self.dice = Dice::new(self.shared.faults.seed, id);
        let mut public_rx = (!self.private).then(|| self.shared.public.subscribe());
        let mut private_rx: Option<broadcast::Receiver<PrivateMsg>> = None;
        let mut shutdown = self.shared.shutdown.clone();
        let mut idle = Instant::now() + IDLE;
        tracing::debug!(conn = %self.conn_id, private = self.private, "connected");
        let end = loop {
            let step = tokio::select! {
                biased;
                _ = shutdown.changed() => Err(End::Close(1001, "venue shutting down")),
                control = control.recv() => self.on_control(control, &mut socket).await,
                incoming = socket.recv() => {
                    idle = Instant::now() + IDLE;
                    self.on_incoming(incoming, &mut socket, &mut private_rx).await
                }
                message = recv_public(&mut public_rx) => self.on_public(message, &mut public_rx, &mut socket).await,
                message = recv_private(&mut private_rx) => self.on_private(message, &mut socket).await,
                () = tokio::time::sleep_until(idle) => Err(End::Close(1000, "idle: no message for 10 minutes")),
            };
            if let Err(end) = step {
                break end;
            }
        };
        if let End::Close(code, reason) = end {
            let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
            // The client may already be gone; closing is best effort.
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
        for (topic, &on) in self.subscribed.iter().enumerate() {
            if on {
                self.shared.topics.subscribed(topic as TopicId, -1);
            }
        }
        self.shared.unregister(id);
        if let (true, Some(account)) = (self.dcp, self.account) {
            crate::protection::on_disconnect(&self.shared, account);
        }
        tracing::debug!(conn = %self.conn_id, "disconnected");
    }

    async fn send(&self, socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), End> {
        socket.send(Message::Text(text)).await.map_err(|_| End::Gone)
    }

    async fn reply(&self, socket: &mut WebSocket, reply: &OpResponse) -> Result<(), End> {
        self.send(socket, Utf8Bytes::from(serde_json::to_string(reply).expect("replies serialize"))).await
    }

    async fn on_control(&mut self, control: Option<Control>, _socket: &mut WebSocket) -> Result<(), End> {
        match control {
            Some(Control::Close(reason)) => Err(End::Close(1001, reason)),
            Some(Control::Stall(ms)) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn on_incoming(
        &mut self,
        incoming: Option<Result<Message, axum::Error>>,
        socket: &mut WebSocket,
        private_rx: &mut Option<broadcast::Receiver<PrivateMsg>>,
    ) -> Result<(), End> {
        let text = match incoming {
            None | Some(Ok(Message::Close(_))) => return Err(End::Gone),
            Some(Err(error)) => {
                // Oversized frames and protocol violations end the connection with a reason.
                let text = error.to_string();
                tracing::info!(conn = %self.conn_id, error = %text, "bad frame");
                return Err(if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
                    End::Close(1009, "message too big: the limit is 1 MB")
                } else {
                    End::Close(1002, "protocol error")
                });
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(()),
            Some(Ok(Message::Binary(_))) => {
                let reply = self.error("", None, "error:binary frames are not supported, send JSON text");
                return self.reply(socket, &reply).await;
            }
            Some(Ok(Message::Text(text))) => text,
        };
        let request: OpRequest = match serde_json::from_str(text.as_str()) {
            Ok(request) => request,
            Err(_) => {
                let reply = self.error("", None, "error:request is not valid JSON of {\"op\", \"args\"}");
                return self.reply(socket, &reply).await;
            }
        };
        let req_id = request.req_id.clone();
        if matches!(request.op.as_str(), "subscribe" | "unsubscribe" | "auth") {
            tokio::time::sleep(OP_REPLY_DELAY).await;
        }
        let reply = match request.op.as_str() {
            "ping" => {
                if self.private {
                    OpResponse::private_pong(&self.conn_id, req_id.as_deref(), wall_ms())
                } else {
                    OpResponse::public_pong(&self.conn_id, req_id.as_deref())
                }
            }
            "subscribe" | "unsubscribe" if !self.private => return self.public_subscribe(&request, socket).await,
            "subscribe" | "unsubscribe" => self.private_subscribe(&request, private_rx),
            "auth" if self.private => self.auth(&request),
            other => self.error(other, req_id.as_deref(), &format!("error:handler not found,op:{other}")),
        };
        self.reply(socket, &reply).await
    }

    fn error(&self, op: &str, req_id: Option<&str>, message: &str) -> OpResponse {
        OpResponse::ack(op, false, message, &self.conn_id, req_id)
    }

    /// Subscribe or unsubscribe public topics. One unknown or already-subscribed topic fails the whole batch, as on
    /// Bybit; a successful subscribe is followed by a snapshot of each order book and ticker.
    async fn public_subscribe(&mut self, request: &OpRequest, socket: &mut WebSocket) -> Result<(), End> {
        let op = request.op.as_str();
        let req_id = request.req_id.as_deref();
        let Some(names) = request.topics() else {
            return self.reply(socket, &self.error(op, req_id, "error:args must be topic strings")).await;
        };
        if names.is_empty() || names.iter().map(|n| n.len()).sum::<usize>() > MAX_ARGS_CHARS {
            return self
                .reply(socket, &self.error(op, req_id, "error:args must hold 1 to 21000 characters of topics"))
                .await;
        }
        let mut ids = Vec::with_capacity(names.len());
        for name in &names {
            let Some(id) = self.shared.topics.id(name) else {
                let message = TopicError { topic: (*name).to_owned() }.to_string();
                return self.reply(socket, &self.error(op, req_id, &message)).await;
            };
            if op == "subscribe" && (self.subscribed[id as usize] || ids.contains(&id)) {
                let message = format!("error:already subscribed,topic:{name}");
                return self.reply(socket, &self.error(op, req_id, &message)).await;
            }
            ids.push(id);
        }
        if op == "unsubscribe" {
            for id in ids {
                if std::mem::replace(&mut self.subscribed[id as usize], false) {
                    self.shared.topics.subscribed(id, -1);
                    self.floors.remove(&id);
                }
            }
            return self.reply(socket, &OpResponse::ack(op, true, "", &self.conn_id, req_id)).await;
        }
        for &id in &ids {
            self.subscribed[id as usize] = true;
            self.shared.topics.subscribed(id, 1);
        }
        self.reply(socket, &OpResponse::ack(op, true, "", &self.conn_id, req_id)).await?;
        for id in ids {
            self.snapshot(id, socket).await?;
        }
        Ok(())
    }

    /// Sends the current snapshot of a book or ticker topic (nothing for trades and klines).
    async fn snapshot(&mut self, id: TopicId, socket: &mut WebSocket) -> Result<(), End> {
        let text = match self.shared.topics.kind(id) {
            TopicKind::Book { symbol, depth } => {
                let data = &self.shared.symbols[symbol];
                let book = data.books[depth].lock().expect("book state");
                if book.u == 0 {
                    return Ok(());
                }
                self.floors.insert(id, book.u);
                let n = apex_bybit::messages::ORDERBOOK_DEPTHS[depth] as usize;
                book.snapshot(self.shared.topics.name(id), &data.units, n)
            }
            TopicKind::Ticker { symbol } => {
                let ticker = self.shared.symbols[symbol].ticker.lock().expect("ticker").clone();
                let message = apex_bybit::TickerMessage {
                    topic: self.shared.topics.name(id).to_owned(),
                    kind: apex_bybit::MessageKind::Snapshot,
                    data: ticker,
                    cs: None,
                    ts: self.shared.clock.market_ms(self.shared.clock.sim_now_us()),
                    id: None,
                };
                Utf8Bytes::from(serde_json::to_string(&message).expect("tickers serialize"))
            }
            TopicKind::Trade { .. } | TopicKind::Kline { .. } => return Ok(()),
        };
        self.send(socket, text).await
    }

    /// Forwards a public message and whatever else is already waiting (up to `MAX_BATCH`), then flushes once: one
    /// write per batch instead of one per message.
    async fn on_public(
        &mut self,
        first: Result<PublicMsg, RecvError>,
        rx: &mut Option<broadcast::Receiver<PublicMsg>>,
        socket: &mut WebSocket,
    ) -> Result<(), End> {
        let mut next = Some(first);
        let mut fed = 0;
        while let Some(message) = next.take() {
            fed += self.forward_public(message, socket).await?;
            if fed >= MAX_BATCH {
                break;
            }
            next = match rx.as_mut().map(broadcast::Receiver::try_recv) {
                Some(Ok(message)) => Some(Ok(message)),
                Some(Err(TryRecvError::Lagged(missed))) => Some(Err(RecvError::Lagged(missed))),
                Some(Err(TryRecvError::Closed)) => Some(Err(RecvError::Closed)),
                Some(Err(TryRecvError::Empty)) | None => None,
            };
        }
        socket.flush().await.map_err(|_| End::Gone)
    }

    /// Queues one public message for the socket (not flushed); returns how many frames it queued.
    async fn forward_public(
        &mut self,
        message: Result<PublicMsg, RecvError>,
        socket: &mut WebSocket,
    ) -> Result<usize, End> {
        let message = match message {
            Ok(message) => message,
            Err(RecvError::Closed) => return Err(End::Close(1001, "venue shutting down")),
            Err(RecvError::Lagged(missed)) => {
                // Too slow to keep up: like Bybit after a problem on its side, send fresh snapshots.
                tracing::warn!(conn = %self.conn_id, missed, "subscriber lagged; re-sending book snapshots");
                let books: Vec<TopicId> = (0..self.subscribed.len() as TopicId)
                    .filter(|&id| {
                        self.subscribed[id as usize] && matches!(self.shared.topics.kind(id), TopicKind::Book { .. })
                    })
                    .collect();
                for id in books {
                    self.snapshot(id, socket).await?;
                }
                return Ok(0);
            }
        };
        if !self.subscribed[message.topic as usize] {
            return Ok(0);
        }
        if message.snapshot {
            self.floors.remove(&message.topic);
        } else if let Some(&floor) = self.floors.get(&message.topic) {
            if message.u <= floor {
                return Ok(0);
            }
            self.floors.remove(&message.topic);
        }
        let faults = &self.shared.faults;
        let is_book_delta = !message.snapshot && message.u > 0;
        if is_book_delta && self.dice.hit(faults.drop.map(|c| c.probability)) {
            let details =
                json!({"conn": self.conn_id, "topic": self.shared.topics.name(message.topic), "u": message.u});
            self.shared.fault_log.record(wall_ms(), "drop", details);
            return Ok(0);
        }
        let duplicate = self.dice.hit(faults.duplicate.map(|c| c.probability));
        socket.feed(Message::Text(message.text.clone())).await.map_err(|_| End::Gone)?;
        if duplicate {
            let details =
                json!({"conn": self.conn_id, "topic": self.shared.topics.name(message.topic), "u": message.u});
            self.shared.fault_log.record(wall_ms(), "duplicate", details);
            socket.feed(Message::Text(message.text)).await.map_err(|_| End::Gone)?;
            return Ok(2);
        }
        Ok(1)
    }

    async fn on_private(&mut self, message: Result<PrivateMsg, RecvError>, socket: &mut WebSocket) -> Result<(), End> {
        match message {
            Ok(message) if self.streams.contains(&message.stream) => self.send(socket, message.text).await,
            Ok(_) => Ok(()),
            Err(RecvError::Closed) => Err(End::Close(1001, "venue shutting down")),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(conn = %self.conn_id, missed, "private subscriber lagged");
                Err(End::Close(1008, "too slow: private messages were lost, reconnect and resync over REST"))
            }
        }
    }

    /// `{"op":"auth","args":[api_key, expires_ms, signature]}`.
    fn auth(&mut self, request: &OpRequest) -> OpResponse {
        let req_id = request.req_id.as_deref();
        if self.account.is_some() {
            return self.error("auth", req_id, "Repeat auth");
        }
        let Some((key, expires, signature)) = request.auth_args() else {
            return self.error("auth", req_id, "Params Error");
        };
        let Some(&account) = self.shared.keys.get(key) else {
            return self.error("auth", req_id, "Invalid apikey");
        };
        let now = wall_ms();
        if expires <= now {
            return self.error("auth", req_id, "Params Error");
        }
        if expires > now.saturating_add(MAX_AUTH_EXPIRES_AHEAD_MS) {
            let message = format!("Params Error: expires must be at most {MAX_AUTH_EXPIRES_AHEAD_MS} ms from now");
            return self.error("auth", req_id, &message);
        }
        let secret = &self.shared.accounts[account].spec.api_secret;
        if !is_lowercase_hex(signature) || !sign::verify(secret, &sign::ws_auth_prehash(expires), signature) {
            return self.error("auth", req_id, "Invalid sign");
        }
        self.account = Some(account);
        OpResponse::ack("auth", true, "", &self.conn_id, req_id)
    }

    /// Subscribe or unsubscribe private topics (after auth). All-in-one and per-category topics cannot share a
    /// request; one unknown or already-subscribed topic fails the whole batch. `dcp.future` may go with either.
    fn private_subscribe(
        &mut self,
        request: &OpRequest,
        private_rx: &mut Option<broadcast::Receiver<PrivateMsg>>,
    ) -> OpResponse {
        let op = request.op.as_str();
        let req_id = request.req_id.as_deref();
        let Some(account) = self.account else {
            return self.error(op, req_id, "Request not authorized");
        };
        let Some(names) = request.topics() else {
            return self.error(op, req_id, "error:args must be topic strings");
        };
        if names.is_empty() {
            return self.error(op, req_id, "error:args is empty");
        }
        let mut parsed = Vec::new();
        let mut dcp = false;
        for name in &names {
            if DcpProduct::of_topic(name) == Some(DcpProduct::Derivatives) {
                if op == "subscribe" && (dcp || self.dcp) {
                    return self.error(op, req_id, &format!("error:already subscribed,topic:{name}"));
                }
                dcp = true;
                continue;
            }
            let topic = match PrivateTopic::parse(name) {
                Ok(topic)
                    if topic.stream != PrivateStream::ExecutionFast
                        && topic.category.as_ref().is_none_or(|c| *c == Category::Linear) =>
                {
                    topic
                }
                _ => return self.error(op, req_id, &TopicError { topic: (*name).to_owned() }.to_string()),
            };
            if op == "subscribe" && (self.private_topics.contains(*name) || parsed.iter().any(|(n, _)| n == name)) {
                return self.error(op, req_id, &format!("error:already subscribed,topic:{name}"));
            }
            parsed.push(((*name).to_owned(), topic));
        }
        if parsed.iter().any(|(_, t)| t.category.is_some()) && parsed.iter().any(|(_, t)| t.category.is_none()) {
            return self.error(op, req_id, "error:all-in-one and categorised topics cannot be in one request");
        }
        if dcp && op == "subscribe" && !self.dcp {
            self.dcp = true;
            self.shared.protection.connected(account);
        } else if dcp && op == "unsubscribe" && self.dcp {
            self.dcp = false;
            crate::protection::on_disconnect(&self.shared, account);
        }
        for (name, topic) in parsed {
            if op == "subscribe" {
                self.private_topics.insert(name);
                self.streams.insert(topic.stream);
            } else {
                self.private_topics.remove(&name);
                let still =
                    self.private_topics.iter().any(|n| PrivateTopic::parse(n).is_ok_and(|t| t.stream == topic.stream));
                if !still {
                    self.streams.remove(&topic.stream);
                }
            }
        }
        if private_rx.is_none() && !self.streams.is_empty() {
            *private_rx = Some(self.shared.accounts[account].private.subscribe());
        }
        OpResponse::ack(op, true, "", &self.conn_id, req_id)
    }
}

async fn recv_public(rx: &mut Option<broadcast::Receiver<PublicMsg>>) -> Result<PublicMsg, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_private(rx: &mut Option<broadcast::Receiver<PrivateMsg>>) -> Result<PrivateMsg, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Closes one connection (a fault) or stalls it; returns whether it was open.
pub fn control(shared: &Shared, id: u64, control: Control) -> bool {
    shared
        .connections
        .lock()
        .expect("connections")
        .get(&id)
        .is_some_and(|tx: &mpsc::UnboundedSender<Control>| tx.send(control).is_ok())
}
