//! State the network tasks share with the simulation thread: the topic table, the last published state of every
//! public topic (book replicas for snapshots, tickers, recent trades, candles), the broadcast channels that fan
//! serialized messages out, the accounts, rate limits and fault switches.
//!
//! The simulation thread writes, network tasks read: each public message is serialized once into `Bytes` and shared
//! by every subscriber (a clone is a reference count).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use apex_book::{Applied, BookError, L2Book};
use apex_bybit::messages::{KLINE_INTERVALS, ORDERBOOK_DEPTHS};
use apex_bybit::{Kline, KlineMessage, Level, MessageKind, OrderbookData, OrderbookMessage, PrivateStream, Ticker};
use apex_core::Side;
use apex_sim::{InstrumentSpec, L2Update};
use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, mpsc};

use crate::clock::VenueClock;
use crate::config::AccountSpec;
use crate::faults::{FaultLog, FaultPlan};
use crate::wire::Units;

/// Messages a slow public subscriber may fall behind before it is resynchronised with fresh snapshots.
pub const PUBLIC_BUFFER: usize = 65_536;
/// Private messages an account's connections may fall behind.
pub const PRIVATE_BUFFER: usize = 4_096;
/// Recent trades kept per symbol (`/v5/market/recent-trade` serves up to 1000).
pub const RECENT_TRADES: usize = 1_000;
/// One-minute candles kept per symbol (a week of market time).
pub const CANDLES: usize = 7 * 1_440;
/// Book checksums kept per order-book topic for the diagnostics endpoint.
pub const CHECKSUM_HISTORY: usize = 8_192;

/// Index of a public topic in the table.
pub type TopicId = u16;

/// What a public topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// `orderbook.{ORDERBOOK_DEPTHS[depth]}.{symbol}`.
    Book {
        symbol: usize,
        depth: usize,
    },
    Trade {
        symbol: usize,
    },
    Ticker {
        symbol: usize,
    },
    /// `kline.{KLINE_INTERVALS[interval]}.{symbol}`.
    Kline {
        symbol: usize,
        interval: usize,
    },
}

/// Every public topic of the venue's symbols, by name and by id.
#[derive(Debug)]
pub struct TopicTable {
    names: Vec<String>,
    kinds: Vec<TopicKind>,
    by_name: HashMap<String, TopicId>,
    subscribers: Vec<AtomicUsize>,
}

impl TopicTable {
    #[must_use]
    pub fn new(symbols: &[String]) -> TopicTable {
        let mut names = Vec::new();
        let mut kinds = Vec::new();
        for (symbol, name) in symbols.iter().enumerate() {
            for (depth, d) in ORDERBOOK_DEPTHS.iter().enumerate() {
                names.push(format!("orderbook.{d}.{name}"));
                kinds.push(TopicKind::Book { symbol, depth });
            }
            names.push(format!("publicTrade.{name}"));
            kinds.push(TopicKind::Trade { symbol });
            names.push(format!("tickers.{name}"));
            kinds.push(TopicKind::Ticker { symbol });
            for (interval, i) in KLINE_INTERVALS.iter().enumerate() {
                names.push(format!("kline.{i}.{name}"));
                kinds.push(TopicKind::Kline { symbol, interval });
            }
        }
        let by_name = names.iter().enumerate().map(|(i, n)| (n.clone(), i as TopicId)).collect();
        let subscribers = names.iter().map(|_| AtomicUsize::new(0)).collect();
        TopicTable { names, kinds, by_name, subscribers }
    }

    #[must_use]
    pub fn id(&self, name: &str) -> Option<TopicId> {
        self.by_name.get(name).copied()
    }

    #[must_use]
    pub fn name(&self, id: TopicId) -> &str {
        &self.names[id as usize]
    }

    #[must_use]
    pub fn kind(&self, id: TopicId) -> TopicKind {
        self.kinds[id as usize]
    }

    /// The id of a symbol's order-book topic of depth index `depth`.
    #[must_use]
    pub fn book(&self, symbol: usize, depth: usize) -> TopicId {
        (symbol * self.per_symbol() + depth) as TopicId
    }

    #[must_use]
    pub fn trade(&self, symbol: usize) -> TopicId {
        (symbol * self.per_symbol() + ORDERBOOK_DEPTHS.len()) as TopicId
    }

    #[must_use]
    pub fn ticker(&self, symbol: usize) -> TopicId {
        self.trade(symbol) + 1
    }

    #[must_use]
    pub fn kline(&self, symbol: usize, interval: usize) -> TopicId {
        self.ticker(symbol) + 1 + interval as TopicId
    }

