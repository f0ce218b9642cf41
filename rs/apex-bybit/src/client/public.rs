//! The public-stream supervisor: keeps one linear public socket subscribed to the configured books, trades, tickers
//! and klines across disconnects, and maintains each book with `apex-book`'s sequencing rules.
//!
//! A book counts as synced only from a fresh snapshot on; a delta out of sequence (a gap, a repeat, a step back),
//! a crossed book or an unparsable level marks it unsynced and resubscribes its topic (unsubscribe + subscribe, the
//! recovery nautilus uses) to get a new snapshot. A `u`=1 snapshot after a service restart rebases the book. After a
//! reconnect every topic is subscribed exactly once; an "already subscribed" rejection, which drops the whole batch,
//! re-sends only the batch's other topics. A snapshot or ack that does not come within the reply timeout drops the
//! connection.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arc_swap::ArcSwap;

use apex_book::{Applied, BookError, L2Book, Level, UpdateKind};
use apex_core::{Scale, Side};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::client::ClientError;
use crate::client::ws::{LinkStatus, Session, Step, Supervisor, Timing, supervise};
use crate::messages::{
    Envelope, Kline, KlineMessage, MessageKind, OpRequest, OpResponse, OrderbookMessage, PublicTopic,
    PublicTradeMessage, Ticker, TickerMessage,
};

/// A book to maintain: its stream depth and the fixed-point scales of its prices and sizes (from instruments-info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSpec {
    pub symbol: String,
    /// One of [`crate::ORDERBOOK_DEPTHS`].
    pub depth: u32,
    pub price_scale: Scale,
    pub qty_scale: Scale,
}

/// What the public supervisor subscribes to.
#[derive(Debug, Clone)]
pub struct PublicConfig {
    /// The public linear stream, e.g. `wss://stream.bybit.com/v5/public/linear`.
    pub url: String,
    pub books: Vec<BookSpec>,
    /// Symbols whose `publicTrade` to forward.
    pub trades: Vec<String>,
    /// Symbols whose `tickers` to forward (deltas merged into the full ticker).
    pub tickers: Vec<String>,
    /// `(interval, symbol)` pairs whose `kline` to forward.
    pub klines: Vec<(String, String)>,
    /// Levels per side in each published [`BookSnapshot`].
    pub snapshot_levels: usize,
    /// Topics per subscribe request (Bybit caps spot at 10; linear has no cap, small batches limit what one
    /// rejection drops).
    pub batch_size: usize,
    pub timing: Timing,
    /// Seed of the reconnect jitter.
    pub seed: u64,
    /// Forward every parsed `orderbook` message as a [`PublicEvent::Book`], for a consumer that keeps its own book
    /// (the live engine's feature engine). Off by default.
    pub forward_books: bool,
    /// Append every frame received, as received, one per line, to this file: a recording `apexctl fetch` reads
    /// (order-book and trade messages in Bybit's archive line format). Off by default.
    pub record: Option<std::path::PathBuf>,
}

impl PublicConfig {
    #[must_use]
    pub fn new(url: impl Into<String>) -> PublicConfig {
        PublicConfig {
            url: url.into(),
            books: Vec::new(),
            trades: Vec::new(),
            tickers: Vec::new(),
            klines: Vec::new(),
            snapshot_levels: 50,
            batch_size: 10,
            timing: Timing::default(),
            seed: 0,
            forward_books: false,
            record: None,
        }
    }

    /// Every topic, in subscription order.
    ///
    /// # Errors
    /// `Config` for a topic the stream does not serve (a depth outside {1, 50, 200, 1000}, a bad interval) or a
    /// symbol booked twice.
    pub fn topics(&self) -> Result<Vec<PublicTopic>, ClientError> {
        let mut topics = Vec::new();
        let mut book_symbols = BTreeSet::new();
        for book in &self.books {
            if !book_symbols.insert(book.symbol.as_str()) {
                return Err(ClientError::Config { detail: format!("book {} configured twice", book.symbol) });
            }
            topics.push(format!("orderbook.{}.{}", book.depth, book.symbol));
        }
        topics.extend(self.trades.iter().map(|s| format!("publicTrade.{s}")));
        topics.extend(self.tickers.iter().map(|s| format!("tickers.{s}")));
        topics.extend(self.klines.iter().map(|(i, s)| format!("kline.{i}.{s}")));
        let mut seen = BTreeSet::new();
        let mut parsed = Vec::new();
        for topic in topics {
            let t = PublicTopic::parse(&topic).map_err(|e| ClientError::Config { detail: e.to_string() })?;
            if seen.insert(topic) {
                parsed.push(t);
            }
        }
        Ok(parsed)
    }
}

