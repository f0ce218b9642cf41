//! The running engine: checks everything offline (config, bundles, keys, run folder), connects one public stream per
//! venue and one private stream and REST client per account, reconciles the ledger with the exchange, then turns
//! each closed bar into per-slot decisions and orders, books every fill, and stops cleanly on a signal.
//!
//! One task owns all mutable state (books for features, slots, ledger), so the ledger's order is the order of
//! events; the supervisors keep their own books and publish immutable snapshots (`watch`) that the blind check reads.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apex_book::{Applied, BookError, MessageHeader, UpdateKind};
use apex_bybit::client::ClientError;
use apex_bybit::client::clock::{ClockSync, SystemClock};
use apex_bybit::client::private::{PrivateEvent, PrivateFeed};
use apex_bybit::client::public::{BookMessage, BookSnapshot, BookSpec, PublicConfig, PublicEvent, PublicFeed};
use apex_bybit::client::rest::{RestClient, RestConfig};
use apex_bybit::client::target::{MainnetOptIn, Target, VenueReady};
use apex_bybit::rest::account::{ExecutionListRequest, PositionListRequest};
use apex_bybit::rest::market::InstrumentsInfoRequest;
use apex_bybit::rest::order::{CancelOrderRequest, CreateOrderRequest};
use apex_bybit::sign::Credentials;
use apex_bybit::{Category, Dec, ExecType, Execution, OrderStatus, TimeInForce};
use apex_core::{Scale, Side};
use apex_features::engine::{BarFeatureEngine, EngineConfig, Trade};
use apex_features::execution::{MidVolatility, ParentState, TopOfBook, observation};
use apex_rule::{Bar, Instrument};
use tokio::sync::mpsc;

use crate::config::{Config, VenueKind};
use crate::ledger::{DecisionRow, FillRow, Ledger, ModelRow, OrderIntent, SlotRow};
use crate::metrics::Metrics;
use crate::models::{EngineBars, SlotModels, Tactic};
use crate::slot::{Leg, Purpose, SlotCore};
use crate::{NexusError, status};

/// What the command line adds to the config.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: Config,
    /// The run folder: ledger, pid file, status, logs.
    pub out: PathBuf,
    /// Stop after this long (wall clock).
    pub duration: Option<Duration>,
    /// Mainnet was confirmed on the command line.
    pub mainnet_confirmed: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub bars: u64,
    pub orders: u64,
    pub fills: u64,
    pub withheld: u64,
}

/// One account: its REST client and the private stream's events.
struct Account {
    rest: Arc<RestClient>,
    private: Option<PrivateFeed>,
    up: bool,
    /// The private feed's count of dropped events as of the last recovery (see `engine/recovery.rs`).
    dropped_seen: u64,
    /// When its private updates were last read back from the REST history.
    recovered_at: Option<Instant>,
}

/// One symbol's market state.
struct Market {
    features: BarFeatureEngine,
    price_scale: Scale,
    qty_scale: Scale,
    instrument: Instrument,
    /// Wall-clock receipt of the last book message.
    last_book: Option<Instant>,
    mid_vol: MidVolatility,
    last_mid: f64,
    last_price: f64,
    /// The exchange's mark price from its tickers, and when it last came (what the Watchtower values at).
    mark_price: f64,
    mark_at: Option<Instant>,
    last_row: Vec<f64>,
    /// Exchange time (ns) of the last event.
    now_ns: i64,
    /// The engine's view of the book stream, in the order of its events: synced from a snapshot's `BookSynced`
    /// until a resync or disconnect. The ledger's `book_synced`/`book_unsynced` events record each change, so the
    /// ledger alone shows that no order was priced off an unsynced book.
    synced: bool,
    /// Book messages and trades held for the reorder window, released in exchange-time order (a book message before
    /// a trade at the same time, arrival order otherwise): the order `apexctl features` reads a recording in.
    held: std::collections::BinaryHeap<std::cmp::Reverse<HeldEvent>>,
    /// Exchange time (ns) events are held for after the latest one seen.
    reorder_ns: i64,
    latest_ns: i64,
    arrivals: u64,
    /// The feature engine's count of late events (after their bar closed) the ledger has been told of.
    late_noted: u64,
    /// After the event channel dropped a book message the feature engine's book needed: the supervisor's book at
    /// the time, put in place once the held stream reaches its update id (see [`Engine::release`]).
    restart: Option<Arc<BookSnapshot>>,
}

/// An event waiting in a market's reorder window.
enum Held {
    Book(Box<BookMessage>),
    Trade(Trade),
}

struct HeldEvent {
    /// (exchange time, 0 for a book message and 1 for a trade, arrival number)
    key: (i64, u8, u64),
    event: Held,
}

impl PartialEq for HeldEvent {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for HeldEvent {}

impl PartialOrd for HeldEvent {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeldEvent {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// Feeds one held book message to a feature engine, with `restart` (the supervisor's book, waiting to replace the
/// engine's after the event channel dropped a message it needed) put in place once the held stream reaches it: a
/// delta it already holds is skipped, the one it ends at is replaced by it, a later one follows it, and a snapshot
/// from the stream supersedes it. The engine's verdict on the message, `None` when it was skipped or replaced.
fn feed_book(
    features: &mut BarFeatureEngine,
    restart: &mut Option<Arc<BookSnapshot>>,
    header: &MessageHeader,
    message: &BookMessage,
    emit: &mut impl FnMut(i64, &[f64]),
) -> Option<Result<Applied, BookError>> {
    if header.kind == UpdateKind::Snapshot {
        *restart = None;
    } else if let Some(book) = restart.take() {
        if header.update_id < book.update_id {
            *restart = Some(book);
            return None;
        }
        let snapshot =
            MessageHeader { kind: UpdateKind::Snapshot, update_id: book.update_id, seq: book.seq, ..*header };
        let _ = features.on_book(&snapshot, &book.bids, &book.asks, &mut *emit);
        if header.update_id == book.update_id {
            return None;
        }
    }
    Some(features.on_book(header, &message.bids, &message.asks, emit))
}

impl Market {
    fn hold(&mut self, ts: i64, event: Held) {
        self.arrivals += 1;
        self.latest_ns = self.latest_ns.max(ts);
        let kind = u8::from(matches!(event, Held::Trade(_)));
        self.held.push(std::cmp::Reverse(HeldEvent { key: (ts, kind, self.arrivals), event }));
    }

