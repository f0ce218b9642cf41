//! The private-stream supervisor: authenticates (`auth` signed with an expiry a few seconds ahead on the exchange's
//! clock), subscribes to the account topics, and forwards orders, executions, positions and wallets; reconnects and
//! re-authenticates after any loss, and publishes whether the stream is up. With disconnection protection it also
//! subscribes the product's `dcp.*` topic, on its own, once the account topics are up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::client::ClientError;
use crate::client::clock::ClockSync;
use crate::client::ws::{LinkStatus, Session, Step, Supervisor, Timing, supervise};
use crate::messages::{Envelope, OpRequest, OpResponse};
use crate::private::{PrivateMessage, PrivateStream, PrivateTopic};
use crate::records::{Execution, FastExecution, Order, Position, Wallet};
use crate::rest::protection::DcpProduct;
use crate::sign::Credentials;

/// What the private supervisor connects with.
#[derive(Debug, Clone)]
pub struct PrivateConfig {
    /// The private stream, e.g. `wss://stream.bybit.com/v5/private`.
    pub url: String,
    pub credentials: Credentials,
    /// Topics; all-in-one `order`, `execution`, `position`, `wallet` by default.
    pub topics: Vec<PrivateTopic>,
    /// How far past the exchange's "now" the `auth` expires (users behind slow links needed 10 s).
    pub auth_expiry: Duration,
    pub timing: Timing,
    pub seed: u64,
    /// Subscribe this product's `dcp.*` topic on every connection (after the account topics, in a request of its
    /// own: a refusal then costs nothing else), so the exchange's disconnection protection counts the connection.
    pub protection: Option<DcpProduct>,
}

impl PrivateConfig {
    #[must_use]
    pub fn new(url: impl Into<String>, credentials: Credentials) -> PrivateConfig {
        PrivateConfig {
            url: url.into(),
            credentials,
            topics: [PrivateStream::Order, PrivateStream::Execution, PrivateStream::Position, PrivateStream::Wallet]
                .into_iter()
                .map(PrivateTopic::all)
                .collect(),
            auth_expiry: Duration::from_secs(10),
            timing: Timing::default(),
            seed: 1,
            protection: None,
        }
    }
}

/// What the private supervisor reports.
#[derive(Debug, Clone, PartialEq)]
pub enum PrivateEvent {
    /// Authenticated and subscribed: account updates flow from here on.
    Up {
        connection: u64,
    },
    /// The stream is down; updates may have been missed (query REST for the current state once it is up again).
    Down {
        reason: String,
    },
    AuthFailed {
        message: String,
    },
    /// The answer to the `dcp.*` subscribe of a connection: `refused` holds the exchange's message when it refused
    /// (an account without disconnection protection gets `handler not found`). The stream stays up either way.
    Protection {
        connection: u64,
        topic: String,
        refused: Option<String>,
    },
    Orders(Vec<Order>),
    Executions(Vec<Execution>),
    FastExecutions(Vec<FastExecution>),
    Positions(Vec<Position>),
    Wallets(Vec<Wallet>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Authenticating { since: Instant },
    Subscribing { since: Instant },
    Up,
    Closed,
}

struct PrivateSession {
    credentials: Credentials,
    clock: Arc<ClockSync>,
    topics: Vec<String>,
    /// The `dcp.*` topic, and whether its subscribe awaits an answer on this connection.
    protection: Option<String>,
    protection_pending: bool,
    auth_expiry: Duration,
    reply_timeout: Duration,
    phase: Phase,
    connection: u64,
    next_req: u64,
    events: Vec<PrivateEvent>,
    up: watch::Sender<bool>,
}

impl PrivateSession {
    fn req_id(&mut self, prefix: &str) -> String {
        self.next_req += 1;
        format!("{prefix}{}", self.next_req)
    }