/// A book as last seen: the best levels, whether it mirrors the exchange, and where in the sequence it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSnapshot {
    pub symbol: String,
    /// True from a fresh snapshot until a gap, a disconnect or a resubscription.
    pub synced: bool,
    /// `u` of the last applied message.
    pub update_id: u64,
    /// `seq` of the last applied message.
    pub seq: i64,
    /// `ts` (ms) of the last applied message.
    pub ts: i64,
    /// `cts` (ms, matching-engine time) of the last applied message, when sent.
    pub cts: Option<i64>,
    /// Best levels first, in units of the spec's scales.
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    pub price_scale: Scale,
    pub qty_scale: Scale,
    /// Messages applied since the supervisor started (any connection).
    pub applied: u64,
}

impl BookSnapshot {
    fn empty(spec: &BookSpec) -> BookSnapshot {
        BookSnapshot {
            symbol: spec.symbol.clone(),
            synced: false,
            update_id: 0,
            seq: 0,
            ts: 0,
            cts: None,
            bids: Vec::new(),
            asks: Vec::new(),
            price_scale: spec.price_scale,
            qty_scale: spec.qty_scale,
            applied: 0,
        }
    }

    /// `apex-book`'s checksum (CRC-32 of the best `n` levels, exact decimals) of these levels: equal for two books
    /// with the same top `n`, so a client and a venue can compare books. `n` is capped at the levels held.
    #[must_use]
    pub fn checksum(&self, n: usize) -> u32 {
        let mut book = L2Book::new(self.price_scale, self.qty_scale);
        let top = |levels: &[Level]| levels.iter().take(n).copied().collect::<Vec<_>>();
        // A snapshot of well-formed levels cannot fail to apply; a crossed one still applies (and is reported).
        let _ = book.apply(UpdateKind::Snapshot, self.update_id, self.seq, self.ts, &top(&self.bids), &top(&self.asks));
        book.checksum(n)
    }
}