    /// The oldest held event once the window has passed it.
    fn next_due(&mut self) -> Option<Held> {
        let due = self.held.peek().is_some_and(|e| e.0.key.0 <= self.latest_ns.saturating_sub(self.reorder_ns));
        due.then(|| self.held.pop().map(|e| e.0.event)).flatten()
    }
}

/// One slot at run time.
struct Slot {
    name: String,
    symbol: String,
    account: String,
    core: SlotCore,
    models: SlotModels,
    sent: VecDeque<Instant>,
    last_decision: String,
    /// orderLinkIds of this slot's resting passive orders (cancelled at the next bar).
    resting: Vec<String>,
    /// The slot's last entry order while it may still fill (sent, not yet known filled, cancelled or refused), and
    /// when it was sent. A new entry waits for it: the rule sizes from the fills it knows, so an entry still on its
    /// way would be sized again and the slot would hold twice its leverage.
    open_entry: Option<(String, Instant)>,
    /// Orders whose cancel was asked while their create was still on its way: cancelled as soon as it is acknowledged.
    cancel_on_ack: Vec<String>,
    /// When an order of the slot was last withheld, and why: a triggered bracket is retried no faster than every
    /// 250 ms and a repeated reason is not logged again, so a blind spell does not flood the ledger.
    withheld: Option<(Instant, String)>,
    /// Killed by the Watchtower: it decides nothing until a new bundle refills it.
    dead: bool,
    /// When the Watchtower last sent (or tried) the order that flattens a dead slot.
    flattened_at: Option<Instant>,
    /// The slot's recent per-bar log returns (capital transfers excluded): the CWO's input.
    returns: VecDeque<f64>,
    /// Equity at the last bar (after any transfer), the base of the next return.
    last_equity: f64,
}

/// Everything checked and opened before the first connection.
pub struct Prepared {
    options: Options,
    target: Target,
    credentials: BTreeMap<String, Credentials>,
    slots: Vec<LoadedSlot>,
    ledger: Ledger,
    pid_file: PidGuard,
    engine_names: Vec<String>,
    bars: EngineBars,
    /// (slot, model id) of the bundles found in a slot's folder at start that are not the ledger's champion (a
    /// challenger published before the restart): they join the bench once the Pit Crew starts.
    benched: Vec<(usize, String)>,
}

/// The manifest of the bundle in `dir`, if it can be read (loading the bundle says why when it cannot).
fn manifest_of(dir: &Path) -> Option<apex_infer::Manifest> {
    let text = std::fs::read_to_string(dir.join(apex_infer::MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The feature columns the engine computes on `bars` for a bundle in `dir` (what its manifest asks for; the
/// defaults when it cannot be read, and loading the bundle then says why).
fn names_for(bars: &EngineBars, dir: &Path) -> Vec<String> {
    names_of(bars, manifest_of(dir).as_ref())
}

/// [`names_for`] of a manifest already read.
fn names_of(bars: &EngineBars, manifest: Option<&apex_infer::Manifest>) -> Vec<String> {
    let features = manifest.map(|m| m.features.as_slice()).unwrap_or_default();
    apex_features::bars::column_names(&bars.params(features), true)
}

/// The run folder's pid file: refuses a folder whose pid file names a live process, and removes itself on drop.
/// `Locked` when another live engine's pid file is in `out`.
fn refuse_held(out: &Path) -> Result<(), NexusError> {
    let path = out.join("nexus.pid");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(pid) = text.trim().parse::<u32>()
        && pid != std::process::id()
        && Path::new(&format!("/proc/{pid}")).exists()
    {
        return Err(NexusError::Locked { path, pid });
    }
    Ok(())
}

/// `path` with its links followed, also when its last parts do not exist yet (the run folder is made later).
fn real_path(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(real) = existing.canonicalize() {
            return missing.iter().rev().fold(real, |at, part| at.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            }
            _ => return path.to_owned(),
        }
    }
}

/// `Config` when the run folder is a slot's bundle folder or inside one: the engine's logs, ledger and kept models
/// would be written into the bundle (an input, which then fails its manifest check).
fn refuse_out_in_bundle(options: &Options) -> Result<(), NexusError> {
    let out = real_path(&options.out);
    for slot in &options.config.slots {
        let bundle = real_path(&slot.bundle);
        if out.starts_with(&bundle) {
            return Err(NexusError::Config {
                path: options.config.path.clone(),
                message: format!(
                    "--out {} is inside slot {}'s bundle folder {}: the run would write into the bundle; give a \
                     folder outside it",
                    options.out.display(),
                    slot.name,
                    slot.bundle.display()
                ),
            });
        }
    }
    Ok(())
}

fn lock(out: &Path) -> Result<PathBuf, NexusError> {
    refuse_held(out)?;
    let path = out.join("nexus.pid");
    let tmp = out.join("nexus.pid.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| NexusError::Runtime(format!("{}: {e}", path.display())))?;
    Ok(path)
}

fn env_credentials(account: &str) -> Result<Credentials, NexusError> {
    let (key_var, secret_var) = crate::config::key_variables(account);
    match (std::env::var(&key_var), std::env::var(&secret_var)) {
        (Ok(key), Ok(secret)) if !key.is_empty() && !secret.is_empty() => Ok(Credentials::new(key, secret)),
        _ => Err(NexusError::Keys(format!("account {account}: {key_var} and {secret_var} must both be set"))),
    }
}

/// A slot's config with its bundle's models.
type LoadedSlot = (crate::config::SlotConfig, SlotModels);

/// Why a mainnet config without the opt-in is refused.
/// A position's size with its direction: negative short.
fn signed_size(position: &apex_bybit::Position) -> f64 {
    let size = dec(&position.size);
    if position.side == apex_bybit::PositionSide::Sell { -size } else { size }
}

/// Every USDT-settled linear position of an account (one page: 200 symbols, more than an engine trades).
fn usdt_positions() -> PositionListRequest {
    PositionListRequest {
        category: Category::Linear,
        symbol: None,
        base_coin: None,
        settle_coin: Some("USDT".into()),
        limit: Some(200),
        cursor: None,
    }
}

/// How long a slot's entry order with no word on how it ended holds back the slot's next entry (see
/// `Slot::open_entry`), and an order that ended with fills not booked its next order (`Engine::unbooked_wait`):
/// the private streams report every end and fill within a second or so, and a lost one is read back from the REST
/// history after `recovery::RECOVER_AFTER`; this only ends a wait that the REST history could not end either.
const OPEN_ENTRY_LIMIT: Duration = Duration::from_secs(60);

/// How far back the catch-up asks the execution history: Bybit answers for 7 days at most (an hour kept spare).
const HISTORY_MS: i64 = 7 * 86_400_000 - 3_600_000;

/// Events a private stream, and the engine's merged private queue, hold while the engine is busy: far more than an
/// account's orders and fills in the few milliseconds a ledger sync takes. Past that the feed drops the newest and
/// counts them (`LinkStatus::events_dropped`), and the next status tick reads the account back (`recovery::due`).
const PRIVATE_QUEUE: usize = 4096;

/// Events the public stream holds: every book message and trade of every symbol, at a burst's rate. Past that the
/// feed drops and counts them, and a symbol's feature engine restarts from the supervisor's book (`Market::restart`).
const PUBLIC_QUEUE: usize = 16_384;

const MAINNET_OPT_IN: &str = "venue mainnet needs --i-understand-mainnet (real money)";

/// `engine.bar` in nanoseconds.
fn bar_nanos(config: &Config) -> Result<i64, NexusError> {
    i64::try_from(config.bar.as_nanos())
        .map_err(|_| NexusError::Config { path: config.path.clone(), message: "engine.bar too long".into() })
}

/// Every slot with its bundle's models loaded and checked, the longest feature list among them, and the bars the
/// engine computes: `engine.bar` with the feature options of the slots' bundles (the first one reading each).
fn load_slots(config: &Config) -> Result<(Vec<LoadedSlot>, Vec<String>, EngineBars), NexusError> {
    let manifests: Vec<(String, Option<apex_infer::Manifest>)> =
        config.slots.iter().map(|slot| (format!("slot {}'s bundle", slot.name), manifest_of(&slot.bundle))).collect();
    let named = manifests.iter().filter_map(|(name, m)| Some((name.as_str(), m.as_ref()?)));
    let bars = EngineBars::of_bundles(config.bar.as_secs(), config.book_depth, named);
    let mut slots = Vec::new();
    let mut engine_names = Vec::new();
    for (slot, (_, manifest)) in config.slots.iter().zip(&manifests) {
        let names = names_of(&bars, manifest.as_ref());
        let models = SlotModels::load(&slot.name, &slot.bundle, &slot.symbol, &names, &bars)?;
        if names.len() > engine_names.len() {
            engine_names = names;
        }
        slots.push((slot.clone(), models));
    }
    Ok((slots, engine_names, bars))
}

impl Prepared {
    /// The checks of [`Prepared::new`] that need no venue: the config (read already), a run folder outside the
    /// bundles and not held by another engine, every slot's bundle and, on testnet or mainnet, the keys and the
    /// mainnet opt-in. Nothing is created or connected: `apexctl trade` runs them before it launches a local venue.
    ///
    /// # Errors
    /// `Config`/`Bundle`/`Keys` (exit 2) and `Locked` (exit 3), as `new` names them.
    pub fn check(options: &Options) -> Result<(), NexusError> {
        let config = &options.config;
        refuse_out_in_bundle(options)?;
        refuse_held(&options.out)?;
        bar_nanos(config)?;
        load_slots(config)?;
        if config.venue.kind != VenueKind::Local {
            for account in config.accounts() {
                env_credentials(&account)?;
            }
            if config.venue.kind == VenueKind::Mainnet && !options.mainnet_confirmed {
                return Err(NexusError::Config { path: config.path.clone(), message: MAINNET_OPT_IN.into() });
            }
        }
        Ok(())
    }

    /// Where `/metrics` is to be served.
    #[must_use]
    pub fn metrics_address(&self) -> std::net::SocketAddr {
        self.options.config.metrics
    }

    /// Checks the bundles and keys and takes the run folder, without connecting anything.
    ///
    /// # Errors
    /// `Config`/`Bundle`/`Keys` (exit 2) for bad input, `Locked` for a folder in use, `Ledger` for a ledger that
    /// cannot be opened.
    pub fn new(options: Options) -> Result<Prepared, NexusError> {
        let config = &options.config;
        let bad = |message: String| NexusError::Config { path: config.path.clone(), message };
        refuse_out_in_bundle(&options)?;
        bar_nanos(config)?;
        let (mut slots, mut engine_names, bars) = load_slots(config)?;
        let (target, credentials) = match config.venue.kind {
            VenueKind::Local => {
                let ready_path = config.venue.ready.clone().ok_or_else(|| {
                    NexusError::Keys("a local venue needs its ready file (--venue-ready or venue.ready)".into())
                })?;
                let ready = VenueReady::read(&ready_path).map_err(|e| NexusError::Keys(e.to_string()))?;
                let mut credentials = BTreeMap::new();
                for account in config.accounts() {
                    let found =
                        ready.account(&account).or(if account == "main" { ready.accounts.first() } else { None });
                    let found = found.ok_or_else(|| {
                        NexusError::Keys(format!("{}: no account {account:?} in the ready file", ready_path.display()))
                    })?;
                    credentials.insert(account, found.credentials());
                }
                (Target::local(&ready), credentials)
            }
            VenueKind::Testnet | VenueKind::Mainnet => {
                let mut credentials = BTreeMap::new();
                for account in config.accounts() {
                    credentials.insert(account.clone(), env_credentials(&account)?);
                }
                let target = if config.venue.kind == VenueKind::Mainnet {
                    if !options.mainnet_confirmed {
                        return Err(bad(MAINNET_OPT_IN.into()));
                    }
                    Target::mainnet(MainnetOptIn::REAL_MONEY)
                } else {
                    Target::testnet()
                };
                (target, credentials)
            }
        };
        std::fs::create_dir_all(&options.out)
            .map_err(|e| NexusError::Runtime(format!("{}: {e}", options.out.display())))?;
        let pid_file = PidGuard(lock(&options.out)?);
        let ledger = Ledger::open(&options.out.join("ledger.sqlite"), config.venue.kind.as_str(), &config.sha256)?;
        let mut benched = Vec::new();
        for (index, (slot, models)) in slots.iter_mut().enumerate() {
            if let Some((champion, names)) = restore_champion(&options.out, &ledger, config, &bars, slot, models)? {
                if names.len() > engine_names.len() {
                    engine_names = names;
                }
                benched.push((index, std::mem::replace(models, champion).sha256));
            }
        }
        Ok(Prepared { options, target, credentials, slots, ledger, pid_file, engine_names, bars, benched })
    }
}

/// The ledger's champion of `slot` when it is not the bundle in the slot's folder (a challenger was published and
/// not promoted before the restart), loaded from its kept copy, with the feature columns it needs; `None` keeps the
/// folder's bundle as champion (and keeps a copy of it). Restoring needs the Pit Crew (which benches the folder's
/// bundle) and the same folder as the run that promoted it: pointing a slot at another folder deploys that folder's
/// bundle outright.
fn restore_champion(
    out: &Path,
    ledger: &Ledger,
    config: &crate::config::Config,
    bars: &EngineBars,
    slot: &crate::config::SlotConfig,
    folder_models: &SlotModels,
) -> Result<Option<(SlotModels, Vec<String>)>, NexusError> {
    let folder = slot.bundle.display().to_string();
    let restorable = match ledger.champion(&slot.name)? {
        Some((id, bundle)) if config.pitcrew.enabled && bundle == folder && id != folder_models.sha256 => Some(id),
        _ => None,
    };
    let Some(id) = restorable else {
        if let Err(why) = crate::kept::keep(out, &slot.bundle) {
            tracing::warn!(slot = %slot.name, %why, "no copy of the champion kept");
        }
        return Ok(None);
    };
    let dir = crate::kept::kept_dir(out, &id);
    let names = names_for(bars, &dir);
    let loaded = if dir.is_dir() {
        SlotModels::load(&slot.name, &dir, &slot.symbol, &names, bars).and_then(|mut models| {
            models.check(&slot.name)?;
            Ok(models)
        })
    } else {
        Err(NexusError::Runtime(format!("no kept copy in {}", dir.display())))
    };
    match loaded {
        Ok(champion) => {
            let detail = format!("{} {}: the ledger's champion, from its kept copy", slot.name, short(&id));
            ledger.record_event("champion_restored", &detail, None)?;
            tracing::info!(slot = %slot.name, model = %short(&id), "champion restored from its kept copy");
            Ok(Some((champion, names)))
        }
        Err(error) => {
            let detail = format!("{} {}: {error}; the folder's bundle is the champion", slot.name, short(&id));
            ledger.record_event("champion_not_restored", &detail, None)?;
            tracing::warn!(slot = %slot.name, %error, "the ledger's champion could not be restored");
            Ok(None)
        }
    }
}

/// The first 12 characters of a model id, for the log.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn dec(value: &Dec) -> f64 {
    value.as_str().parse().unwrap_or(f64::NAN)
}

fn side_name(side: Side) -> &'static str {
    if side == Side::Buy { "Buy" } else { "Sell" }
}

fn parse_side(text: &str) -> Side {
    if text == "Buy" { Side::Buy } else { Side::Sell }
}

/// Why the engine refuses to start on `account`: it holds `exchange` of `symbol`, but the positions of the ledger's
/// slots trading it (`slots`: name, position) add up to something else. Quantities are written on the symbol's lot
/// grid (`scale`), so a float sum's 0.30000000000000004 reads 0.3.
fn position_mismatch(account: &str, symbol: &str, exchange: f64, slots: &[(&str, f64)], scale: Scale) -> String {
    let ledger: f64 = slots.iter().map(|(_, position)| position).sum();
    let each: Vec<String> =
        slots.iter().map(|(name, position)| format!("{name} {}", qty_text(*position, scale))).collect();
    format!(
        "account {account} holds {} {symbol} on the exchange, but its slots' fills in this ledger sum to {} ({}): the \
         ledger is not this account's record (a local venue started afresh keeps no position; or the account was \
         traded by hand). Use a new --out, or bring the account's position to the ledger's",
        qty_text(exchange, scale),
        qty_text(ledger, scale),
        each.join(", ")
    )
}

/// A quantity for a message: on `scale`'s grid when it lies there (within float error), else to 12 decimals; without
/// trailing zeros either way.
fn qty_text(qty: f64, scale: Scale) -> String {
    let text = scale.from_f64(qty).map_or_else(|_| format!("{qty:.12}"), |units| scale.format(units));
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

/// Rounds `value` down to a multiple of `step` (a quantity) as a decimal string of `scale`.
fn qty_dec(value: f64, scale: Scale) -> Dec {
    let units = (value * scale.factor() as f64 + 1e-9).floor() as i64;
    Dec::from_units(units, scale)
}

/// The execution observation of an entry of `qty` on `side` against the touch `bid`/`ask` (mid `mid`): what the IEL
/// policy picks the tactic from.
fn entry_observation(
    market: &Market,
    side: Side,
    qty: f64,
    bid: apex_book::Level,
    ask: apex_book::Level,
    mid: f64,
) -> apex_features::execution::Observation {
    let lot_units = ((market.instrument.qty_step * market.qty_scale.factor() as f64).round() as i64).max(1);
    let size = ((qty * market.qty_scale.factor() as f64).round() as i64 / lot_units).max(1);
    let parent = ParentState {
        side,
        size_lots: size,
        remaining_lots: size,
        steps: 1,
        step: 0,
        arrival_mid: mid,
        resting_child: false,
        lot_units,
    };
    let top = TopOfBook { bid: Some(bid), ask: Some(ask), price_scale: market.price_scale };
    observation(&parent, &top, mid, market.mid_vol.vol_bps())
}

/// The running engine.
pub struct Engine {
    options: Options,
    ledger: Ledger,
    accounts: BTreeMap<String, Account>,
    public: PublicFeed,
    markets: BTreeMap<String, Market>,
    slots: Vec<Slot>,
    metrics: Arc<Metrics>,
    summary: Summary,
    _pid: PidGuard,
    /// orderLinkId -> slot index, for the engine's orders.
    links: HashMap<String, usize>,
    /// Orders the order stream says ended while some of the fills it reports were not booked yet (the order and
    /// execution streams are separate): orderLinkId -> what is waited for. Until they are, the slot sends nothing
    /// (every leg is sized from booked fills; see [`Engine::unbooked_wait`]) and a short-ended bracket close does not
    /// re-arm.
    unbooked: HashMap<String, Unbooked>,
    /// Orders whose end is due and that the order stream has not reported yet (see `engine/recovery.rs`).
    awaiting: HashMap<String, recovery::Awaited>,
    /// Orders a recovery ended from the REST history: their order message, should it still come, is not an end again.
    recovered_ends: HashSet<String>,
    instance: String,
    /// Orders staged while deciding, sent once their intents are committed.
    outbox: Vec<Outgoing>,
    /// Ledger rows staged while deciding.
    writes: Vec<Write>,
    /// The last orderLinkId sequence number of each slot (read from the ledger at its first order).
    seqs: HashMap<String, i64>,
    acks_tx: mpsc::UnboundedSender<Ack>,
    acks_rx: Option<mpsc::UnboundedReceiver<Ack>>,
    /// Requests sent whose answer has not come back yet.
    in_flight: usize,
    /// Order tasks were spawned since the loop last let them run ([`Engine::let_orders_go`]).
    dispatched: bool,
    /// Market time (ns) of the CWO's last reweight.
    last_reweight_ns: Option<i64>,
    /// The Pit Crew: challenger benches and fallbacks (hooks in `engine/crew.rs`).
    pitcrew: crate::pitcrew::PitCrew,
    /// The watcher of the slots' bundle folders, while running.
    watcher: Option<crate::watch::Watcher>,
    /// The feature engine's row names (what a new bundle's features are checked against).
    engine_names: Vec<String>,
    /// The bars those rows are computed on (what a new bundle must have been made on).
    bars: EngineBars,
    /// See [`Prepared`]: bundles to bench when the Pit Crew starts.
    benched: Vec<(usize, String)>,
    /// The public feed's count of events its channel dropped, as of the last feature-engine book that refused a
    /// message.
    public_dropped: u64,
}

mod crew;
mod recovery;

/// An order that ended with fills the engine has not booked yet.
#[derive(Debug, Clone, Copy)]
struct Unbooked {
    index: usize,
    /// The exchange's cumulative filled quantity at the end.
    filled: f64,
    /// A bracket close (stop or take) that ended without trading all of it: its bracket re-arms once booked.
    rearms: bool,
    since: Instant,
}

/// A ledger row staged while deciding, written by [`Engine::persist`].
enum Write {
    Event {
        kind: &'static str,
        detail: String,
    },
    /// An order intent; `decision` indexes the bar's decisions (its id is known once that row is written).
    Intent {
        intent: Box<OrderIntent>,
        decision: Option<usize>,
    },
}

/// A closed bar as the ledger records it.
struct BarWrite<'a> {
    symbol: &'a str,
    open_ts: i64,
    ohlcv: [f64; 5],
    row: &'a [f64],
}

/// One slot's decision on a bar and its equity snapshot, to be written.
struct Decided {
    row: DecisionRow,
    equity: EquityWrite,
}

struct EquityWrite {
    equity: f64,
    cash: f64,
    unrealized: f64,
    position: f64,
    mark: f64,
}

/// The frame an order answers: when the supervisor received it (both latency figures start there), and when the
/// engine took it up from its queue.
#[derive(Debug, Clone, Copy)]
struct Trigger {
    received: Instant,
    taken: Instant,
}

/// An order whose intent is written, waiting for its transaction to commit and reach the disk.
struct Outgoing {
    index: usize,
    account: String,
    link: String,
    purpose: Purpose,
    resting: bool,
    request: Box<CreateOrderRequest>,
    trigger: Option<Trigger>,
}

/// The answer to a request sent from its own task.
enum Ack {
    Create {
        index: usize,
        link: String,
        purpose: Purpose,
        resting: bool,
        result: Result<apex_bybit::rest::order::OrderIdResult, ClientError>,
    },
    Cancel {
        link: String,
        /// The exchange's refusal, if it refused (the order had ended, or the request failed).
        result: Result<(), String>,
        why: &'static str,
    },
    /// An order was not sent: the ledger could not make its intent durable.
    Unsent,
}

/// Removes the run folder's pid file when the engine goes away (also on an error).
struct PidGuard(PathBuf);

impl Drop for PidGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Events of the private streams, tagged by account.
type PrivateRx = mpsc::Receiver<(String, PrivateEvent)>;

impl Engine {
    /// Connects: REST per account (clock sync, instruments), the public stream, the private streams.
    ///
    /// # Errors
    /// `Venue` when the venue cannot be reached or refuses the keys.
    pub async fn connect(prepared: Prepared) -> Result<(Engine, PrivateRx, mpsc::Receiver<PublicEvent>), NexusError> {
        let Prepared { options, target, credentials, slots: loaded, ledger, pid_file, engine_names, bars, benched } =
            prepared;
        let config = &options.config;
        let venue = |e: ClientError| NexusError::Venue(e.to_string());
        let clock = Arc::new(ClockSync::new(Arc::new(SystemClock)));
        let mut accounts = BTreeMap::new();
        let (private_tx, private_rx) = mpsc::channel(PRIVATE_QUEUE);
        for (name, creds) in &credentials {
            let rest =
                RestClient::new(&target, Some(creds.clone()), clock.clone(), RestConfig::default()).map_err(venue)?;
            rest.sync_clock().await.map_err(venue)?;
            crate::protection::arm(&rest, &ledger, name, config.disconnect_protection).await?;
            let private_config =
                crate::protection::private_config(&target.ws_private, creds, config.disconnect_protection);
            let mut feed = PrivateFeed::start(private_config, clock.clone(), PRIVATE_QUEUE).map_err(venue)?;
            let mut events = feed.take_events().expect("fresh feed");
            let tx = private_tx.clone();
            let tag = name.clone();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if tx.send((tag.clone(), event)).await.is_err() {
                        break;
                    }
                }
            });
            accounts.insert(
                name.clone(),
                Account { rest: Arc::new(rest), private: Some(feed), up: false, dropped_seen: 0, recovered_at: None },
            );
        }
        let any = accounts.values().next().expect("at least one account").rest.clone();
        let mut markets = BTreeMap::new();
        let mut books = Vec::new();
        for symbol in config.symbols() {
            let request = InstrumentsInfoRequest::of(Category::Linear, Some(&symbol));
            let info = any.instruments(&request).await.map_err(venue)?;
            let info = info
                .list
                .into_iter()
                .find(|i| i.symbol == symbol)
                .ok_or_else(|| NexusError::Venue(format!("the venue does not list {symbol}")))?;
            let price_scale = info.price_scale().map_err(|e| NexusError::Venue(format!("{symbol}: {e}")))?;
            let qty_scale = info.qty_scale().map_err(|e| NexusError::Venue(format!("{symbol}: {e}")))?;
            let lots = &info.lot_size_filter;
            let instrument = Instrument {
                tick: dec(&info.price_filter.tick_size),
                qty_step: info.qty_step().map_or(0.0, dec),
                min_qty: lots.min_order_qty.as_ref().map_or(0.0, dec),
                max_qty: lots.max_order_qty.as_ref().map_or(f64::INFINITY, dec),
                min_notional: lots.min_notional_value.as_ref().map_or(0.0, dec),
            };
            let features = BarFeatureEngine::new(EngineConfig {
                bars: bars.params(&engine_names),
                price_scale,
                qty_scale,
                book_columns: true,
            })
            .map_err(|e| NexusError::Runtime(format!("feature engine: {e}")))?;
            let columns = serde_json::to_string(&features.names()).expect("names serialize");
            ledger.set_meta(&format!("bar_columns.{symbol}"), &columns)?;
            books.push(BookSpec { symbol: symbol.clone(), depth: config.book_depth, price_scale, qty_scale });
            markets.insert(
                symbol,
                Market {
                    features,
                    price_scale,
                    qty_scale,
                    instrument,
                    last_book: None,
                    mid_vol: MidVolatility::new(1_000_000_000),
                    last_mid: f64::NAN,
                    last_price: f64::NAN,
                    mark_price: f64::NAN,
                    mark_at: None,
                    last_row: Vec::new(),
                    now_ns: 0,
                    synced: false,
                    held: std::collections::BinaryHeap::new(),
                    reorder_ns: i64::try_from(config.reorder_window.as_nanos()).unwrap_or(i64::MAX),
                    latest_ns: i64::MIN,
                    arrivals: 0,
                    late_noted: 0,
                    restart: None,
                },
            );
        }
        let mut public_config = PublicConfig::new(&target.ws_public);
        public_config.trades = config.symbols();
        public_config.tickers = config.symbols();
        public_config.books = books;
        public_config.forward_books = true;
        if config.record_public {
            public_config.record = Some(options.out.join("public.jsonl"));
        }
        let mut public = PublicFeed::start(public_config, PUBLIC_QUEUE).map_err(venue)?;
        let public_rx = public.take_events().expect("fresh feed");
        let instance = ledger.instance()?;
        let mut slots = Vec::new();
        for (slot, models) in loaded {
            let market = &markets[&slot.symbol];
            let core =
                SlotCore::new(&slot.name, slot.capital, config.rule.clone(), market.instrument).map_err(|e| {
                    NexusError::Config { path: config.path.clone(), message: format!("slot {}: {e}", slot.name) }
                })?;
            // The configured capital is the slot's base unless the ledger has moved it since (the CWO); a capital
            // changed in the config starts the slot afresh from it.
            let reconfigured = ledger.slot_capital(&slot.name)?.is_some_and(|c| c != slot.capital);
            ledger.upsert_slot(&SlotRow {
                slot: slot.name.clone(),
                symbol: slot.symbol.clone(),
                account: slot.account.clone(),
                capital: slot.capital,
                bundle: slot.bundle.display().to_string(),
                bundle_sha256: models.sha256.clone(),
                model: models.label.clone(),
            })?;
            ledger.record_model(&ModelRow {
                slot: slot.name.clone(),
                model_id: models.sha256.clone(),
                bundle: slot.bundle.display().to_string(),
                label: models.label.clone(),
                gp_tree: models.gp_tree.clone(),
                role: "champion".into(),
                detail: None,
                ts_exchange: None,
            })?;
            // A slot the Watchtower killed stays dead while the folder still holds the model it died with; another
            // bundle refills it.
            let mut dead = ledger.slot_state(&slot.name)?.as_deref() == Some("dead");
            if dead && ledger.last_death_model(&slot.name)?.as_deref() != Some(models.sha256.as_str()) {
                ledger.record_swap(&slot.name, None, &models.sha256, "refill", "flat", None)?;
                dead = false;
            }
            ledger.set_slot_state(&slot.name, if dead { "dead" } else { "live" })?;
            if reconfigured || ledger.last_base(&slot.name)?.is_none() {
                let total: f64 = config.slots.iter().map(|s| s.capital).sum();
                ledger.record_weight(&slot.name, slot.capital / total, slot.capital, slot.capital, None)?;
            }
            slots.push(Slot {
                name: slot.name,
                symbol: slot.symbol,
                account: slot.account,
                core,
                models,
                sent: VecDeque::new(),
                last_decision: "-".into(),
                resting: Vec::new(),
                open_entry: None,
                cancel_on_ack: Vec::new(),
                withheld: None,
                dead,
                flattened_at: None,
                returns: VecDeque::new(),
                last_equity: f64::NAN,
            });
        }
        let metrics = Arc::new(Metrics::new(&slots.iter().map(|s| s.name.clone()).collect::<Vec<_>>()));
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        let pitcrew = crate::pitcrew::PitCrew::new(options.config.pitcrew.clone());
        let engine = Engine {
            options,
            ledger,
            accounts,
            public,
            markets,
            slots,
            metrics,
            summary: Summary { bars: 0, orders: 0, fills: 0, withheld: 0 },
            _pid: pid_file,
            links: HashMap::new(),
            unbooked: HashMap::new(),
            awaiting: HashMap::new(),
            recovered_ends: HashSet::new(),
            public_dropped: 0,
            instance,
            outbox: Vec::new(),
            writes: Vec::new(),
            seqs: HashMap::new(),
            acks_tx,
            acks_rx: Some(acks_rx),
            in_flight: 0,
            dispatched: false,
            last_reweight_ns: None,
            pitcrew,
            watcher: None,
            engine_names,
            bars,
            benched,
        };
        Ok((engine, private_rx, public_rx))
    }