    fn on_reply(&mut self, reply: &OpResponse, now: Instant) -> Step {
        match (reply.op.as_deref(), self.phase) {
            (Some("auth"), Phase::Authenticating { .. }) => {
                if !reply.is_success() {
                    let message = reply.message().to_owned();
                    self.events.push(PrivateEvent::AuthFailed { message: message.clone() });
                    return Err(format!("auth refused: {message}"));
                }
                self.phase = Phase::Subscribing { since: now };
                let req_id = self.req_id("s");
                let frame = OpRequest::subscribe(&self.topics, Some(req_id));
                Ok(vec![serde_json::to_string(&frame).expect("op requests serialize")])
            }
            (Some("subscribe"), Phase::Subscribing { .. }) => {
                if !reply.is_success() && !reply.message().contains("already subscribed") {
                    return Err(format!("subscribe refused: {}", reply.message()));
                }
                self.phase = Phase::Up;
                self.up.send_replace(true);
                self.events.push(PrivateEvent::Up { connection: self.connection });
                let Some(topic) = self.protection.clone() else { return Ok(Vec::new()) };
                // Bybit's private acks may carry no req_id: the one subscribe in flight once up is this one.
                self.protection_pending = true;
                let req_id = self.req_id("d");
                let frame = OpRequest::subscribe(&[topic], Some(req_id));
                Ok(vec![serde_json::to_string(&frame).expect("op requests serialize")])
            }
            (Some("subscribe"), Phase::Up) if self.protection_pending => {
                self.protection_pending = false;
                let refused = (!reply.is_success() && !reply.message().contains("already subscribed"))
                    .then(|| reply.message().to_owned());
                let topic = self.protection.clone().unwrap_or_default();
                self.events.push(PrivateEvent::Protection { connection: self.connection, topic, refused });
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    fn on_data(&mut self, topic: &str, text: &str) -> Step {
        fn parse<T: serde::de::DeserializeOwned>(text: &str, topic: &str) -> Result<Vec<T>, String> {
            serde_json::from_str::<PrivateMessage<T>>(text).map(|m| m.data).map_err(|e| format!("{topic}: {e}"))
        }
        // Anything else (a `dcp.*` push among them) carries nothing the engine books.
        let Ok(parsed) = PrivateTopic::parse(topic) else { return Ok(Vec::new()) };
        let event = match parsed.stream {
            PrivateStream::Order => PrivateEvent::Orders(parse(text, topic)?),
            PrivateStream::Execution => PrivateEvent::Executions(parse(text, topic)?),
            PrivateStream::ExecutionFast => PrivateEvent::FastExecutions(parse(text, topic)?),
            PrivateStream::Position => PrivateEvent::Positions(parse(text, topic)?),
            PrivateStream::Wallet => PrivateEvent::Wallets(parse(text, topic)?),
        };
        self.events.push(event);
        Ok(Vec::new())
    }
}

impl Session for PrivateSession {
    type Event = PrivateEvent;

    fn on_connect(&mut self, connection: u64, now: Instant) -> Vec<String> {
        self.connection = connection;
        self.phase = Phase::Authenticating { since: now };
        self.protection_pending = false;
        let expires = self.clock.server_now_ms() + i64::try_from(self.auth_expiry.as_millis()).unwrap_or(i64::MAX);
        let signature = self.credentials.ws_auth_signature(expires);
        let req_id = self.req_id("a");
        let frame = OpRequest::auth(self.credentials.api_key(), expires, &signature, Some(req_id));
        vec![serde_json::to_string(&frame).expect("op requests serialize")]
    }

    fn on_text(&mut self, text: &str, now: Instant) -> Step {
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| format!("unreadable frame: {e}"))?;
        match envelope.topic.as_deref() {
            Some(topic) => self.on_data(topic, text),
            None => {
                let reply: OpResponse = serde_json::from_str(text).map_err(|e| format!("unreadable reply: {e}"))?;
                if reply.is_pong() { Ok(Vec::new()) } else { self.on_reply(&reply, now) }
            }
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Authenticating { since } | Phase::Subscribing { since } => Some(since + self.reply_timeout),
            Phase::Up | Phase::Closed => None,
        }
    }

    fn on_deadline(&mut self, _now: Instant) -> Step {
        match self.phase {
            Phase::Authenticating { .. } => Err("no answer to auth".into()),
            Phase::Subscribing { .. } => Err("no answer to subscribe".into()),
            Phase::Up | Phase::Closed => Ok(Vec::new()),
        }
    }

    fn on_disconnect(&mut self, reason: &str) {
        let was_up = self.phase == Phase::Up;
        self.phase = Phase::Closed;
        self.up.send_replace(false);
        if was_up || self.connection > 0 {
            self.events.push(PrivateEvent::Down { reason: reason.to_owned() });
        }
    }

    fn ping(&mut self) -> String {
        let req_id = self.req_id("p");
        serde_json::to_string(&OpRequest::ping(Some(req_id))).expect("ping serializes")
    }

    fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    fn take_events(&mut self) -> Vec<PrivateEvent> {
        std::mem::take(&mut self.events)
    }
}

/// A running private supervisor.
pub struct PrivateFeed {
    up: watch::Receiver<bool>,
    events: Option<mpsc::Receiver<PrivateEvent>>,
    status: watch::Receiver<LinkStatus>,
    supervisor: Supervisor,
}

impl PrivateFeed {
    /// Starts the supervisor on the current tokio runtime; `clock` should be the REST client's, synced with
    /// `/v5/market/time`, so the `auth` expiry is right on the exchange's clock. The event channel holds up to
    /// `event_capacity` events; when it is full, new events are dropped and counted in
    /// [`LinkStatus::events_dropped`] (re-read the account over REST then).
    ///
    /// # Errors
    /// `Config` for an unknown topic.
    pub fn start(
        config: PrivateConfig,
        clock: Arc<ClockSync>,
        event_capacity: usize,
    ) -> Result<PrivateFeed, ClientError> {
        let topics: Vec<String> = config.topics.iter().map(ToString::to_string).collect();
        for topic in &topics {
            PrivateTopic::parse(topic).map_err(|e| ClientError::Config { detail: e.to_string() })?;
        }
        let protection = match &config.protection {
            None => None,
            Some(product) => Some(product.topic().ok_or_else(|| ClientError::Config {
                detail: format!("no dcp topic for the disconnection-protection product {product}"),
            })?),
        };
        let (up_tx, up) = watch::channel(false);
        let session = PrivateSession {
            credentials: config.credentials,
            clock,
            topics,
            protection: protection.map(str::to_owned),
            protection_pending: false,
            auth_expiry: config.auth_expiry,
            reply_timeout: config.timing.reply_timeout,
            phase: Phase::Closed,
            connection: 0,
            next_req: 0,
            events: Vec::new(),
            up: up_tx,
        };
        let (events_tx, events) = mpsc::channel(event_capacity.max(1));
        let (status_tx, status) = watch::channel(LinkStatus::default());
        let supervisor = Supervisor::spawn(|shutdown| {
            supervise(config.url, config.timing, config.seed, session, events_tx, status_tx, shutdown)
        });
        Ok(PrivateFeed { up, events: Some(events), status, supervisor })
    }

    /// True while authenticated and subscribed.
    #[must_use]
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Up/down as a watch channel.
    #[must_use]
    pub fn up(&self) -> watch::Receiver<bool> {
        self.up.clone()
    }

    /// The event stream; `None` after the first call.
    pub fn take_events(&mut self) -> Option<mpsc::Receiver<PrivateEvent>> {
        self.events.take()
    }

    #[must_use]
    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }

    /// Closes the socket and waits for the supervisor to end.
    pub async fn shutdown(self) {
        self.supervisor.stop().await;
    }
}