/// Why a message could not be applied to a [`BookTracker`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// A level that does not fit the spec's scales (not a decimal, too many decimals).
    #[error("{side} level: {detail}")]
    Level { side: &'static str, detail: String },
    /// Refused or suspect by apex-book's sequencing rules (gap, awaiting a snapshot, crossed, negative size).
    #[error(transparent)]
    Book(#[from] BookError),
}

/// One book fed with raw `orderbook.*` messages: levels parsed through the spec's scales (exact decimals, no float),
/// then applied with apex-book's snapshot/delta rules. What the supervisor runs per book, usable on its own.
#[derive(Debug, Clone)]
pub struct BookTracker {
    spec: BookSpec,
    book: L2Book,
    bids: Vec<Level>,
    asks: Vec<Level>,
}

impl BookTracker {
    #[must_use]
    pub fn new(spec: BookSpec) -> BookTracker {
        BookTracker { book: L2Book::new(spec.price_scale, spec.qty_scale), spec, bids: Vec::new(), asks: Vec::new() }
    }

    #[must_use]
    pub fn spec(&self) -> &BookSpec {
        &self.spec
    }

    #[must_use]
    pub fn book(&self) -> &L2Book {
        &self.book
    }

    /// The levels of the last message applied or refused (empty after a level that did not parse).
    #[must_use]
    pub fn last_levels(&self) -> (&[Level], &[Level]) {
        (&self.bids, &self.asks)
    }

    /// Forgets the book: deltas are dropped until the next snapshot (a new connection).
    pub fn reset(&mut self) {
        self.book = L2Book::new(self.spec.price_scale, self.spec.qty_scale);
    }

    /// Applies one message.
    ///
    /// # Errors
    /// `Level` for an unparsable level (nothing applied); `Book` as [`L2Book::apply`].
    pub fn apply(&mut self, message: &OrderbookMessage<'_>) -> Result<Applied, TrackError> {
        fn parse(
            levels: &[crate::messages::Level<'_>],
            (ps, qs): (Scale, Scale),
            side: &'static str,
            out: &mut Vec<Level>,
        ) -> Result<(), TrackError> {
            out.clear();
            for crate::messages::Level(price, size) in levels {
                let bad = |e: apex_core::ScaleError| TrackError::Level { side, detail: e.to_string() };
                out.push(Level { price: ps.parse(price).map_err(bad)?, qty: qs.parse(size).map_err(bad)? });
            }
            Ok(())
        }
        let scales = (self.spec.price_scale, self.spec.qty_scale);
        parse(&message.data.b, scales, "bid", &mut self.bids)?;
        parse(&message.data.a, scales, "ask", &mut self.asks)?;
        let kind = match message.kind {
            MessageKind::Snapshot => UpdateKind::Snapshot,
            MessageKind::Delta => UpdateKind::Delta,
        };
        let d = &message.data;
        Ok(self.book.apply(kind, d.u, d.seq, message.ts, &self.bids, &self.asks)?)
    }
}

/// What the public supervisor reports besides book state.
#[derive(Debug, Clone, PartialEq)]
pub enum PublicEvent {
    /// Connection number `connection` opened.
    Connected {
        connection: u64,
    },
    Disconnected {
        reason: String,
    },
    /// The exchange refused a topic (`handler not found`); it is not retried.
    SubscribeFailed {
        topic: String,
        reason: String,
    },
    /// A book lost sync and its topic was resubscribed.
    BookResync {
        symbol: String,
        reason: String,
    },
    /// A book is synced again (`rebased` for a snapshot whose `u` went back, e.g. `u`=1 after a restart).
    BookSynced {
        symbol: String,
        update_id: u64,
        rebased: bool,
    },
    /// Trade prints, with when their frame arrived (the clock a tick-to-order latency starts from).
    Trades {
        message: PublicTradeMessage<'static>,
        received: Instant,
    },
    /// The full ticker after this message (deltas merged).
    Ticker(Box<Ticker>),
    Kline {
        topic: String,
        kline: Kline,
    },
    /// With [`PublicConfig::forward_books`]: one parsed `orderbook` message, in arrival order, whatever the book
    /// made of it (a consumer applying it to its own book with apex-book reaches the same verdict).
    Book(Box<BookMessage>),
}

/// One `orderbook` message as parsed (levels in the book spec's units), and when its frame was received.
#[derive(Debug, Clone, PartialEq)]
pub struct BookMessage {
    pub symbol: String,
    pub kind: UpdateKind,
    pub update_id: u64,
    pub seq: i64,
    /// `ts` (ms) and `cts` (ms, when sent) of the message.
    pub ts: i64,
    pub cts: Option<i64>,
    pub bids: Vec<Level>,
    pub asks: Vec<Level>,
    pub received: Instant,
}

/// One book's published snapshots: readers load the newest without a lock (arc-swap); `changed` waits for the next.
#[derive(Debug, Clone)]
pub struct BookView {
    current: Arc<ArcSwap<BookSnapshot>>,
    updates: watch::Receiver<u64>,
}

impl BookView {
    /// The newest snapshot (an atomic load; the supervisor never waits for a reader, nor a reader for it).
    #[must_use]
    pub fn snapshot(&self) -> Arc<BookSnapshot> {
        self.current.load_full()
    }

    /// Whether the newest snapshot mirrors the exchange.
    #[must_use]
    pub fn synced(&self) -> bool {
        self.current.load().synced
    }

    /// Waits until a snapshot newer than the last one this view saw is published.
    ///
    /// # Errors
    /// When the supervisor has ended.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.updates.changed().await
    }

    /// Waits for the first snapshot (the newest one included) that satisfies `condition`.
    ///
    /// # Errors
    /// When the supervisor ends first.
    pub async fn wait_for(
        &mut self,
        condition: impl Fn(&BookSnapshot) -> bool,
    ) -> Result<Arc<BookSnapshot>, watch::error::RecvError> {
        loop {
            // Marked seen before the load: a snapshot stored after it bumps the counter again, so none is missed.
            self.updates.borrow_and_update();
            let snapshot = self.snapshot();
            if condition(&snapshot) {
                return Ok(snapshot);
            }
            self.changed().await?;
        }
    }
}

struct BookState {
    tracker: BookTracker,
    current: Arc<ArcSwap<BookSnapshot>>,
    /// Counts publications, for readers that wait for the next one.
    updates: watch::Sender<u64>,
    /// Set while a snapshot is awaited (after subscribe or a resync), with the instant the wait began.
    awaiting_since: Option<Instant>,
}

#[derive(Debug)]
struct Pending {
    op: &'static str,
    topics: Vec<String>,
    sent_at: Instant,
}

/// Counters of what the supervisor did, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublicStats {
    pub messages: u64,
    pub subscribe_requests: u64,
    /// Topics sent in subscribe requests, counted once per topic per request.
    pub topics_subscribed: u64,
    pub resyncs: u64,
    pub gaps: u64,
}