    /// The metrics the `/metrics` endpoint serves.
    #[must_use]
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Rebuilds every slot from the ledger's fills, then catches up with the exchange: executions of the engine's
    /// orders since the last booked fill, and the outcome of every order the ledger still holds as live (orders of
    /// a previous run still open are cancelled: their decision is stale).
    ///
    /// # Errors
    /// `Ledger` or `Venue` failures.
    pub async fn reconcile(&mut self) -> Result<(), NexusError> {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let orders = self.ledger.orders_of(&slot.name)?;
            let brackets: HashMap<String, (Option<f64>, Option<f64>, String)> = orders
                .iter()
                .map(|o| (o.intent.order_link_id.clone(), (o.intent.stop, o.intent.take, o.intent.purpose.clone())))
                .collect();
            for order in &orders {
                self.links.insert(order.intent.order_link_id.clone(), index);
            }
            for fill in self.ledger.fills_of(&slot.name)? {
                let bracket = brackets
                    .get(&fill.order_link_id)
                    .and_then(|(stop, take, purpose)| if purpose == "entry" { stop.zip(*take) } else { None });
                slot.core.on_fill(parse_side(&fill.side), fill.qty, fill.price, fill.fee, bracket);
            }
            if let Some(base) = self.ledger.last_base(&slot.name)? {
                slot.core.set_capital(base);
            }
        }
        let names: Vec<String> = self.accounts.keys().cloned().collect();
        for account in &names {
            self.catch_up_executions(account, "reconcile").await?;
        }
        for order in self.ledger.live_orders()? {
            let Some(&index) = self.links.get(&order.intent.order_link_id) else { continue };
            let account = self.slots[index].account.clone();
            let rest = self.accounts[&account].rest.clone();
            let link = &order.intent.order_link_id;
            match rest.find_order(&Category::Linear, &order.intent.symbol, link).await {
                Ok(Some(found)) => {
                    let status = format!("{:?}", found.order_status);
                    let open = matches!(status.as_str(), "New" | "PartiallyFilled" | "Untriggered");
                    self.ledger.update_order(
                        link,
                        &status,
                        Some(&found.order_id),
                        Some(dec(&found.cum_exec_qty)),
                        Some("reconcile"),
                        None,
                    )?;
                    if open {
                        let cancel = CancelOrderRequest::of_link(Category::Linear, &order.intent.symbol, link);
                        let outcome = rest.cancel_order(&cancel).await;
                        let status = if outcome.is_ok() { "Cancelled" } else { "cancel_failed" };
                        self.ledger.update_order(
                            link,
                            status,
                            None,
                            None,
                            Some("reconcile: stale order of a previous run"),
                            None,
                        )?;
                    }
                }
                Ok(None) => self.ledger.update_order(
                    link,
                    "never_sent",
                    None,
                    None,
                    Some("reconcile: unknown to the exchange"),
                    None,
                )?,
                Err(e) => tracing::warn!(order = %link, error = %e, "reconcile: order lookup failed"),
            }
        }
        // Again: a cancelled order may have filled before its cancel.
        for account in &names {
            self.catch_up_executions(account, "reconcile").await?;
        }
        for account in &names {
            self.check_positions(account).await?;
        }
        self.ledger.record_event("reconciled", &format!("{} fills booked", self.summary.fills), None)?;
        Ok(())
    }

