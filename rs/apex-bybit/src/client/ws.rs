//! The connection loop both WebSocket supervisors share: connect with a timeout, run a session (ping every
//! interval, drop the link when nothing arrives for the silence timeout or a protocol deadline passes), then reconnect
//! after a jittered exponential backoff, until shut down. What a session says and expects is a [`Session`].

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

use crate::client::backoff::Backoff;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Timings of a supervised WebSocket. Every one is measured on tokio's clock.
#[derive(Debug, Clone)]
pub struct Timing {
    /// A `ping` op this often (Bybit asks for 20 s).
    pub ping_interval: Duration,
    /// Nothing received for this long (pongs included) means the link is dead.
    pub silence_timeout: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for an ack (auth, subscribe) or for the snapshot that follows a book subscription.
    pub reply_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// A session that lasted this long resets the backoff to its base.
    pub healthy_after: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            ping_interval: Duration::from_secs(20),
            silence_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(30),
        }
    }
}

/// The state of a supervised link, published on a watch channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Connected (and, for the private stream, authenticated and subscribed).
    pub up: bool,
    /// Connections opened so far.
    pub connections: u64,
    /// Why the last connection ended or failed.
    pub last_error: Option<String>,
    /// Events dropped because the consumer did not keep up (the channel was full). Book and up/down state never
    /// depend on events; a consumer that sees this grow should re-read the account state over REST.
    pub events_dropped: u64,
}

/// What to do after a frame or a deadline: frames to send, or a reason to drop the connection.
pub(crate) type Step = Result<Vec<String>, String>;

/// The protocol of one socket. Methods are synchronous; the events they produce are collected with
/// [`Session::take_events`] and delivered by the loop without waiting: a full channel drops the event (counted in
/// [`LinkStatus::events_dropped`]) rather than stall the socket, its pings and the books.
pub(crate) trait Session {
    type Event;
    /// A new connection is open: reset per-connection state and return the first frames (subscribe, auth).
    fn on_connect(&mut self, connection: u64, now: Instant) -> Vec<String>;
    /// A text frame arrived.
    fn on_text(&mut self, text: &str, now: Instant) -> Step;
    /// The earliest instant something awaited (ack, snapshot) becomes overdue.
    fn deadline(&self) -> Option<Instant>;
    /// [`Session::deadline`] passed.
    fn on_deadline(&mut self, now: Instant) -> Step;
    /// The connection ended (or could not be opened).
    fn on_disconnect(&mut self, reason: &str);
    /// The ping frame.
    fn ping(&mut self) -> String;
    /// Whether the session counts as up for [`LinkStatus::up`].
    fn is_up(&self) -> bool;
    fn take_events(&mut self) -> Vec<Self::Event>;
}

/// A spawned supervisor and the switch that ends it. Dropping the handle flips the switch, so a feed dropped without
/// `shutdown` does not leave its socket open and reconnecting.
pub(crate) struct Supervisor {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Spawns `run(switch)` on the current tokio runtime.
    pub(crate) fn spawn<F>(run: impl FnOnce(watch::Receiver<bool>) -> F) -> Supervisor
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (shutdown, switch) = watch::channel(false);
        Supervisor { shutdown, task: tokio::spawn(run(switch)) }
    }

    /// Flips the switch and waits for the task to end.
    pub(crate) async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Runs `session` on `url` until `shutdown` turns true.
pub(crate) async fn supervise<S: Session>(
    url: String,
    timing: Timing,
    seed: u64,
    mut session: S,
    events: mpsc::Sender<S::Event>,
    status: watch::Sender<LinkStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(timing.backoff_base, timing.backoff_max, seed);
    let config = WebSocketConfig::default().max_message_size(Some(16 << 20)).max_frame_size(Some(16 << 20));
    let mut connections = 0u64;
    while !*shutdown.borrow() {
        let connect = timeout(timing.connect_timeout, connect_async_with_config(url.as_str(), Some(config), true));
        let opened = tokio::select! {
            _ = shutdown.changed() => break,
            result = connect => match result {
                Err(_) => Err(format!("connect: no answer within {} ms", timing.connect_timeout.as_millis())),
                Ok(Err(e)) => Err(format!("connect: {e}")),
                Ok(Ok((socket, _))) => Ok(socket),
            },
        };
        let reason = match opened {
            Err(reason) => reason,
            Ok(mut socket) => {
                connections += 1;
                status.send_modify(|s| s.connections = connections);
                let started = Instant::now();
                let reason =
                    run(&mut socket, &timing, connections, &mut session, &events, &status, &mut shutdown).await;
                if started.elapsed() >= timing.healthy_after {
                    backoff.reset();
                }
                reason
            }
        };
        session.on_disconnect(&reason);
        let _ = deliver(&mut session, &events, &status);
        tracing::info!(url, reason, "websocket down");
        status.send_modify(|s| {
            s.up = false;
            s.last_error = Some(reason);
        });
        if *shutdown.borrow() {
            break;
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = shutdown.changed() => break,
            () = sleep(delay) => {}
        }
    }
    status.send_modify(|s| s.up = false);
}