struct PublicSession {
    topics: Vec<String>,
    batch_size: usize,
    snapshot_levels: usize,
    reply_timeout: std::time::Duration,
    books: BTreeMap<String, BookState>,
    tickers: BTreeMap<String, Ticker>,
    pending: BTreeMap<String, Pending>,
    failed: BTreeSet<String>,
    next_req: u64,
    events: Vec<PublicEvent>,
    stats: watch::Sender<PublicStats>,
    forward_books: bool,
    /// [`PublicConfig::record`]'s file (flushed when the supervisor ends).
    recorder: Option<std::io::BufWriter<std::fs::File>>,
}

impl PublicSession {
    fn request(&mut self, op: &'static str, topics: Vec<String>, now: Instant) -> String {
        self.next_req += 1;
        let req_id = format!("{}{}", &op[..1], self.next_req);
        let frame = match op {
            "subscribe" => OpRequest::subscribe(&topics, Some(req_id.clone())),
            _ => OpRequest::unsubscribe(&topics, Some(req_id.clone())),
        };
        if op == "subscribe" {
            let n = topics.len() as u64;
            self.stats.send_modify(|s| {
                s.subscribe_requests += 1;
                s.topics_subscribed += n;
            });
        }
        self.pending.insert(req_id, Pending { op, topics, sent_at: now });
        serde_json::to_string(&frame).expect("op requests serialize")
    }

    fn subscribe_all(&mut self, topics: Vec<String>, now: Instant) -> Vec<String> {
        let chunks: Vec<Vec<String>> = topics.chunks(self.batch_size.max(1)).map(<[String]>::to_vec).collect();
        chunks.into_iter().map(|chunk| self.request("subscribe", chunk, now)).collect()
    }

    fn publish(state: &mut BookState, levels: usize, msg_cts: Option<i64>, applied: u64) {
        let book = state.tracker.book();
        let previous = state.current.load();
        let mut next = BookSnapshot {
            symbol: previous.symbol.clone(),
            synced: book.is_synced() && state.awaiting_since.is_none(),
            update_id: match book.state() {
                apex_book::SyncState::Synced { last_update_id } | apex_book::SyncState::Stale { last_update_id } => {
                    last_update_id
                }
                apex_book::SyncState::AwaitingFirstSnapshot => 0,
            },
            seq: book.last_seq(),
            ts: book.last_ts(),
            cts: msg_cts.or(previous.cts),
            bids: Vec::with_capacity(levels),
            asks: Vec::with_capacity(levels),
            price_scale: previous.price_scale,
            qty_scale: previous.qty_scale,
            applied: previous.applied + applied,
        };
        book.top_n_into(Side::Buy, levels, &mut next.bids);
        book.top_n_into(Side::Sell, levels, &mut next.asks);
        drop(previous);
        state.current.store(Arc::new(next));
        state.updates.send_modify(|n| *n += 1);
    }

    fn mark_unsynced(state: &BookState) {
        let previous = state.current.load_full();
        if previous.synced {
            state.current.store(Arc::new(BookSnapshot { synced: false, ..(*previous).clone() }));
            state.updates.send_modify(|n| *n += 1);
        }
    }