    /// After the catch-up, the slots' positions on each of the account's symbols (from their fills in the ledger) must
    /// sum to the account's position on the exchange: otherwise the ledger is not this account's record (a local
    /// venue started afresh keeps nothing; someone traded the account by hand) and every exit would be sized wrong.
    async fn check_positions(&self, account: &str) -> Result<(), NexusError> {
        let positions = self.accounts[account]
            .rest
            .positions(&usdt_positions())
            .await
            .map_err(|e| NexusError::Venue(e.to_string()))?;
        let held: HashMap<String, f64> = positions.list.iter().map(|p| (p.symbol.clone(), signed_size(p))).collect();
        let mut symbols: Vec<&str> =
            self.slots.iter().filter(|s| s.account == account).map(|s| s.symbol.as_str()).collect();
        symbols.sort_unstable();
        symbols.dedup();
        for symbol in symbols {
            let slots: Vec<&Slot> = self.slots.iter().filter(|s| s.account == account && s.symbol == symbol).collect();
            let ledger: f64 = slots.iter().map(|s| s.core.book().position).sum();
            let exchange = held.get(symbol).copied().unwrap_or(0.0);
            let step = self.markets[symbol].instrument.qty_step;
            if (ledger - exchange).abs() > step.max(1e-12) / 2.0 {
                let each: Vec<(&str, f64)> = slots.iter().map(|s| (s.name.as_str(), s.core.book().position)).collect();
                let scale = self.markets[symbol].qty_scale;
                return Err(NexusError::Config {
                    path: self.ledger.path().to_owned(),
                    message: position_mismatch(account, symbol, exchange, &each, scale),
                });
            }
        }
        Ok(())
    }

    /// Books every execution of the engine's orders on `account` since the last booked fill, or since the oldest
    /// order the ledger still holds as live if that is older (a fill of it may have been lost while later ones were
    /// booked), minus a margin, and within the 7 days Bybit's execution history answers for; the ledger's unique
    /// exec_id keeps each fill once.
    async fn catch_up_executions(&mut self, account: &str, source: &str) -> Result<(), NexusError> {
        let last_fill = self.ledger.last_fill_ts(account)?;
        let oldest_live = self.ledger.oldest_live_intent_ts(account)?;
        // Before the first booked fill: the whole history Bybit keeps.
        let since_ms = last_fill
            .map(|fill| oldest_live.map_or(fill, |live| fill.min(live)))
            .map(|ns| (ns / 1_000_000 - 60_000).max(crate::ledger::now_ns() / 1_000_000 - HISTORY_MS));
        self.book_executions(account, None, since_ms, source).await
    }