/// Hands the session's events to the consumer; returns how many it took.
fn deliver<S: Session>(session: &mut S, events: &mpsc::Sender<S::Event>, status: &watch::Sender<LinkStatus>) -> usize {
    let (mut delivered, mut dropped) = (0, 0);
    for event in session.take_events() {
        match events.try_send(event) {
            Ok(()) => delivered += 1,
            // A closed channel means nobody listens: the watch channels still carry the state.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
        }
    }
    if dropped > 0 {
        tracing::warn!(dropped, "event consumer too slow: events dropped");
        status.send_modify(|s| s.events_dropped += dropped);
    }
    delivered
}

async fn send_all(socket: &mut Socket, frames: Vec<String>) -> Result<(), String> {
    for frame in frames {
        socket.feed(Message::text(frame)).await.map_err(|e| format!("send: {e}"))?;
    }
    socket.flush().await.map_err(|e| format!("send: {e}"))
}

/// One connection's life; returns why it ended.
async fn run<S: Session>(
    socket: &mut Socket,
    timing: &Timing,
    connection: u64,
    session: &mut S,
    events: &mpsc::Sender<S::Event>,
    status: &watch::Sender<LinkStatus>,
    shutdown: &mut watch::Receiver<bool>,
) -> String {
    let mut last_rx = Instant::now();
    let first = session.on_connect(connection, last_rx);
    let _ = deliver(session, events, status);
    if let Err(reason) = send_all(socket, first).await {
        return reason;
    }
    let mut ping = interval_at(last_rx + timing.ping_interval, timing.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let silent_at = last_rx + timing.silence_timeout;
        let deadline = session.deadline();
        let step: Step = tokio::select! {
            _ = shutdown.changed() => {
                let _ = socket.close(None).await;
                return "shut down".into();
            }
            message = socket.next() => {
                let now = Instant::now();
                match message {
                    None => return "closed by the server".into(),
                    Some(Err(e)) => return format!("read: {e}"),
                    Some(Ok(Message::Text(text))) => {
                        last_rx = now;
                        session.on_text(text.as_str(), now)
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return match frame {
                            Some(f) => format!("closed by the server: {} {}", u16::from(f.code), f.reason),
                            None => "closed by the server".into(),
                        };
                    }
                    // Protocol pings are answered by tungstenite on the next flush; any frame shows the link lives.
                    Some(Ok(_)) => {
                        last_rx = now;
                        Ok(Vec::new())
                    }
                }
            }
            _ = ping.tick() => Ok(vec![session.ping()]),
            () = sleep_until(silent_at) => {
                return format!("silent for {} ms", timing.silence_timeout.as_millis());
            }
            () = sleep_until(deadline.unwrap_or(silent_at)), if deadline.is_some() => session.on_deadline(Instant::now()),
        };
        let up = session.is_up();
        if status.borrow().up != up {
            status.send_modify(|s| s.up = up);
        }
        let delivered = deliver(session, events, status);
        match step {
            Ok(frames) if frames.is_empty() => {
                // Answer protocol pings promptly even when nothing else is sent.
                if let Err(reason) = socket.flush().await.map_err(|e| format!("send: {e}")) {
                    return reason;
                }
            }
            Ok(frames) => {
                if let Err(reason) = send_all(socket, frames).await {
                    return reason;
                }
            }
            Err(reason) => {
                let _ = socket.close(None).await;
                return reason;
            }
        }
        // The consumer takes each frame's events before the next frame is read: on a one-thread runtime a burst of
        // buffered frames would otherwise all be parsed (until tokio's budget runs out) before the first is seen.
        // After the frame's own replies, so a resubscription does not wait for the consumer's work.
        if delivered > 0 {
            tokio::task::yield_now().await;
        }
    }
}