    /// A book lost sync: unsynced now, and one unsubscribe + subscribe unless a snapshot is already awaited.
    fn resync(&mut self, topic: &str, reason: String, now: Instant) -> Vec<String> {
        let Some(state) = self.books.get_mut(topic) else { return Vec::new() };
        Self::mark_unsynced(state);
        self.stats.send_modify(|s| s.resyncs += 1);
        self.events.push(PublicEvent::BookResync { symbol: state.tracker.spec().symbol.clone(), reason });
        if state.awaiting_since.is_some() {
            return Vec::new();
        }
        state.awaiting_since = Some(now);
        let topics = vec![topic.to_owned()];
        vec![self.request("unsubscribe", topics.clone(), now), self.request("subscribe", topics, now)]
    }

    fn on_book(&mut self, text: &str, now: Instant) -> Step {
        let message: OrderbookMessage<'_> =
            serde_json::from_str(text).map_err(|e| format!("orderbook message: {e}"))?;
        let topic = message.topic.as_ref();
        let Some(state) = self.books.get_mut(topic) else { return Ok(Vec::new()) };
        let d = &message.data;
        let result = state.tracker.apply(&message);
        if self.forward_books && !matches!(result, Err(TrackError::Level { .. })) {
            let (bids, asks) = state.tracker.last_levels();
            self.events.push(PublicEvent::Book(Box::new(BookMessage {
                symbol: state.tracker.spec().symbol.clone(),
                kind: match message.kind {
                    MessageKind::Snapshot => UpdateKind::Snapshot,
                    MessageKind::Delta => UpdateKind::Delta,
                },
                update_id: d.u,
                seq: d.seq,
                ts: message.ts,
                cts: message.cts,
                bids: bids.to_vec(),
                asks: asks.to_vec(),
                received: now,
            })));
        }
        match result {
            Ok(Applied::Snapshot { rebased }) => {
                let was_waiting = state.awaiting_since.take().is_some();
                Self::publish(state, self.snapshot_levels, message.cts, 1);
                if was_waiting || rebased {
                    let symbol = state.tracker.spec().symbol.clone();
                    self.events.push(PublicEvent::BookSynced { symbol, update_id: d.u, rebased });
                }
                Ok(Vec::new())
            }
            Ok(Applied::Delta) => {
                Self::publish(state, self.snapshot_levels, message.cts, 1);
                Ok(Vec::new())
            }
            Ok(Applied::DroppedBeforeSnapshot) | Err(TrackError::Book(BookError::AwaitingSnapshot { .. })) => {
                Ok(Vec::new())
            }
            Err(error) => {
                if matches!(error, TrackError::Book(BookError::Gap { .. })) {
                    self.stats.send_modify(|s| s.gaps += 1);
                }
                let topic = topic.to_owned();
                Ok(self.resync(&topic, error.to_string(), now))
            }
        }
    }

    fn on_ack(&mut self, reply: &OpResponse, now: Instant) -> Step {
        let key = match reply.request_id() {
            Some(id) if self.pending.contains_key(id) => id.to_owned(),
            // Some acks echo no req_id: match the oldest request of that op.
            _ => match self.pending.iter().find(|(_, p)| Some(p.op) == reply.op.as_deref()) {
                Some((id, _)) => id.clone(),
                None => return Ok(Vec::new()),
            },
        };
        let pending = self.pending.remove(&key).expect("key is pending");
        if reply.is_success() || pending.op == "unsubscribe" {
            return Ok(Vec::new());
        }
        // A refused subscribe drops the whole batch. The named topic is either already subscribed (fine, it needs
        // no request) or unknown (reported, never retried); the batch's other topics are sent again.
        let message = reply.message().to_owned();
        let named = message.split("topic:").nth(1).map(str::trim).map(str::to_owned);
        let mut retry = Vec::new();
        for topic in pending.topics {
            if Some(&topic) == named.as_ref() {
                if !message.contains("already subscribed") {
                    self.failed.insert(topic.clone());
                    self.events.push(PublicEvent::SubscribeFailed { topic, reason: message.clone() });
                }
            } else if named.is_some() {
                retry.push(topic);
            } else {
                self.failed.insert(topic.clone());
                self.events.push(PublicEvent::SubscribeFailed { topic, reason: message.clone() });
            }
        }
        for topic in &self.failed {
            if let Some(state) = self.books.get_mut(topic) {
                state.awaiting_since = None;
            }
        }
        Ok(self.subscribe_all(retry, now))
    }
}