    /// Books the executions the REST history holds of order `link` (if given) or since `since_ms` (if given) on
    /// `account`, a page of 100 at a time (at most 100 pages).
    async fn book_executions(
        &mut self,
        account: &str,
        link: Option<&str>,
        since_ms: Option<i64>,
        source: &str,
    ) -> Result<(), NexusError> {
        let rest = self.accounts[account].rest.clone();
        let mut cursor = None;
        for _page in 0..100 {
            let request = ExecutionListRequest {
                category: Category::Linear,
                symbol: None,
                order_id: None,
                order_link_id: link.map(str::to_owned),
                base_coin: None,
                start_time: since_ms,
                end_time: None,
                exec_type: None,
                limit: Some(100),
                cursor: cursor.take(),
            };
            let page = rest.executions(&request).await.map_err(|e| NexusError::Venue(e.to_string()))?;
            let list = page.list;
            for execution in &list {
                self.on_execution(account, execution, source)?;
            }
            match page.next_page_cursor {
                Some(next) if !next.is_empty() && !list.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        Ok(())
    }

    /// Books one execution if it is one of the engine's and new; updates the slot.
    fn on_execution(&mut self, account: &str, execution: &Execution, source: &str) -> Result<(), NexusError> {
        if execution.exec_type != ExecType::Trade {
            return Ok(());
        }
        let link = &execution.order_link_id;
        let index = match self.links.get(link) {
            Some(&i) => i,
            None => match self.ledger.order(link)? {
                Some(order) => match self.slots.iter().position(|s| s.name == order.intent.slot) {
                    Some(i) => {
                        self.links.insert(link.clone(), i);
                        i
                    }
                    None => return Ok(()),
                },
                None => return Ok(()),
            },
        };
        if self.slots[index].account != account {
            return Ok(());
        }
        let (qty, price, fee) = (dec(&execution.exec_qty), dec(&execution.exec_price), dec(&execution.exec_fee));
        let fill = FillRow {
            exec_id: execution.exec_id.clone(),
            order_link_id: link.clone(),
            slot: self.slots[index].name.clone(),
            symbol: execution.symbol.clone(),
            side: side_name(execution.side).into(),
            price,
            qty,
            fee,
            is_maker: Some(execution.is_maker),
            order_id: Some(execution.order_id.clone()),
            source: source.into(),
            ts_exchange: execution.exec_time.saturating_mul(1_000_000),
        };
        if !self.ledger.record_fill(&fill)? {
            return Ok(());
        }
        self.summary.fills += 1;
        let order = self.ledger.order(link)?;
        let bracket = order
            .as_ref()
            .and_then(|o| if o.intent.purpose == "entry" { o.intent.stop.zip(o.intent.take) } else { None });
        let slot = &mut self.slots[index];
        slot.core.on_fill(execution.side, qty, price, fee, bracket);
        let book = slot.core.book();
        self.metrics.set_slot(
            &slot.name,
            book.equity(self.markets[&slot.symbol].last_price),
            book.position,
            book.capital,
        );
        if let Some(order) = order {
            let cum = order.cum_qty + qty;
            let status = if cum + 1e-12 >= order.intent.qty {
                "Filled"
            } else if ended_short(&order.status) {
                // The order and execution streams are separate: a fill reported after its order was cancelled adds
                // to what the order traded but does not reopen it (as `PartiallyFilled` it would count as live).
                order.status.as_str()
            } else {
                "PartiallyFilled"
            };
            self.ledger.update_order(link, status, None, Some(cum), None, Some(fill.ts_exchange))?;
            if let Some(waited) = self.unbooked.get(link).copied()
                && cum + 1e-12 >= waited.filled
            {
                self.unbooked.remove(link);
                self.ended(waited.index, link, waited.rearms)?;
            }
        }
        Ok(())
    }

    /// The order stream says the order `link` of slot `index` ended with `filled` traded. It counts as ended once the
    /// fills the exchange reports are booked: the slot's next order is sized from its booked position, so one sized
    /// before them would be wrong by what they add. A bracket close re-arms then if the position is still open,
    /// whether the close ended short (cancelled, refused, expired) or traded all of a quantity
    /// `limits.max_order_notional` cut below the position.
    fn order_ended(&mut self, index: usize, link: &str, filled: f64) -> Result<(), NexusError> {
        let Some(order) = self.ledger.order(link)? else {
            self.settled(index, link);
            return Ok(());
        };
        let rearms = matches!(order.intent.purpose.as_str(), "stop" | "take");
        if order.cum_qty + 1e-12 >= filled {
            return self.ended(index, link, rearms);
        }
        self.unbooked.insert(link.to_owned(), Unbooked { index, filled, rearms, since: Instant::now() });
        Ok(())
    }

    /// The order `link` of slot `index` ended and all its fills are booked: a new entry may go. When it was a bracket
    /// close (`rearms`) and the slot still holds a position, the bracket re-arms, so that the next print through it
    /// closes what is left; without this a market close the exchange cancels (no liquidity within its price band), or
    /// one cut by the order limits, would leave the rest of the position open and unguarded for good.
    fn ended(&mut self, index: usize, link: &str, rearms: bool) -> Result<(), NexusError> {
        self.settled(index, link);
        if rearms { self.rearm(index, link) } else { Ok(()) }
    }

    /// An order of slot `index` that ended with fills not booked yet, if any: (its orderLinkId, since when).
    fn unbooked_of(&self, index: usize) -> Option<(String, Instant)> {
        self.unbooked
            .iter()
            .find(|(_, waited)| waited.index == index)
            .map(|(link, waited)| (link.clone(), waited.since))
    }

    /// Why slot `index` may send nothing now, if an order of it ended with fills not booked yet: every leg is sized
    /// from the booked position (an entry or exit from the rule's, a bracket close or a flatten from all of it), so
    /// one sized before them would be wrong by what they add. A recovery reads lost ones back from the REST history
    /// (`engine/recovery.rs`); after [`OPEN_ENTRY_LIMIT`] the wait ends with an `unbooked_expired` event.
    fn unbooked_wait(&mut self, index: usize) -> Result<Option<String>, NexusError> {
        let Some((link, since)) = self.unbooked_of(index) else { return Ok(None) };
        if since.elapsed() < OPEN_ENTRY_LIMIT {
            return Ok(Some(format!("fills of {link} not booked yet")));
        }
        let detail =
            format!("{}: fills of {link} not booked after {} s", self.slots[index].name, OPEN_ENTRY_LIMIT.as_secs());
        self.writes.push(Write::Event { kind: "unbooked_expired", detail });
        let waited = self.unbooked.remove(&link).expect("just found");
        self.ended(index, &link, waited.rearms)?;
        Ok(None)
    }

    /// Re-arms slot `index`'s bracket after its close `link` ended without closing the position (refused at create,
    /// cancelled after it, or cut by the order limits), with a `bracket_rearmed` event saying so (nothing when the
    /// slot holds no position any more).
    fn rearm(&mut self, index: usize, link: &str) -> Result<(), NexusError> {
        let slot = &mut self.slots[index];
        if slot.core.rearm_bracket()
            && let Some(bracket) = slot.core.bracket()
        {
            let market = &self.markets[&slot.symbol];
            let position = qty_text(slot.core.book().position, market.qty_scale);
            // Bracket prices come from the ATR, off the tick grid: two decimals past the tick are enough to read.
            let digits = market.price_scale.decimals() as usize + 2;
            let detail = format!(
                "{} {link} ended without closing the position ({position}): stop {:.digits$} / take {:.digits$} armed \
                 again",
                slot.name, bracket.stop, bracket.take
            );
            self.ledger.record_event("bracket_rearmed", &detail, None)?;
        }
        Ok(())
    }

    /// Why an order on `symbol` for `account` may not be sent now, if it may not.
    fn blind(&self, symbol: &str, account: &str) -> Option<String> {
        if !self.accounts.get(account).is_some_and(|a| a.up) {
            return Some("private stream down".into());
        }
        let Some(snapshot) = self.public.snapshot(symbol) else { return Some("no book".into()) };
        if !snapshot.synced || !self.markets[symbol].synced {
            return Some("book unsynced".into());
        }
        match (snapshot.bids.first(), snapshot.asks.first()) {
            (Some(b), Some(a)) if b.price < a.price => {}
            (Some(_), Some(_)) => return Some("book crossed".into()),
            _ => return Some("book one-sided".into()),
        }
        let market = &self.markets[symbol];
        if market.last_book.is_none_or(|t| t.elapsed() > self.options.config.stale_after) {
            return Some("book stale".into());
        }
        None
    }

    /// Stages one leg of a slot: checks (blind, rate, notional), picks the tactic (the champion's IEL policy for an
    /// entry; when it fails, the slot falls back and the fallback picks it), writes the intent into the open
    /// ledger transaction and queues the request; [`Engine::dispatch`] sends the queue once the transaction is on
    /// disk. `trigger` is when the frame that caused it (a bar's closing message, a trade through the bracket)
    /// arrived.
    fn stage(
        &mut self,
        index: usize,
        leg: Leg,
        decision: Option<usize>,
        trigger: Option<Trigger>,
    ) -> Result<(), NexusError> {
        let (symbol, account, name) = {
            let s = &self.slots[index];
            (s.symbol.clone(), s.account.clone(), s.name.clone())
        };
        let reason = match self.blind(&symbol, &account) {
            Some(reason) => Some(reason),
            None => self.unbooked_wait(index)?,
        };
        if let Some(reason) = reason {
            self.summary.withheld += 1;
            self.metrics.withheld.inc();
            let slot = &mut self.slots[index];
            // A bracket close waits armed: the next print through it tries again.
            let bracket = matches!(leg.purpose, Purpose::Stop | Purpose::Take);
            if slot.withheld.as_ref().is_none_or(|(_, last)| *last != reason) {
                let rearmed = if bracket { " (bracket armed again)" } else { "" };
                let detail = format!("{name} {} {}: {reason}{rearmed}", leg.purpose.as_str(), side_name(leg.side));
                self.writes.push(Write::Event { kind: "withheld", detail });
            }
            slot.withheld = Some((Instant::now(), reason));
            if bracket {
                slot.core.rearm_bracket();
            }
            return Ok(());
        }
        self.slots[index].withheld = None;
        if leg.purpose == Purpose::Entry
            && let Some((link, sent)) = &self.slots[index].open_entry
        {
            if sent.elapsed() < OPEN_ENTRY_LIMIT {
                let detail = format!("{name} entry {}: entry {link} may still fill", side_name(leg.side));
                self.writes.push(Write::Event { kind: "withheld", detail });
                return Ok(());
            }
            // No word on it for this long (the private stream lost it): its fills, if any, still book when they come.
            let detail = format!("{name}: entry {link} unresolved after {} s", OPEN_ENTRY_LIMIT.as_secs());
            self.writes.push(Write::Event { kind: "open_entry_expired", detail });
            self.slots[index].open_entry = None;
        }
        let limits = self.options.config.limits.clone();
        let slot = &mut self.slots[index];
        while slot.sent.front().is_some_and(|t| t.elapsed() > Duration::from_secs(60)) {
            slot.sent.pop_front();
        }
        if slot.sent.len() >= limits.max_orders_per_minute as usize {
            let detail = format!("{name}: more than {} orders a minute", limits.max_orders_per_minute);
            self.writes.push(Write::Event { kind: "refused", detail });
            return Ok(());
        }
        let market = &self.markets[&symbol];
        let snapshot = self.public.snapshot(&symbol).expect("configured");
        let (bid, ask) = (snapshot.bids[0], snapshot.asks[0]);
        let mid = (market.price_scale.to_f64(bid.price) + market.price_scale.to_f64(ask.price)) / 2.0;
        let mut qty = leg.qty;
        if qty * mid > limits.max_order_notional {
            qty = limits.max_order_notional / mid;
        }
        let qty_text = qty_dec(qty, market.qty_scale);
        let qty = dec(&qty_text);
        if qty <= 0.0 {
            return Ok(());
        }
        let tactic = if leg.purpose == Purpose::Entry {
            let obs = entry_observation(market, leg.side, qty, bid, ask, mid);
            let row = market.last_row.clone();
            match slot.models.tactic(&row, &obs) {
                Ok(tactic) => tactic,
                // The champion's IEL policy failed: its fallback takes over and picks this leg's tactic.
                Err(error) => {
                    self.fall_back(index, &error)?;
                    self.slots[index].models.tactic(&row, &obs)?
                }
            }
        } else {
            Tactic::Aggressive
        };
        let (market, slot) = (&self.markets[&symbol], &mut self.slots[index]);
        let price = crate::pitcrew::limit_price(tactic, leg.side, bid.price, ask.price);
        let seq = match self.seqs.get_mut(&name) {
            Some(seq) => {
                *seq += 1;
                *seq
            }
            None => {
                let seq = self.ledger.next_seq(&name)?;
                self.seqs.insert(name.clone(), seq);
                seq
            }
        };
        let link = format!("{name}-{}-{seq}", self.instance);
        let intent = OrderIntent {
            order_link_id: link.clone(),
            slot: name.clone(),
            seq,
            symbol: symbol.clone(),
            side: side_name(leg.side).into(),
            qty,
            price: price.map(|p| market.price_scale.to_f64(p)),
            tactic: tactic.as_str().into(),
            purpose: leg.purpose.as_str().into(),
            reduce_only: false,
            decision_id: None,
            stop: leg.stop,
            take: leg.take,
            book_update_id: i64::try_from(snapshot.update_id).ok(),
            mid: Some(mid),
        };
        // Committed by `persist` and synced to disk before the order leaves: a crash after the commit leaves an
        // intent that the next start looks up by orderLinkId, never a sent order the ledger does not know.
        self.writes.push(Write::Intent { intent: Box::new(intent), decision });
        self.links.insert(link.clone(), index);
        let mut request = match price {
            None => CreateOrderRequest::market(Category::Linear, &symbol, leg.side, qty_text),
            Some(p) => {
                let mut r = CreateOrderRequest::limit(
                    Category::Linear,
                    &symbol,
                    leg.side,
                    qty_text,
                    Dec::from_units(p, market.price_scale),
                );
                r.time_in_force = Some(TimeInForce::PostOnly);
                r
            }
        };
        request.order_link_id = Some(link.clone());
        if leg.purpose == Purpose::Entry {
            slot.open_entry = Some((link.clone(), Instant::now()));
        }
        if let Some(frame) = trigger {
            self.metrics
                .record_decision(frame.received.elapsed(), frame.taken.saturating_duration_since(frame.received));
        }
        slot.sent.push_back(Instant::now());
        self.await_end(&link, index, price.is_some());
        self.summary.orders += 1;
        self.metrics.orders.inc();
        self.outbox.push(Outgoing {
            index,
            account,
            link,
            purpose: leg.purpose,
            resting: price.is_some(),
            request: Box::new(request),
            trigger,
        });
        Ok(())
    }

    /// Writes what the decisions produced (the bar, each slot's decision and equity, the staged events and intents)
    /// in one ledger transaction (one sync), then sends the staged orders: every intent is on disk before its
    /// request leaves. Nothing is written while deciding, so the time from a frame to its orders being ready is the
    /// engine's computation alone.
    fn persist(&mut self, bar: Option<&BarWrite<'_>>, decisions: &[Decided]) -> Result<(), NexusError> {
        if bar.is_none() && decisions.is_empty() && self.writes.is_empty() && self.outbox.is_empty() {
            return Ok(());
        }
        self.ledger.begin()?;
        let written = self.write_all(bar, decisions);
        match written {
            Ok(()) => {
                self.ledger.commit()?;
                // Orders wait on this sync: done here, not handed to the sync thread (see durable.rs for why).
                let durable =
                    if self.outbox.is_empty() { self.ledger.request_sync() } else { self.ledger.sync_here()? };
                self.dispatch(durable);
                Ok(())
            }
            Err(e) => {
                let _ = self.ledger.connection().execute_batch("ROLLBACK");
                for order in std::mem::take(&mut self.outbox) {
                    self.links.remove(&order.link);
                }
                Err(e)
            }
        }
    }

    fn write_all(&mut self, bar: Option<&BarWrite<'_>>, decisions: &[Decided]) -> Result<(), NexusError> {
        if let Some(bar) = bar {
            self.ledger.record_bar(bar.symbol, bar.open_ts, bar.ohlcv, bar.row)?;
        }
        let mut ids = Vec::with_capacity(decisions.len());
        for decided in decisions {
            ids.push(self.ledger.record_decision(&decided.row)?);
            let e = &decided.equity;
            self.ledger.record_equity(
                &decided.row.slot,
                e.equity,
                e.cash,
                e.unrealized,
                e.position,
                Some(e.mark),
                Some(decided.row.bar_ts),
            )?;
        }
        for write in std::mem::take(&mut self.writes) {
            match write {
                Write::Event { kind, detail } => self.ledger.record_event(kind, &detail, None)?,
                Write::Intent { mut intent, decision } => {
                    intent.decision_id = decision.map(|d| ids[d]);
                    self.ledger.record_intent(&intent)?;
                }
            }
        }
        Ok(())
    }

    /// Sends the staged orders, each from its own task once the ledger's sync `durable` (which covers their intents)
    /// is done: the loop never waits on the network, and the answers come back through the ack channel in any order.
    fn dispatch(&mut self, durable: u64) {
        if self.outbox.is_empty() {
            return;
        }
        let progress = self.ledger.sync_progress();
        for order in std::mem::take(&mut self.outbox) {
            let rest = self.accounts[&order.account].rest.clone();
            let acks = self.acks_tx.clone();
            let metrics = self.metrics.clone();
            let slot = self.slots[order.index].name.clone();
            let mut progress = progress.clone();
            self.in_flight += 1;
            self.dispatched = true;
            tokio::spawn(async move {
                let synced = progress.wait_for(|s| s.failed || s.generation >= durable).await.is_ok_and(|s| !s.failed);
                if !synced {
                    let _ = acks.send(Ack::Unsent);
                    return;
                }
                if let Some(frame) = order.trigger {
                    metrics.record_latency(&slot, frame.received.elapsed());
                }
                let result = rest.create_order(&order.request).await;
                let _ = acks.send(Ack::Create {
                    index: order.index,
                    link: order.link,
                    purpose: order.purpose,
                    resting: order.resting,
                    result,
                });
            });
        }
    }

    /// A request's answer: the order's status in the ledger, a resting order remembered, a refused bracket rearmed.
    fn on_ack(&mut self, ack: Ack) -> Result<(), NexusError> {
        self.in_flight = self.in_flight.saturating_sub(1);
        match ack {
            Ack::Create { index, link, purpose, resting, result } => match result {
                Ok(ack) => {
                    self.answered(&link);
                    self.ledger.acknowledge(&link, &ack.order_id)?;
                    if resting {
                        let slot = &mut self.slots[index];
                        let late = slot.cancel_on_ack.iter().position(|l| *l == link);
                        slot.resting.push(link);
                        if let Some(at) = late {
                            // Its bar passed while the create was on its way: cancelled now, as it would have been.
                            slot.cancel_on_ack.swap_remove(at);
                            self.cancel_resting(index, "unfilled at the next bar");
                        }
                    }
                }
                Err(e) if e.outcome_unknown() || matches!(e, ClientError::UnknownOutcome { .. }) => {
                    self.answered(&link);
                    self.ledger.update_order(&link, "unknown", None, None, Some(&e.to_string()), None)?;
                }
                Err(e) => {
                    self.settled(index, &link);
                    self.ledger.update_order(&link, "Rejected", None, None, Some(&e.to_string()), None)?;
                    if matches!(purpose, Purpose::Stop | Purpose::Take) {
                        self.rearm(index, &link)?;
                    }
                }
            },
            Ack::Unsent => {
                return Err(NexusError::Ledger {
                    path: self.ledger.path().to_owned(),
                    message: crate::durable::SYNC_FAILED.into(),
                });
            }
            Ack::Cancel { link, result, why } => {
                match result {
                    Ok(()) => self.ledger.order_event(&link, "cancel", None, Some(why), None)?,
                    Err(refused) => {
                        let detail = format!("{why}: {refused}");
                        self.ledger.order_event(&link, "cancel_refused", None, Some(&detail), None)?;
                    }
                }
                // Cancelled, or refused because the exchange had already ended it: the order stream owes its end.
                self.await_cancelled(&link)?;
            }
        }
        Ok(())
    }

    /// Waits (bounded) for the answers of the requests in flight, so the stop books what they did.
    async fn drain(&mut self, acks: &mut mpsc::UnboundedReceiver<Ack>) -> Result<(), NexusError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.in_flight > 0 {
            match tokio::time::timeout_at(deadline, acks.recv()).await {
                Ok(Some(ack)) => self.on_ack(ack)?,
                _ => break,
            }
        }
        Ok(())
    }

    /// A bar of `symbol` closed: book it, then every slot on the symbol decides.
    /// `trigger` is when the frame that closed the bar arrived.
    async fn on_bar(&mut self, symbol: &str, open_ts: i64, row: Vec<f64>, trigger: Trigger) -> Result<(), NexusError> {
        self.summary.bars += 1;
        let names = self.markets[symbol].features.names();
        let at = |name: &str| names.iter().position(|n| n == name).map_or(f64::NAN, |i| row[i]);
        let bar = Bar { open: at("open"), high: at("high"), low: at("low"), close: at("close") };
        let volume = at("volume");
        self.markets.get_mut(symbol).expect("known").last_row = row.clone();
        if !bar.close.is_finite() {
            return Ok(());
        }
        let close_ts = open_ts.saturating_add(i64::try_from(self.options.config.bar.as_nanos()).unwrap_or(0));
        self.maybe_reweight(close_ts)?;
        let indices: Vec<usize> =
            (0..self.slots.len()).filter(|&i| self.slots[i].symbol == symbol && !self.slots[i].dead).collect();
        // A passive order not filled within its bar is cancelled: its decision is one bar old.
        for &index in &indices {
            self.cancel_resting(index, "unfilled at the next bar");
        }
        // Decide and stage every order first (computation only), then the bar, decisions, equity snapshots and
        // intents in one transaction (one sync), then the orders.
        let mut planned = Vec::new();
        let decisions = self.decide(symbol, open_ts, &row, &bar, &indices, &mut planned)?;
        for (index, leg, decision) in planned {
            self.stage(index, leg, Some(decision), Some(trigger))?;
        }
        let ohlcv = [bar.open, bar.high, bar.low, bar.close, volume];
        self.persist(Some(&BarWrite { symbol, open_ts, ohlcv, row: &row }), &decisions)?;
        self.let_orders_go().await;
        // The bench decides on the same bar, then a promotion swaps models before the next bar's decisions.
        self.pitcrew_after_bar(symbol, open_ts, &row, &bar, &decisions)
    }

    /// Lets the order tasks just spawned write their requests before the loop takes up more work: on the one-thread
    /// runtime they would otherwise wait behind every frame already queued (and the rest of this bar's work).
    async fn let_orders_go(&mut self) {
        if std::mem::take(&mut self.dispatched) {
            tokio::task::yield_now().await;
        }
    }

    /// The order `link` of slot `index` ended (filled, cancelled or refused): a new entry may go.
    fn settled(&mut self, index: usize, link: &str) {
        self.awaiting.remove(link);
        let slot = &mut self.slots[index];
        if slot.open_entry.as_ref().is_some_and(|(open, _)| open == link) {
            slot.open_entry = None;
        }
        slot.cancel_on_ack.retain(|l| l != link);
    }

    /// Cancels the slot's resting passive orders, each from its own task (the answer comes back as an ack).
    fn cancel_resting(&mut self, index: usize, why: &'static str) {
        let slot = &mut self.slots[index];
        // A passive entry whose create is still on its way cannot be cancelled yet: it is, once acknowledged.
        if let Some((link, _)) = &slot.open_entry
            && !slot.resting.contains(link)
            && !slot.cancel_on_ack.contains(link)
        {
            slot.cancel_on_ack.push(link.clone());
        }
        let resting = std::mem::take(&mut self.slots[index].resting);
        let rest = self.accounts[&self.slots[index].account].rest.clone();
        let symbol = self.slots[index].symbol.clone();
        for link in resting {
            let cancel = CancelOrderRequest::of_link(Category::Linear, &symbol, &link);
            let (rest, acks) = (rest.clone(), self.acks_tx.clone());
            self.in_flight += 1;
            self.dispatched = true;
            tokio::spawn(async move {
                let result = rest.cancel_order(&cancel).await.map(|_| ()).map_err(|e| e.to_string());
                let _ = acks.send(Ack::Cancel { link, result, why });
            });
        }
    }

    /// The price a slot's position is valued at by the Watchtower: the exchange's mark while its tickers are no
    /// older than `stale_after`, else the mid of the supervisor's synced book, else the last trade.
    fn mark(&self, symbol: &str) -> f64 {
        let market = &self.markets[symbol];
        let fresh = market.mark_at.is_some_and(|at| at.elapsed() <= self.options.config.stale_after);
        let mid = self.public.snapshot(symbol).and_then(|book| match (book.bids.first(), book.asks.first()) {
            (Some(b), Some(a)) if book.synced => {
                Some((market.price_scale.to_f64(b.price) + market.price_scale.to_f64(a.price)) / 2.0)
            }
            _ => None,
        });
        crate::watchtower::valuation_price(fresh.then_some(market.mark_price), mid, market.last_price)
    }

    /// The Watchtower, on every tick of `symbol` (a book message, a trade or a ticker): kills each live slot on it
    /// whose equity at the mark fell to $0 or below what the minimum order needs, and keeps flattening the dead ones.
    fn watch(&mut self, symbol: &str, ts_exchange: i64, trigger: Trigger) -> Result<(), NexusError> {
        let mark = self.mark(symbol);
        if !mark.is_finite() {
            return Ok(());
        }
        let market = &self.markets[symbol];
        let threshold = crate::watchtower::threshold(&market.instrument, mark, self.options.config.rule.max_leverage);
        for index in 0..self.slots.len() {
            if self.slots[index].symbol != symbol {
                continue;
            }
            if self.slots[index].dead {
                self.keep_flattening(index, trigger)?;
                continue;
            }
            let equity = self.slots[index].core.book().equity(mark);
            if let Some(reason) = crate::watchtower::verdict(equity, threshold) {
                self.kill(index, &reason, equity, threshold, ts_exchange, trigger)?;
            }
        }
        Ok(())
    }

    /// A dead slot's position is closed by a market order, retried while it is withheld (blind) or did not fill.
    fn keep_flattening(&mut self, index: usize, trigger: Trigger) -> Result<(), NexusError> {
        let slot = &self.slots[index];
        let Some(leg) = slot.core.flatten() else { return Ok(()) };
        let retry_after = if slot.withheld.is_some() { Duration::from_millis(250) } else { Duration::from_secs(5) };
        if slot.flattened_at.is_some_and(|at| at.elapsed() < retry_after) {
            return Ok(());
        }
        self.slots[index].flattened_at = Some(Instant::now());
        self.stage(index, leg, None, Some(trigger))?;
        self.persist(None, &[])
    }

    /// The Watchtower's verdict: the death and the recycling request are on disk before anything acts on them; then
    /// the slot's orders are cancelled, its position flattened, its capital released (weight 0: its leftover equity
    /// goes back to its account at the CWO's next pass).
    fn kill(
        &mut self,
        index: usize,
        reason: &str,
        equity: f64,
        threshold: f64,
        ts_exchange: i64,
        trigger: Trigger,
    ) -> Result<(), NexusError> {
        let (name, symbol) = (self.slots[index].name.clone(), self.slots[index].symbol.clone());
        let ledger_path = self.ledger.path().to_owned();
        let dna = crate::watchtower::best_dna(self.ledger.connection(), &symbol, bar_nanos(&self.options.config)?)
            .map_err(|e| NexusError::Ledger { path: ledger_path.clone(), message: format!("best model: {e}") })?;
        let death = crate::watchtower::Death {
            slot: &name,
            symbol: &symbol,
            reason,
            ts_exchange,
            equity,
            threshold,
            ledger: &ledger_path,
            run_id: self.ledger.run_id(),
        };
        let request = match &dna {
            Some(dna) => {
                let document = crate::watchtower::request(&death, dna);
                let outbox = self.options.out.join("outbox");
                let path = crate::watchtower::write_request(&outbox, &name, ts_exchange, &document)
                    .map_err(|e| NexusError::Runtime(format!("{}: recycling request: {e}", outbox.display())))?;
                Some(path.display().to_string())
            }
            None => None,
        };
        self.ledger.record_death(&crate::ledger::DeathRow {
            slot: name.clone(),
            symbol: symbol.clone(),
            model_id: Some(self.slots[index].models.sha256.clone()),
            reason: reason.to_owned(),
            equity,
            threshold,
            request,
            ts_exchange: Some(ts_exchange),
        })?;
        let base = self.slots[index].core.book().capital;
        self.ledger.record_weight(&name, 0.0, 0.0, base, Some(ts_exchange))?;
        tracing::warn!(slot = %name, reason, "the Watchtower killed the slot");
        let slot = &mut self.slots[index];
        slot.dead = true;
        slot.last_decision = "dead".into();
        self.metrics.set_slot(&name, equity, slot.core.book().position, 0.0);
        self.cancel_resting(index, "the slot died");
        self.keep_flattening(index, trigger)
    }

    /// The CWO: when `every` of market time has passed since the last reweight, splits each account's capital among
    /// its live slots (see `crate::cwo`) and moves each slot's accounting capital so its equity is its share; every
    /// weight goes to the ledger before the next order is sized on it.
    fn maybe_reweight(&mut self, now_ns: i64) -> Result<(), NexusError> {
        let Some(params) = self.options.config.cwo.clone() else { return Ok(()) };
        let every = i64::try_from(params.every.as_nanos()).unwrap_or(i64::MAX);
        match self.last_reweight_ns {
            None => {
                self.last_reweight_ns = Some(now_ns);
                return Ok(());
            }
            Some(last) if now_ns.saturating_sub(last) < every => return Ok(()),
            Some(_) => self.last_reweight_ns = Some(now_ns),
        }
        self.reweight(now_ns, &params)
    }

    /// One CWO pass at market time `now_ns` (see [`Engine::maybe_reweight`]); also run at once when a dead slot is
    /// refilled, so it trades on its share rather than on what it died with.
    fn reweight(&mut self, now_ns: i64, params: &crate::cwo::CwoParams) -> Result<(), NexusError> {
        let marks: Vec<f64> = self.slots.iter().map(|s| self.markets[&s.symbol].last_price).collect();
        if marks.iter().any(|m| !m.is_finite()) {
            return Ok(());
        }
        let equities: Vec<f64> = self.slots.iter().zip(&marks).map(|(s, &m)| s.core.book().equity(m)).collect();
        // A dead slot still holding a position keeps its equity until it is flat; a flat one gives it back.
        let pooled: Vec<bool> = self.slots.iter().map(|s| !s.dead || s.core.book().position == 0.0).collect();
        let live_capital: f64 = (0..self.slots.len()).filter(|&i| pooled[i]).map(|i| equities[i]).sum();
        let accounts: Vec<String> = self.accounts.keys().cloned().collect();
        let mut rows = Vec::new();
        for account in accounts {
            let members: Vec<usize> =
                (0..self.slots.len()).filter(|&i| self.slots[i].account == account && pooled[i]).collect();
            let pool: f64 = members.iter().map(|&i| equities[i]).sum();
            let scores: Vec<Option<f64>> = members
                .iter()
                .map(|&i| {
                    let slot = &self.slots[i];
                    let recent: Vec<f64> = slot.returns.iter().rev().take(params.lookback).copied().collect();
                    (!slot.dead).then(|| crate::cwo::score(&recent, params.shrink))
                })
                .collect();
            let shares = crate::cwo::shares(&scores, params);
            for (k, &i) in members.iter().enumerate() {
                let target = shares[k] * pool.max(0.0);
                let slot = &mut self.slots[i];
                let transfer = target - equities[i];
                let capital = slot.core.book().capital + transfer;
                slot.core.set_capital(capital);
                // The next per-bar return runs from the last bar's close, shifted by the transfer: the slot's trading
                // since that close (fees, the bar's P&L) stays in its record and the moved capital does not.
                slot.last_equity += transfer;
                let weight = if live_capital > 0.0 { target / live_capital } else { 0.0 };
                rows.push((slot.name.clone(), weight, target, capital));
            }
        }
        for (name, weight, target, base) in &rows {
            self.ledger.record_weight(name, *weight, *target, *base, Some(now_ns))?;
        }
        let detail = serde_json::json!({"live_capital": live_capital, "slots": rows.len()}).to_string();
        self.ledger.record_event("reweight", &detail, Some(now_ns))
    }

    /// Every slot on the symbol decides on the closed bar; the legs to send go to `planned` with the index of their
    /// decision in the returned list. Nothing is written here.
    fn decide(
        &mut self,
        symbol: &str,
        open_ts: i64,
        row: &[f64],
        bar: &Bar,
        indices: &[usize],
        planned: &mut Vec<(usize, Leg, usize)>,
    ) -> Result<Vec<Decided>, NexusError> {
        let mut decided = Vec::with_capacity(indices.len());
        for &index in indices {
            let (signal, p_up) = match self.slots[index].models.on_bar(row, bar.close) {
                Ok(output) => output,
                Err(error) => {
                    self.fall_back(index, &error)?;
                    self.slots[index].models.on_bar(row, bar.close)?
                }
            };
            let name = &self.slots[index].name;
            self.pitcrew.warm_fallback(index, name, row, bar.close);
            let slot = &mut self.slots[index];
            let (decision, legs) = slot.core.on_bar(bar, signal, p_up);
            let equity = slot.core.book().equity(bar.close);
            if slot.last_equity > 0.0 && equity > 0.0 {
                slot.returns.push_back((equity / slot.last_equity).ln());
                if slot.returns.len() > 1_000 {
                    slot.returns.pop_front();
                }
            }
            slot.last_equity = equity;
            let entry = decision.entry();
            let row = DecisionRow {
                slot: slot.name.clone(),
                symbol: symbol.to_owned(),
                bar_ts: open_ts,
                signal,
                p_up,
                kind: decision.kind().into(),
                side: entry.map(|e| side_name(e.side).to_owned()),
                qty: entry.map(|e| e.qty),
                stop: entry.map(|e| e.stop),
                take: entry.map(|e| e.take),
                win_probability: p_up,
                equity,
                ts_exchange: open_ts,
                model_id: slot.models.sha256.clone(),
            };
            slot.last_decision = decision.kind().into();
            let book = *slot.core.book();
            let snapshot = EquityWrite {
                equity,
                cash: book.cash(),
                unrealized: book.unrealized(bar.close),
                position: book.position,
                mark: bar.close,
            };
            self.metrics.set_slot(&slot.name, equity, book.position, book.capital);
            planned.extend(legs.into_iter().map(|leg| (index, leg, decided.len())));
            decided.push(Decided { row, equity: snapshot });
        }
        Ok(decided)
    }

    fn book_header(message: &BookMessage) -> MessageHeader {
        MessageHeader {
            first_row: 0,
            symbol: 0,
            kind: message.kind,
            update_id: message.update_id,
            seq: message.seq,
            ts: message.ts.saturating_mul(1_000_000),
        }
    }

    /// Feeds the feature engines every held event the reorder window has passed, in exchange-time order. `trigger`
    /// is the frame that moved the window: the bars it closes are decided in answer to it.
    ///
    /// A feature-engine book that refuses a delta (a gap) waits for the stream's next snapshot, which the
    /// supervisor's resubscription brings through the same held stream: `apexctl features` on the recording does the
    /// same, so the rows stay equal. Only when the event channel dropped events (the gap is the engine's, not the
    /// stream's: no snapshot is coming) does it restart from the supervisor's book, once the held stream reaches that
    /// book's update id; its rows then differ from the recording's, and a `features_resynced` event says so.
    fn release(&mut self, closed: &mut Vec<(String, i64, Vec<f64>, Trigger)>, trigger: Trigger) {
        for (symbol, market) in &mut self.markets {
            while let Some(held) = market.next_due() {
                let mut emit = |ts: i64, row: &[f64]| closed.push((symbol.clone(), ts, row.to_vec(), trigger));
                match held {
                    Held::Book(message) => {
                        let header = Self::book_header(&message);
                        market.now_ns = market.now_ns.max(header.ts);
                        let Some(verdict) =
                            feed_book(&mut market.features, &mut market.restart, &header, &message, &mut emit)
                        else {
                            continue;
                        };
                        if verdict.is_err() && header.kind == UpdateKind::Delta {
                            let dropped = self.public.status().borrow().events_dropped;
                            if dropped > self.public_dropped
                                && let Some(reference) = self.public.snapshot(&message.symbol)
                                && reference.synced
                                && reference.update_id > header.update_id
                            {
                                let detail = format!(
                                    "{symbol}: the event channel dropped {} event(s); the feature engine's book \
                                     refused u={} and restarts from the supervisor's book at u={}: bar rows from \
                                     here differ from `apexctl features` on the recording",
                                    dropped - self.public_dropped,
                                    header.update_id,
                                    reference.update_id
                                );
                                self.writes.push(Write::Event { kind: "features_resynced", detail });
                                market.restart = Some(reference);
                            }
                            self.public_dropped = dropped;
                        }
                        let top = market.features.book();
                        if let (Some(b), Some(a)) = (top.best_bid(), top.best_ask()) {
                            let mid = (market.price_scale.to_f64(b.price) + market.price_scale.to_f64(a.price)) / 2.0;
                            market.last_mid = mid;
                            market.mid_vol.on_mid(header.ts, mid);
                        }
                    }
                    Held::Trade(trade) => {
                        market.now_ns = market.now_ns.max(trade.ts);
                        let _ = market.features.on_trade(&trade, &mut emit);
                    }
                }
            }
        }
    }

    async fn on_public(&mut self, event: PublicEvent) -> Result<(), NexusError> {
        let taken = Instant::now();
        let mut closed: Vec<(String, i64, Vec<f64>, Trigger)> = Vec::new();
        match event {
            PublicEvent::Book(message) => {
                let Some(market) = self.markets.get_mut(&message.symbol) else { return Ok(()) };
                let received = message.received.into_std();
                market.last_book = Some(received);
                let trigger = Trigger { received, taken };
                let (symbol, ts) = (message.symbol.clone(), message.ts.saturating_mul(1_000_000));
                market.hold(ts, Held::Book(message));
                self.release(&mut closed, trigger);
                self.watch(&symbol, ts, trigger)?;
            }
            PublicEvent::Trades { message, received } => {
                let trigger = Trigger { received: received.into_std(), taken };
                let mut prints = Vec::new();
                for trade in &message.data {
                    let Some(market) = self.markets.get_mut(trade.s.as_ref()) else { continue };
                    let (Ok(price), Ok(size)) = (trade.p.parse::<f64>(), trade.v.parse::<f64>()) else { continue };
                    let side = if format!("{:?}", trade.S) == "Buy" { 1 } else { -1 };
                    let ts = trade.T.saturating_mul(1_000_000);
                    market.hold(ts, Held::Trade(Trade { ts, side, price, size }));
                    // Brackets act on the print at once; only the features wait for the stream's order.
                    market.last_price = price;
                    prints.push((trade.s.to_string(), price, ts));
                }
                self.release(&mut closed, trigger);
                for (symbol, price, ts) in prints {
                    self.watch(&symbol, ts, trigger)?;
                    for index in 0..self.slots.len() {
                        let retry_wait = self.slots[index]
                            .withheld
                            .as_ref()
                            .is_some_and(|(at, _)| at.elapsed() < Duration::from_millis(250));
                        if self.slots[index].symbol == symbol
                            && !self.slots[index].dead
                            && !retry_wait
                            && let Some(leg) = self.slots[index].core.check_bracket(price)
                        {
                            self.stage(index, leg, None, Some(trigger))?;
                            self.persist(None, &[])?;
                        }
                    }
                    self.pitcrew_on_trade(&symbol, price);
                }
            }
            PublicEvent::Connected { .. } | PublicEvent::Disconnected { .. } => {
                if matches!(event, PublicEvent::Connected { .. }) {
                    self.metrics.reconnects.inc();
                }
                // A new connection's books wait for their snapshots; a lost one's are stale.
                let reason = format!("{event:?}").chars().take(160).collect::<String>();
                let symbols: Vec<String> = self.markets.keys().cloned().collect();
                for symbol in symbols {
                    self.set_synced(&symbol, false, &reason)?;
                }
            }
            PublicEvent::Ticker(ticker) => {
                let Some(market) = self.markets.get_mut(&ticker.symbol) else { return Ok(()) };
                let mark = ticker.mark_price.as_ref().and_then(|d| d.as_str().parse::<f64>().ok());
                if let Some(mark) = mark.filter(|p| p.is_finite() && *p > 0.0) {
                    market.mark_price = mark;
                    let received = Instant::now();
                    market.mark_at = Some(received);
                    let ts = market.now_ns;
                    self.watch(&ticker.symbol, ts, Trigger { received, taken })?;
                }
            }
            PublicEvent::BookResync { symbol, reason } => self.set_synced(&symbol, false, &reason)?,
            PublicEvent::BookSynced { symbol, update_id, rebased } => {
                self.set_synced(&symbol, true, &format!("u={update_id} rebased={rebased}"))?;
            }
            _ => {}
        }
        for (symbol, ts, row, trigger) in closed {
            self.note_late(&symbol, ts)?;
            self.on_bar(&symbol, ts, row, trigger).await?;
        }
        Ok(())
    }

    /// Events that came after their bar had closed changed no row, so rows since differ from `apexctl features` on
    /// the recording: said once per bar that closes after them (a `late_public` event), with how to widen the window.
    fn note_late(&mut self, symbol: &str, open_ns: i64) -> Result<(), NexusError> {
        let Some(market) = self.markets.get_mut(symbol) else { return Ok(()) };
        let late = market.features.late_events();
        if late == market.late_noted {
            return Ok(());
        }
        let detail = format!(
            "{symbol}: {} book message(s) or trade(s) came after their bar had closed and count in no bar row \
             (engine.reorder_window {} ms is shorter than this stream's skew)",
            late - market.late_noted,
            market.reorder_ns / 1_000_000
        );
        market.late_noted = late;
        self.ledger.record_event("late_public", &detail, Some(open_ns))
    }

    /// The engine's view of a symbol's book stream changed: noted in the ledger (with why) before anything acts on it.
    fn set_synced(&mut self, symbol: &str, synced: bool, why: &str) -> Result<(), NexusError> {
        let Some(market) = self.markets.get_mut(symbol) else { return Ok(()) };
        if market.synced == synced {
            return Ok(());
        }
        market.synced = synced;
        let kind = if synced { "book_synced" } else { "book_unsynced" };
        self.ledger.record_event(kind, &format!("{symbol}: {why}"), None)
    }

    async fn on_private(&mut self, account: &str, event: PrivateEvent) -> Result<(), NexusError> {
        match event {
            PrivateEvent::Up { .. } => {
                if let Some(a) = self.accounts.get_mut(account) {
                    a.up = true;
                }
                self.ledger.record_event("private_up", account, None)?;
                // Whatever happened while the stream was down is in the REST history.
                self.catch_up_executions(account, "reconcile").await?;
            }
            PrivateEvent::Down { .. } | PrivateEvent::AuthFailed { .. } => {
                if let Some(a) = self.accounts.get_mut(account) {
                    a.up = false;
                }
                self.ledger.record_event(
                    "private_down",
                    &format!("{account}: {event:?}").chars().take(200).collect::<String>(),
                    None,
                )?;
            }
            PrivateEvent::Executions(list) => {
                for execution in &list {
                    self.on_execution(account, execution, "ws")?;
                }
            }
            PrivateEvent::Orders(list) => {
                for order in list {
                    if let Some(&index) = self.links.get(&order.order_link_id) {
                        let status = format!("{:?}", order.order_status);
                        let open = order.order_status.is_open();
                        // Ended without trading all of it: why, in Bybit's words, for whoever reads the ledger.
                        let short = !open && order.order_status != OrderStatus::Filled;
                        let why = short
                            .then(|| format!("rejectReason={} cancelType={}", order.reject_reason, order.cancel_type));
                        if !matches!(status.as_str(), "Filled" | "PartiallyFilled") {
                            self.ledger.update_order(
                                &order.order_link_id,
                                &status,
                                Some(&order.order_id),
                                None,
                                why.as_deref(),
                                None,
                            )?;
                        }
                        if !open && !self.recovered_ends.remove(&order.order_link_id) {
                            self.order_ended(index, &order.order_link_id, dec(&order.cum_exec_qty))?;
                        }
                    }
                }
            }
            PrivateEvent::Protection { connection, topic, refused } => {
                crate::protection::on_subscribed(&self.ledger, account, connection, &topic, refused.as_deref())?;
            }
            PrivateEvent::Positions(list) => {
                for p in list {
                    let signed = signed_size(&p);
                    self.ledger.record_position(
                        "account",
                        account,
                        &p.symbol,
                        signed,
                        p.avg_price.as_ref().map(dec),
                        None,
                    )?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes `status.json` (atomically) for `apexctl trade`'s table.
    fn write_status(&self, state: &str) {
        let slots: Vec<serde_json::Value> = self
            .slots
            .iter()
            .map(|s| {
                let market = &self.markets[&s.symbol];
                let book = s.core.book();
                let synced = self.public.is_synced(&s.symbol);
                serde_json::json!({
                    "slot": s.name, "symbol": s.symbol, "model": s.models.label,
                    "equity": book.equity(market.last_price), "position": book.position, "capital": book.capital,
                    "last_decision": s.last_decision, "book": if synced { "synced" } else { "unsynced" },
                    "state": if s.dead { "dead" } else { "live" },
                    "latency_p99_us": self.metrics.slot_p99_us(&s.name),
                })
            })
            .collect();
        let value = serde_json::json!({
            "state": state, "pid": std::process::id(), "metrics": self.metrics.address(),
            "latency_us": self.metrics.latency_summary_us(),
            "decision_us": self.metrics.decision_summary_us(),
            "queue_us": self.metrics.queue_summary_us(),
            "bars": self.summary.bars, "orders": self.summary.orders,
            "fills": self.summary.fills, "withheld": self.summary.withheld, "slots": slots,
        });
        let _ = status::write_json(&self.options.out.join("status.json"), &value);
    }

    /// Runs until the duration passes or a signal comes; then stops sending, cancels open orders (if configured),
    /// books the last fills and flushes the ledger.
    ///
    /// # Errors
    /// `Ledger`/`Venue`/`Runtime` failures while running.
    pub async fn run(
        mut self,
        mut private: PrivateRx,
        mut public: mpsc::Receiver<PublicEvent>,
    ) -> Result<Summary, NexusError> {
        let deadline = self.options.duration.map(|d| tokio::time::Instant::now() + d);
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| NexusError::Runtime(format!("signal handler: {e}")))?;
        let mut status_every = tokio::time::interval(self.options.config.status_every);
        let mut stopped = "duration";
        let mut acks = self.acks_rx.take().expect("run once");
        let mut found = self.start_pitcrew().await?;
        let launcher_gone = apex_core::process::launcher_gone();
        tokio::pin!(launcher_gone);
        loop {
            let sleep_until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = tokio::signal::ctrl_c() => { stopped = "SIGINT"; break; }
                _ = sigterm.recv() => { stopped = "SIGTERM"; break; }
                // apexctl trade died (even by SIGKILL): stop as on SIGTERM rather than trade on unseen.
                () = &mut launcher_gone => { stopped = "launcher"; break; }
                () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => break,
                // Fills and acks are written at once and synced by the ledger's thread; the next order waits for it.
                Some((account, event)) = private.recv() => {
                    self.on_private(&account, event).await?;
                    let _ = self.ledger.request_sync();
                    self.let_orders_go().await;
                }
                Some(ack) = acks.recv() => {
                    self.on_ack(ack)?;
                    let _ = self.ledger.request_sync();
                    self.let_orders_go().await;
                }
                Some(event) = public.recv() => {
                    self.on_public(event).await?;
                    self.let_orders_go().await;
                }
                // A new bundle verified (or refused) by the Pit Crew's watcher, taken between two bars.
                Some(bundle) = async { found.as_mut()?.recv().await }, if found.is_some() => self.on_bundle(bundle)?,
                _ = status_every.tick() => {
                    self.recover_lost().await?;
                    self.write_status("running");
                    self.metrics.set_synced(self.markets.keys().filter(|s| self.public.is_synced(s)).count());
                }
            }
        }
        self.watcher = None;
        tracing::info!(reason = stopped, "stopping: no new orders");
        self.ledger.record_event("stop", stopped, None)?;
        self.drain(&mut acks).await?;
        if self.options.config.cancel_on_exit {
            let names: Vec<String> = self.accounts.keys().cloned().collect();
            for account in names {
                let rest = self.accounts[&account].rest.clone();
                for order in self.ledger.live_orders()? {
                    let Some(&index) = self.links.get(&order.intent.order_link_id) else { continue };
                    if self.slots[index].account != account || order.intent.price.is_none() {
                        continue;
                    }
                    let cancel = CancelOrderRequest::of_link(
                        Category::Linear,
                        &order.intent.symbol,
                        &order.intent.order_link_id,
                    );
                    if rest.cancel_order(&cancel).await.is_ok() {
                        self.ledger.update_order(
                            &order.intent.order_link_id,
                            "Cancelled",
                            None,
                            None,
                            Some("stop"),
                            None,
                        )?;
                    }
                }
                // A fill that raced the stop is booked before the ledger closes (else at the next start).
                if let Err(e) = self.catch_up_executions(&account, "reconcile").await {
                    tracing::warn!(account = %account, error = %e, "final catch-up failed; the next start reconciles");
                    self.ledger.record_event("catch_up_failed", &format!("{account}: {e}"), None)?;
                }
            }
        }
        for slot in &self.slots {
            let book = slot.core.book();
            let mark = self.markets[&slot.symbol].last_price;
            self.ledger.record_equity(
                &slot.name,
                book.equity(mark),
                book.cash(),
                book.unrealized(mark),
                book.position,
                Some(mark),
                None,
            )?;
        }
        for (name, account) in &mut self.accounts {
            let positions = account.rest.positions(&usdt_positions()).await;
            if let Ok(positions) = positions {
                for p in positions.list {
                    let signed = signed_size(&p);
                    self.ledger.record_position(
                        "account",
                        name,
                        &p.symbol,
                        signed,
                        p.avg_price.as_ref().map(dec),
                        None,
                    )?;
                }
            }
            if let Some(feed) = account.private.take() {
                feed.shutdown().await;
            }
        }
        self.write_status("stopped");
        self.ledger.end_run(stopped)?;
        self.ledger.sync_now()?;
        let summary = self.summary.clone();
        self.public.shutdown().await;
        Ok(summary)
    }
}

/// True for a ledger status that says the exchange ended the order before it traded all of its quantity.
fn ended_short(status: &str) -> bool {
    matches!(
        OrderStatus::from(status),
        OrderStatus::Cancelled
            | OrderStatus::Rejected
            | OrderStatus::Deactivated
            | OrderStatus::PartiallyFilledCanceled
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use apex_book::Level;

    fn message(kind: UpdateKind, update_id: u64, bid: (i64, i64), ask: (i64, i64)) -> BookMessage {
        BookMessage {
            symbol: "BTCUSDT".into(),
            kind,
            update_id,
            seq: update_id as i64,
            ts: update_id as i64,
            cts: None,
            bids: vec![Level::new(bid.0, bid.1)],
            asks: vec![Level::new(ask.0, ask.1)],
            received: tokio::time::Instant::now(),
        }
    }

    /// The supervisor's book as it stands after `message`.
    fn supervisor_book(message: &BookMessage) -> Arc<BookSnapshot> {
        let scale = Scale::new(1).unwrap();
        Arc::new(BookSnapshot {
            symbol: message.symbol.clone(),
            synced: true,
            update_id: message.update_id,
            seq: message.seq,
            ts: message.ts,
            cts: message.cts,
            bids: message.bids.clone(),
            asks: message.asks.clone(),
            price_scale: scale,
            qty_scale: scale,
            applied: message.update_id,
        })
    }

    /// Feeds `message` as `release` does; the verdict's kind, `None` when it was skipped or replaced.
    fn feed(
        features: &mut BarFeatureEngine,
        restart: &mut Option<Arc<BookSnapshot>>,
        message: &BookMessage,
    ) -> Option<Result<Applied, BookError>> {
        feed_book(features, restart, &Engine::book_header(message), message, &mut |_, _| {})
    }

    #[test]
    fn a_restart_from_the_supervisors_book_waits_for_the_held_stream_to_reach_it() {
        let scale = Scale::new(1).unwrap();
        let config = EngineConfig {
            bars: apex_features::bars::BarParams::new(60_000_000_000),
            price_scale: scale,
            qty_scale: scale,
            book_columns: true,
        };
        let mut features = BarFeatureEngine::new(config).unwrap();
        let mut restart = None;
        let (snapshot, delta) = (UpdateKind::Snapshot, UpdateKind::Delta);
        assert!(matches!(feed(&mut features, &mut restart, &message(snapshot, 1, (100, 1), (101, 1))), Some(Ok(_))));
        // u=2 was dropped by the event channel: the engine's book refuses u=3 and the supervisor's book (at u=5)
        // waits to replace it.
        let gap = feed(&mut features, &mut restart, &message(delta, 3, (100, 2), (101, 1)));
        assert!(matches!(gap, Some(Err(BookError::Gap { .. }))), "{gap:?}");
        restart = Some(supervisor_book(&message(snapshot, 5, (99, 4), (102, 4))));
        // u=4 is inside the supervisor's book: skipped, the engine's book still waits.
        assert!(feed(&mut features, &mut restart, &message(delta, 4, (100, 3), (101, 1))).is_none());
        assert!(restart.is_some() && !features.book().is_synced());
        // u=5 is where the supervisor's book stands: replaced by it.
        assert!(feed(&mut features, &mut restart, &message(delta, 5, (100, 9), (101, 9))).is_none());
        assert!(restart.is_none() && features.book().is_synced());
        assert_eq!(
            (features.book().best_bid(), features.book().best_ask()),
            (Some(Level::new(99, 4)), Some(Level::new(102, 4)))
        );
        // u=6 follows it.
        assert!(matches!(
            feed(&mut features, &mut restart, &message(delta, 6, (99, 7), (102, 4))),
            Some(Ok(Applied::Delta))
        ));
        assert_eq!(features.book().best_bid(), Some(Level::new(99, 7)));

        // A later delta than the supervisor's book follows it at once; a snapshot from the stream supersedes it.
        restart = Some(supervisor_book(&message(snapshot, 9, (99, 5), (102, 4))));
        let applied = feed(&mut features, &mut restart, &message(delta, 10, (98, 1), (102, 4)));
        assert!(matches!(applied, Some(Ok(Applied::Delta))), "{applied:?}");
        assert!(restart.is_none());
        assert_eq!(features.book().best_bid(), Some(Level::new(99, 5)));
        restart = Some(supervisor_book(&message(snapshot, 15, (99, 5), (102, 4))));
        let fresh = feed(&mut features, &mut restart, &message(snapshot, 20, (97, 1), (103, 1)));
        assert!(matches!(fresh, Some(Ok(Applied::Snapshot { .. }))), "{fresh:?}");
        assert!(restart.is_none());
        assert_eq!(features.book().best_bid(), Some(Level::new(97, 1)));
    }

    #[test]
    fn a_position_mismatch_shows_quantities_on_the_lot_grid() {
        // Fills of 0.1 and 0.2 add up to 0.30000000000000004 in floats: the message said so.
        let scale = Scale::new(3).unwrap();
        let message = position_mismatch("main", "BTCUSDT", 0.0, &[("a", 0.1), ("b", 0.2)], scale);
        let start = "account main holds 0 BTCUSDT on the exchange, but its slots' fills in this ledger sum to 0.3 \
                     (a 0.1, b 0.2): ";
        assert!(message.starts_with(start), "{message}");
        let message = position_mismatch("main", "BTCUSDT", -1.5, &[("a", 0.7 + 0.6)], Scale::new(0).unwrap());
        assert!(message.contains("holds -1.5 BTCUSDT") && message.contains("sum to 1.3 (a 1.3)"), "{message}");
        let message = position_mismatch("main", "BTCUSDT", 20.0, &[("a", 10.0)], Scale::new(0).unwrap());
        assert!(message.contains("holds 20 BTCUSDT") && message.contains("sum to 10 (a 10)"), "{message}");
    }
}