    fn per_symbol(&self) -> usize {
        ORDERBOOK_DEPTHS.len() + 2 + KLINE_INTERVALS.len()
    }

    /// Counts a subscription in or out (the simulation thread serializes only topics someone listens to).
    pub fn subscribed(&self, id: TopicId, delta: isize) {
        let counter = &self.subscribers[id as usize];
        if delta >= 0 {
            counter.fetch_add(delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            counter.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    #[must_use]
    pub fn has_subscribers(&self, id: TopicId) -> bool {
        self.subscribers[id as usize].load(Ordering::Relaxed) > 0
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A `[price, size]` level as the decimal strings on the wire.
pub type WireLevel = (String, String);

/// One public message, serialized once.
#[derive(Debug, Clone)]
pub struct PublicMsg {
    pub topic: TopicId,
    /// The book update id (0 for other topics): subscribers skip deltas their snapshot already contains.
    pub u: u64,
    /// A book snapshot (which replaces a subscriber's book whatever its `u`).
    pub snapshot: bool,
    pub text: Utf8Bytes,
}

/// One private message of an account.
#[derive(Debug, Clone)]
pub struct PrivateMsg {
    pub stream: PrivateStream,
    pub text: Utf8Bytes,
}

/// The last published state of one order-book topic, to serve snapshots to new subscribers.
#[derive(Debug)]
pub struct BookState {
    /// The wire's `u`: the engine's update id plus what the skip faults added, so not the book's own position.
    pub u: u64,
    pub cts_ms: i64,
    /// Sequenced by the engine's own update ids, which the skip faults leave contiguous.
    book: L2Book,
    /// (u, checksum of the top 50) of recent messages, while the topic has subscribers.
    pub checksums: VecDeque<(u64, u32)>,
}

impl BookState {
    #[must_use]
    pub fn new(units: &Units) -> BookState {
        BookState { u: 0, cts_ms: 0, book: L2Book::new(units.price, units.qty), checksums: VecDeque::new() }
    }

    /// Applies a message of the engine's publisher, published as `u` at `ts_ms` (book time `cts_ms`).
    ///
    /// # Panics
    /// When the engine's stream breaks its contract (a snapshot first, then contiguous ids, no negative size): the
    /// book would silently stop following it.
    pub fn apply(&mut self, update: &L2Update, u: u64, ts_ms: i64, cts_ms: i64) {
        let id = update.update_id;
        match self.book.apply(update.kind, id, update.seq as i64, ts_ms, &update.bids, &update.asks) {
            // A crossed book cannot come from the engine; it is applied, and served, all the same.
            Ok(Applied::Snapshot { .. } | Applied::Delta) | Err(BookError::Crossed { .. }) => {}
            Ok(Applied::DroppedBeforeSnapshot) => {
                panic!("the engine's book stream starts with a snapshot (update id {id})")
            }
            Err(error) => panic!("the engine's book stream is contiguous and well formed: {error}"),
        }
        (self.u, self.cts_ms) = (u, cts_ms);
    }

    /// Bybit's `seq` of the last message.
    #[must_use]
    pub fn seq(&self) -> i64 {
        self.book.last_seq()
    }

    /// Publication time (market ms) of the last message.
    #[must_use]
    pub fn ts_ms(&self) -> i64 {
        self.book.last_ts()
    }

    /// The top `n` levels as wire strings, best first: (bids, asks).
    #[must_use]
    pub fn top(&self, units: &Units, n: usize) -> (Vec<WireLevel>, Vec<WireLevel>) {
        let side = |side| {
            let levels = self.book.top_n(side, n).into_iter();
            levels.map(|l| (units.price(l.price).to_string(), units.qty(l.qty).to_string())).collect()
        };
        (side(Side::Buy), side(Side::Sell))
    }

    /// Checksum of the top 50 now: apex-book's (`bid1p:bid1q:ask1p:ask1q:...`, OKX's layout), the one a client
    /// computes on its rebuilt book.
    #[must_use]
    pub fn checksum(&self) -> u32 {
        self.book.checksum(50)
    }

    /// A snapshot message of the top `depth` levels at the current `u`.
    #[must_use]
    pub fn snapshot(&self, topic: &str, units: &Units, depth: usize) -> Utf8Bytes {
        let (bids, asks) = self.top(units, depth);
        let message = OrderbookMessage {
            topic: topic.into(),
            kind: MessageKind::Snapshot,
            ts: self.ts_ms(),
            data: OrderbookData {
                s: units.symbol.as_str().into(),
                b: bids.into_iter().map(|(p, q)| Level(p.into(), q.into())).collect(),
                a: asks.into_iter().map(|(p, q)| Level(p.into(), q.into())).collect(),
                u: self.u,
                seq: self.seq(),
            },
            cts: Some(self.cts_ms),
        };
        Utf8Bytes::from(serde_json::to_string(&message).expect("book messages serialize"))
    }
}

/// One one-minute candle in units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candle {
    pub start_ms: i64,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume: i64,
    pub turnover: i128,
    pub last_trade_ms: i64,
}

/// One-minute candles of a symbol (oldest first), from which every kline interval is aggregated.
#[derive(Debug, Default)]
pub struct Candles {
    pub minutes: VecDeque<Candle>,
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// Start (epoch ms) of the candle of kline interval `interval` (an entry of `KLINE_INTERVALS`) that contains `ms`.
#[must_use]
pub fn interval_start(interval: &str, ms: i64) -> i64 {
    match interval {
        "D" => ms.div_euclid(DAY_MS) * DAY_MS,
        // Weeks start on Monday 00:00 UTC; 1970-01-01 was a Thursday.
        "W" => (ms.div_euclid(DAY_MS) + 3).div_euclid(7) * 7 * DAY_MS - 3 * DAY_MS,
        "M" => {
            let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
            days_from_civil(y, m, 1) * DAY_MS
        }
        minutes => {
            let span = minutes.parse::<i64>().unwrap_or(1) * MINUTE_MS;
            ms.div_euclid(span) * span
        }
    }
}

/// Start of the candle after the one starting at `start`.
#[must_use]
pub fn interval_next(interval: &str, start: i64) -> i64 {
    match interval {
        "M" => {
            let (y, m, _) = civil_from_days(start.div_euclid(DAY_MS));
            let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            days_from_civil(y, m, 1) * DAY_MS
        }
        "W" => start + 7 * DAY_MS,
        "D" => start + DAY_MS,
        minutes => start + minutes.parse::<i64>().unwrap_or(1) * MINUTE_MS,
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Candles {
    /// Books a trade into its minute (opening minutes, gaps filled at the last close).
    pub fn trade(&mut self, ms: i64, price: i64, qty: i64) {
        self.roll(ms, price);
        let c = self.minutes.back_mut().expect("roll opened a minute");
        c.high = c.high.max(price);
        c.low = c.low.min(price);
        c.close = price;
        c.volume += qty;
        c.turnover += i128::from(price) * i128::from(qty);
        c.last_trade_ms = ms;
    }

    /// Opens every minute up to the one of `ms` (empty ones at the last close, or `price` before any trade).
    pub fn roll(&mut self, ms: i64, price: i64) {
        let start = interval_start("1", ms);
        let mut next = match self.minutes.back() {
            Some(last) if last.start_ms >= start => return,
            // Never fill more than the window: a long pause (or a jump of the clock) restarts it.
            Some(last) => (last.start_ms + MINUTE_MS).max(start - (CANDLES as i64 - 1) * MINUTE_MS),
            None => start,
        };
        let close = self.minutes.back().map_or(price, |c| c.close);
        while next <= start {
            self.minutes.push_back(Candle {
                start_ms: next,
                open: close,
                high: close,
                low: close,
                close,
                volume: 0,
                turnover: 0,
                last_trade_ms: next,
            });
            next += MINUTE_MS;
        }
        while self.minutes.len() > CANDLES {
            self.minutes.pop_front();
        }
    }

    /// Candles of `interval` whose start lies in [start_ms, end_ms], newest first, at most `limit`.
    #[must_use]
    pub fn klines(&self, interval: &str, start_ms: i64, end_ms: i64, limit: usize) -> Vec<Candle> {
        let mut out: Vec<Candle> = Vec::new();
        // Newest minute first: buckets never increase along the way.
        for c in self.minutes.iter().rev() {
            let bucket = interval_start(interval, c.start_ms);
            if bucket > end_ms {
                continue;
            }
            if bucket < start_ms {
                break;
            }
            match out.last_mut() {
                Some(agg) if agg.start_ms == bucket => {
                    agg.open = c.open;
                    agg.high = agg.high.max(c.high);
                    agg.low = agg.low.min(c.low);
                    agg.volume += c.volume;
                    agg.turnover += c.turnover;
                }
                _ => {
                    if out.len() == limit {
                        break;
                    }
                    out.push(Candle { start_ms: bucket, ..*c });
                }
            }
        }
        out
    }

    /// The current (last) candle of `interval`.
    #[must_use]
    pub fn current(&self, interval: &str) -> Option<Candle> {
        let last = self.minutes.back()?;
        let start = interval_start(interval, last.start_ms);
        self.klines(interval, start, start, 1).into_iter().next()
    }

    /// A kline message for a candle of `interval`.
    #[must_use]
    pub fn message(topic: &str, interval: &str, units: &Units, c: &Candle, confirm: bool, ts_ms: i64) -> Utf8Bytes {
        let message = KlineMessage {
            topic: topic.to_owned(),
            kind: MessageKind::Snapshot,
            ts: ts_ms,
            data: vec![kline(interval, units, c, confirm)],
        };
        Utf8Bytes::from(serde_json::to_string(&message).expect("kline messages serialize"))
    }
}

/// One candle as a `Kline` item.
#[must_use]
pub fn kline(interval: &str, units: &Units, c: &Candle, confirm: bool) -> Kline {
    Kline {
        start: c.start_ms,
        end: interval_next(interval, c.start_ms) - 1,
        interval: interval.to_owned(),
        open: units.price(c.open),
        close: units.price(c.close),
        high: units.price(c.high),
        low: units.price(c.low),
        volume: units.qty(c.volume),
        turnover: units.value(c.turnover),
        confirm,
        timestamp: c.last_trade_ms,
    }
}

/// What the network side knows of one symbol.
#[derive(Debug)]
pub struct SymbolData {
    pub units: Units,
    pub spec: InstrumentSpec,
    /// One per entry of `ORDERBOOK_DEPTHS`.
    pub books: Vec<Mutex<BookState>>,
    /// The full ticker (what a new subscriber's snapshot shows).
    pub ticker: Mutex<Ticker>,
    /// Newest last.
    pub trades: Mutex<VecDeque<apex_bybit::rest::market::RecentTrade>>,
    pub candles: Mutex<Candles>,
}

impl SymbolData {
    #[must_use]
    pub fn new(spec: &InstrumentSpec) -> SymbolData {
        let units = Units::new(spec);
        SymbolData {
            books: ORDERBOOK_DEPTHS.iter().map(|_| Mutex::new(BookState::new(&units))).collect(),
            units,
            spec: spec.clone(),
            ticker: Mutex::new(Ticker { symbol: spec.symbol.clone(), ..Ticker::default() }),
            trades: Mutex::new(VecDeque::new()),
            candles: Mutex::new(Candles::default()),
        }
    }
}

/// One account as the network side knows it.
#[derive(Debug)]
pub struct AccountEntry {
    pub spec: AccountSpec,
    pub private: broadcast::Sender<PrivateMsg>,
}

/// What a fault asks of one connection.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    /// Close with code 1001 and this reason.
    Close(&'static str),
    /// Send nothing for this many milliseconds.
    Stall(u64),
}

/// A fixed one-second window of request counts per (account, endpoint group).
#[derive(Debug, Default)]
pub struct RateLimits {
    windows: BTreeMap<(usize, &'static str), (i64, u32)>,
}

/// What a rate-limited request learns: the limit, what is left, and when the window resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_ms: i64,
    pub allowed: bool,
}

impl RateLimits {
    /// Counts one request of `account` to `group` (limit per second) at wall time `now_ms`.
    pub fn hit(&mut self, account: usize, group: &'static str, limit: u32, now_ms: i64) -> LimitStatus {
        let second = now_ms.div_euclid(1_000);
        let entry = self.windows.entry((account, group)).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        let allowed = entry.1 < limit;
        if allowed {
            entry.1 += 1;
        }
        LimitStatus { limit, remaining: limit - entry.1, reset_ms: (second + 1) * 1_000, allowed }
    }
}

/// Fault switches the network tasks read (wall-clock ms until which a fault lasts).
#[derive(Debug, Default)]
pub struct FaultSwitches {
    pub rest_stall_until_ms: AtomicI64,
    pub rate_limit_until_ms: AtomicI64,
}

/// Everything shared between the simulation thread and the network tasks.
#[derive(Debug)]
pub struct Shared {
    pub clock: VenueClock,
    pub topics: TopicTable,
    pub symbols: Vec<SymbolData>,
    pub public: broadcast::Sender<PublicMsg>,
    pub accounts: Vec<AccountEntry>,
    pub keys: HashMap<String, usize>,
    pub limits: Mutex<RateLimits>,
    pub faults: FaultPlan,
    /// The fault log, which also records the venue's own events (disconnection-protection cancels).
    pub fault_log: FaultLog,
    /// Disconnection protection per account.
    pub protection: crate::protection::Protection,
    pub switches: FaultSwitches,
    /// Seeded draws of the REST gateway's faults (order rejects).
    pub dice: Mutex<crate::faults::Dice>,
    pub connections: Mutex<BTreeMap<u64, mpsc::UnboundedSender<Control>>>,
    pub next_connection: AtomicU64,
    pub sim: Mutex<std::sync::mpsc::Sender<crate::sim::Command>>,
    /// Set when the venue shuts down: connection tasks close.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    /// A new connection id, registered for fault control.
    pub fn register(&self) -> (u64, mpsc::UnboundedReceiver<Control>) {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::unbounded_channel();
        self.connections.lock().expect("connections").insert(id, tx);
        (id, rx)
    }

    pub fn unregister(&self, id: u64) {
        self.connections.lock().expect("connections").remove(&id);
    }

    /// Sends a command to the simulation thread (false when it has stopped).
    pub fn command(&self, command: crate::sim::Command) -> bool {
        self.sim.lock().expect("sim sender").send(command).is_ok()
    }

    /// The conn_id Bybit-style acks carry.
    #[must_use]
    pub fn conn_id(id: u64) -> String {
        format!("apex-venue-{id:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let table = TopicTable::new(&["BTCUSDT".into(), "SOLUSDT".into()]);
        assert_eq!(table.len(), 2 * 19);
        assert_eq!(table.name(table.book(1, 1)), "orderbook.50.SOLUSDT");
        assert_eq!(table.name(table.trade(0)), "publicTrade.BTCUSDT");
        assert_eq!(table.name(table.ticker(1)), "tickers.SOLUSDT");
        assert_eq!(table.name(table.kline(1, 12)), "kline.M.SOLUSDT");
        for id in 0..table.len() as TopicId {
            assert_eq!(table.id(table.name(id)), Some(id));
        }
        assert_eq!(table.id("orderbook.500.BTCUSDT"), None);
    }

    #[test]
    fn calendar_intervals() {
        // 2026-11-29 is a Sunday.
        let sunday = days_from_civil(2026, 11, 29) * DAY_MS + 5 * 3_600_000;
        assert_eq!(civil_from_days(days_from_civil(2026, 11, 29)), (2026, 11, 29));
        assert_eq!(interval_start("W", sunday), days_from_civil(2026, 11, 23) * DAY_MS);
        assert_eq!(interval_start("M", sunday), days_from_civil(2026, 11, 1) * DAY_MS);
        assert_eq!(interval_next("M", days_from_civil(2026, 12, 1) * DAY_MS), days_from_civil(2027, 1, 1) * DAY_MS);
        assert_eq!(interval_start("15", 15 * MINUTE_MS + 1), 15 * MINUTE_MS);
        assert_eq!(interval_start("D", DAY_MS - 1), 0);
        for day in -1_000..40_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn candles_aggregate_like_a_reference() {
        let mut candles = Candles::default();
        let t0 = 10 * DAY_MS;
        let trades = [(0, 100, 1), (30_000, 105, 2), (61_000, 95, 1), (200_000, 101, 3), (299_999, 99, 1)];
        for (dt, p, q) in trades {
            candles.trade(t0 + dt, p, q);
        }
        candles.roll(t0 + 330_000, 0);
        assert_eq!(candles.minutes.len(), 6, "minutes 0..=5, the empty ones at the last close");
        assert_eq!(candles.minutes[2].volume, 0);
        assert_eq!((candles.minutes[2].open, candles.minutes[2].close), (95, 95));
        let five = candles.klines("5", t0, t0 + DAY_MS, 10);
        assert_eq!(five.len(), 2, "newest first: [5, 10) then [0, 5) minutes");
        let first = five[1];
        assert_eq!(
            (first.start_ms, first.open, first.high, first.low, first.close, first.volume),
            (t0, 100, 105, 95, 99, 8)
        );
        assert_eq!(first.turnover, 100 + 210 + 95 + 303 + 99);
        assert_eq!(candles.current("5").unwrap().start_ms, t0 + 300_000);
        assert_eq!(candles.klines("1", t0, t0 + DAY_MS, 2).len(), 2);
    }

    #[test]
    fn rate_limit_windows() {
        let mut limits = RateLimits::default();
        let statuses: Vec<_> = (0..12).map(|_| limits.hit(0, "create", 10, 5_500)).collect();
        assert!(statuses[..10].iter().all(|s| s.allowed) && !statuses[10].allowed);
        assert_eq!((statuses[9].remaining, statuses[9].reset_ms), (0, 6_000));
        assert!(limits.hit(1, "create", 10, 5_600).allowed, "per account");
        assert!(limits.hit(0, "create", 10, 6_000).allowed, "a new second");
    }
}