impl Session for PublicSession {
    type Event = PublicEvent;

    fn on_connect(&mut self, connection: u64, now: Instant) -> Vec<String> {
        self.pending.clear();
        self.tickers.clear();
        for state in self.books.values_mut() {
            // Deltas of the new connection wait for its snapshot.
            state.tracker.reset();
            state.awaiting_since = Some(now);
            Self::mark_unsynced(state);
        }
        for topic in &self.failed {
            if let Some(state) = self.books.get_mut(topic) {
                state.awaiting_since = None;
            }
        }
        self.events.push(PublicEvent::Connected { connection });
        let topics: Vec<String> = self.topics.iter().filter(|t| !self.failed.contains(*t)).cloned().collect();
        self.subscribe_all(topics, now)
    }

    fn on_text(&mut self, text: &str, now: Instant) -> Step {
        self.stats.send_modify(|s| s.messages += 1);
        if let Some(recorder) = &mut self.recorder {
            use std::io::Write as _;
            // A recording that cannot be written stops recording; it never stops the feed.
            if writeln!(recorder, "{text}").is_err() {
                self.recorder = None;
            }
        }
        let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| format!("unreadable frame: {e}"))?;
        let Some(topic) = envelope.topic.as_deref() else {
            let reply: OpResponse = serde_json::from_str(text).map_err(|e| format!("unreadable reply: {e}"))?;
            if reply.is_pong() {
                return Ok(Vec::new());
            }
            return self.on_ack(&reply, now);
        };
        if topic.starts_with("orderbook.") {
            self.on_book(text, now)
        } else if topic.starts_with("publicTrade.") {
            let message: PublicTradeMessage<'_> = serde_json::from_str(text).map_err(|e| format!("{topic}: {e}"))?;
            self.events.push(PublicEvent::Trades { message: message.into_owned(), received: now });
            Ok(Vec::new())
        } else if topic.starts_with("tickers.") {
            let message: TickerMessage = serde_json::from_str(text).map_err(|e| format!("{topic}: {e}"))?;
            let symbol = message.data.symbol.clone();
            let ticker = match message.kind {
                MessageKind::Snapshot => self.tickers.entry(symbol).insert_entry(message.data).into_mut(),
                MessageKind::Delta => {
                    let entry = self.tickers.entry(symbol).or_default();
                    entry.merge(&message.data);
                    if entry.symbol.is_empty() {
                        entry.symbol.clone_from(&message.data.symbol);
                    }
                    entry
                }
            };
            self.events.push(PublicEvent::Ticker(Box::new(ticker.clone())));
            Ok(Vec::new())
        } else if topic.starts_with("kline.") {
            let message: KlineMessage = serde_json::from_str(text).map_err(|e| format!("{topic}: {e}"))?;
            for kline in message.data {
                self.events.push(PublicEvent::Kline { topic: message.topic.clone(), kline });
            }
            Ok(Vec::new())
        } else {
            Ok(Vec::new())
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let acks = self.pending.values().map(|p| p.sent_at);
        let snapshots = self.books.values().filter_map(|b| b.awaiting_since);
        acks.chain(snapshots).min().map(|t| t + self.reply_timeout)
    }

    fn on_deadline(&mut self, now: Instant) -> Step {
        let overdue = |t: Instant| t + self.reply_timeout <= now;
        if let Some(p) = self.pending.values().find(|p| overdue(p.sent_at)) {
            return Err(format!("no answer to {} {:?} within {} ms", p.op, p.topics, self.reply_timeout.as_millis()));
        }
        if let Some((topic, _)) = self.books.iter().find(|(_, b)| b.awaiting_since.is_some_and(overdue)) {
            return Err(format!("no snapshot of {topic} within {} ms", self.reply_timeout.as_millis()));
        }
        Ok(Vec::new())
    }

    fn on_disconnect(&mut self, reason: &str) {
        for state in self.books.values() {
            Self::mark_unsynced(state);
        }
        self.events.push(PublicEvent::Disconnected { reason: reason.to_owned() });
    }

    fn ping(&mut self) -> String {
        self.next_req += 1;
        serde_json::to_string(&OpRequest::ping(Some(format!("p{}", self.next_req)))).expect("ping serializes")
    }

    fn is_up(&self) -> bool {
        true
    }

    fn take_events(&mut self) -> Vec<PublicEvent> {
        std::mem::take(&mut self.events)
    }
}

/// A running public supervisor: book state on watch channels, everything else as [`PublicEvent`]s.
pub struct PublicFeed {
    books: BTreeMap<String, BookView>,
    events: Option<mpsc::Receiver<PublicEvent>>,
    status: watch::Receiver<LinkStatus>,
    stats: watch::Receiver<PublicStats>,
    supervisor: Supervisor,
}

impl PublicFeed {
    /// Starts the supervisor on the current tokio runtime. The event channel holds up to `event_capacity` events;
    /// when it is full, new events are dropped and counted in [`LinkStatus::events_dropped`].
    ///
    /// # Errors
    /// `Config` for a topic the stream does not serve, or a recording file that cannot be created.
    pub fn start(config: PublicConfig, event_capacity: usize) -> Result<PublicFeed, ClientError> {
        let topics: Vec<String> = config.topics()?.iter().map(ToString::to_string).collect();
        let recorder = match &config.record {
            Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| {
                ClientError::Config { detail: format!("{}: cannot record the public stream: {e}", path.display()) }
            })?)),
            None => None,
        };
        let mut books = BTreeMap::new();
        let mut receivers = BTreeMap::new();
        for spec in &config.books {
            let current = Arc::new(ArcSwap::from_pointee(BookSnapshot::empty(spec)));
            let (updates, seen) = watch::channel(0);
            receivers.insert(spec.symbol.clone(), BookView { current: current.clone(), updates: seen });
            let state = BookState { tracker: BookTracker::new(spec.clone()), current, updates, awaiting_since: None };
            books.insert(format!("orderbook.{}.{}", spec.depth, spec.symbol), state);
        }
        let (stats_tx, stats) = watch::channel(PublicStats::default());
        let session = PublicSession {
            topics,
            batch_size: config.batch_size,
            snapshot_levels: config.snapshot_levels,
            reply_timeout: config.timing.reply_timeout,
            books,
            tickers: BTreeMap::new(),
            pending: BTreeMap::new(),
            failed: BTreeSet::new(),
            next_req: 0,
            events: Vec::new(),
            stats: stats_tx,
            forward_books: config.forward_books,
            recorder,
        };
        let (events_tx, events) = mpsc::channel(event_capacity.max(1));
        let (status_tx, status) = watch::channel(LinkStatus::default());
        let supervisor = Supervisor::spawn(|shutdown| {
            supervise(config.url, config.timing, config.seed, session, events_tx, status_tx, shutdown)
        });
        Ok(PublicFeed { books: receivers, events: Some(events), status, stats, supervisor })
    }

    /// The book of `symbol`: its newest snapshot, lock-free, and `changed()` to wait for the next.
    #[must_use]
    pub fn book(&self, symbol: &str) -> Option<BookView> {
        self.books.get(symbol).cloned()
    }

    /// The newest snapshot of `symbol`'s book (an atomic load, without cloning the view).
    #[must_use]
    pub fn snapshot(&self, symbol: &str) -> Option<Arc<BookSnapshot>> {
        self.books.get(symbol).map(BookView::snapshot)
    }

    /// True when the book of `symbol` mirrors the exchange right now: no order should be priced off it otherwise.
    #[must_use]
    pub fn is_synced(&self, symbol: &str) -> bool {
        self.books.get(symbol).is_some_and(BookView::synced)
    }

    /// The event stream; `None` after the first call.
    pub fn take_events(&mut self) -> Option<mpsc::Receiver<PublicEvent>> {
        self.events.take()
    }

    #[must_use]
    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.status.clone()
    }

    #[must_use]
    pub fn stats(&self) -> PublicStats {
        *self.stats.borrow()
    }

    /// Closes the socket and waits for the supervisor to end.
    pub async fn shutdown(self) {
        self.supervisor.stop().await;
    }
}
