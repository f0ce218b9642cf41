//! apex-venue: the simulated market served over Bybit's V5 protocol on loopback, so any Bybit client (pybit, the
//! Nexus, a user's bot) trades against it with no keys and no network.
//!
//! The simulation (apex-sim's open-ended exchange) runs in one thread that owns it, kept at wall-clock time times
//! `speed`; axum serves REST and the two WebSockets on one loopback port; the two sides talk over channels, and each
//! public message is serialized once and fanned out as shared bytes. Faults from a plan are injected on a schedule
//! and logged. See [`Venue::start`].

pub mod clock;
pub mod config;
pub mod envelope;
pub mod faults;
pub mod protection;
pub mod rest;
pub mod shared;
pub mod sim;
pub mod wire;
pub mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use apex_core::Scale;
use apex_sim::batch::preset;
use apex_sim::exchange::{Exchange, WALLET_DECIMALS};
use apex_sim::{SimConfig, SimError};
use serde_json::json;
use thiserror::Error;
use tokio::sync::{broadcast, watch};

pub use config::{AccountSpec, VenueConfig, read_accounts};
pub use faults::{FaultLog, FaultPlan};

use crate::clock::{VenueClock, wall_ms};
use crate::faults::Dice;
use crate::shared::{
    AccountEntry, Control, FaultSwitches, PRIVATE_BUFFER, PUBLIC_BUFFER, Shared, SymbolData, TopicTable,
};

/// What can stop a venue from starting.
#[derive(Debug, Error)]
pub enum VenueError {
    /// A bad option or input file (the message names it): the binary exits 2.
    #[error("{0}")]
    Input(String),
    /// The port cannot be bound, the ready file cannot be written.
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// A running venue.
pub struct Venue {
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    sim: Option<std::thread::JoinHandle<()>>,
    /// The ready file written at start, removed at stop: it holds the accounts' keys and names a port that closes.
    ready: Option<PathBuf>,
}

impl Venue {
    /// Starts the simulation thread, the fault scheduler and the server on loopback (inside a tokio runtime), then
    /// writes the ready file.
    ///
    /// # Errors
    /// `Input` for an invalid config, a `--port` that cannot be bound, a ready file or fault log that cannot be
    /// written; `Io` when a system-picked port cannot be bound; `Sim` for a market that cannot be built.
    pub async fn start(config: VenueConfig) -> Result<Venue, VenueError> {
        config.validate()?;
        let clock = VenueClock::start(config.speed);
        let mut sim_configs = Vec::new();
        let mut specs = Vec::new();
        for (i, symbol) in config.symbols.iter().enumerate() {
            let (spec, start) = preset(symbol)?;
            let mut sim = SimConfig::new(spec.clone(), start, config.seed.wrapping_add(i as u64 * 1_000_003));
            sim.record_market = false;
            sim.record_all_fills = false;
            sim.max_events = u64::MAX;
            sim_configs.push(sim);
            specs.push(spec);
        }
        let mut exchange = Exchange::new(&config.dsg, &sim_configs)?;
        let wallet_scale = Scale::new(8).expect("8 decimals");
        for account in &config.accounts {
            let units = wallet_scale
                .parse(&account.balance)
                .map_err(|e| VenueError::Input(format!("{}: {e}", account.name)))?;
            let wallet = i128::from(units) * 10_i128.pow(WALLET_DECIMALS - 8);
            exchange.add_account(wallet, (account.latency_ms * 1e3).round() as i64);
        }
        let (public, _) = broadcast::channel(PUBLIC_BUFFER);
        let accounts: Vec<AccountEntry> = config
            .accounts
            .iter()
            .map(|spec| AccountEntry { spec: spec.clone(), private: broadcast::channel(PRIVATE_BUFFER).0 })
            .collect();
        let keys: HashMap<String, usize> =
            config.accounts.iter().enumerate().map(|(i, a)| (a.api_key.clone(), i)).collect();
        let (sim_tx, sim_rx) = std::sync::mpsc::channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            clock,
            topics: TopicTable::new(&config.symbols),
            symbols: specs.iter().map(SymbolData::new).collect(),
            public,
            accounts,
            keys,
            limits: Mutex::new(shared::RateLimits::default()),
            faults: config.faults.clone(),
            fault_log: FaultLog::create(config.fault_log.as_deref())?,
            protection: protection::Protection::new(config.accounts.len()),
            switches: FaultSwitches::default(),
            dice: Mutex::new(rest::rest_dice(config.faults.seed)),
            connections: Mutex::new(std::collections::BTreeMap::new()),
            next_connection: AtomicU64::new(0),
            sim: Mutex::new(sim_tx),
            shutdown: shutdown_rx,
        });
        let listener = tokio::net::TcpListener::bind(config.address()).await.map_err(|e| {
            // A port the user chose that is taken (or not theirs to use) is a bad option; with port 0 the system
            // picks, so a failure there is the machine's.
            if config.port == 0 {
                VenueError::Io(format!("cannot listen on {}: {e}", config.address()))
            } else {
                VenueError::Input(format!("--port {}: cannot listen on {}: {e}", config.port, config.address()))
            }
        })?;
        let address = listener.local_addr().map_err(|e| VenueError::Io(e.to_string()))?;
        let sim_shared = shared.clone();
        let (published_tx, published) = tokio::sync::oneshot::channel();
        let sim = std::thread::Builder::new()
            .name("apex-venue-sim".into())
            .spawn(move || sim::run(exchange, sim_shared, sim_rx, published_tx))
            .map_err(|e| VenueError::Io(format!("cannot start the simulation thread: {e}")))?;
        if published.await.is_err() {
            return Err(VenueError::Io("the simulation thread stopped before its first market data".into()));
        }
        let app = rest::router()
            .merge(ws::router())
            .layer(axum::middleware::from_fn(envelope::errors_in_envelope))
            .with_state(shared.clone());
        let listener = envelope::EnvelopedListener(listener);
        let mut server_shutdown = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = server_shutdown.wait_for(|stop| *stop).await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "server stopped");
            }
        });
        if !config.faults.is_empty() {
            tokio::spawn(schedule_faults(shared.clone()));
        }
        let mut venue = Venue { address, shared, shutdown, server, sim: Some(sim), ready: None };
        if let Some(path) = &config.ready {
            if let Err(error) = write_ready(path, &venue.ready_document(&config)) {
                // Nobody can find a venue without its ready file: stop serving rather than run unseen.
                venue.stop().await;
                return Err(error);
            }
            venue.ready = Some(path.clone());
        }
        tracing::info!(%address, symbols = ?config.symbols, speed = config.speed, seed = config.seed, "venue ready");
        Ok(venue)
    }

    /// The loopback address served.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    #[must_use]
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.address)
    }

    #[must_use]
    pub fn public_url(&self) -> String {
        format!("ws://{}/v5/public/linear", self.address)
    }

    #[must_use]
    pub fn private_url(&self) -> String {
        format!("ws://{}/v5/private", self.address)
    }

    /// Sends `text` to the subscribers of a public topic as the simulation thread does (serialized once, shared by
    /// every subscriber); benchmarks use it to load the fan-out beyond what the market produces. Returns how many
    /// connections the message reached (0 without any), or `None` for an unknown topic.
    #[must_use]
    pub fn publish_raw(&self, topic: &str, text: String) -> Option<usize> {
        let topic = self.shared.topics.id(topic)?;
        let message =
            shared::PublicMsg { topic, u: 0, snapshot: false, text: axum::extract::ws::Utf8Bytes::from(text) };
        Some(self.shared.public.send(message).unwrap_or(0))
    }

    /// Faults injected so far, by kind.
    #[must_use]
    pub fn fault_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.fault_log.counts()
    }

    /// The ready file's document: URLs and accounts.
    #[must_use]
    pub fn ready_document(&self, config: &VenueConfig) -> serde_json::Value {
        json!({
            "rest": self.rest_url(),
            "ws_public": self.public_url(),
            "ws_private": self.private_url(),
            "accounts": config.accounts.iter().map(|a| json!({"name": a.name, "api_key": a.api_key, "api_secret": a.api_secret})).collect::<Vec<_>>(),
            "symbols": config.symbols,
            "seed": config.seed,
            "speed": config.speed,
            "pid": std::process::id(),
        })
    }

    /// Stops serving: the ready file goes first (nobody finds a stopping venue), then connections close with a
    /// reason and the simulation thread ends.
    pub async fn stop(mut self) {
        if let Some(path) = self.ready.take() {
            remove_ready(&path, &self.rest_url());
        }
        let _ = self.shutdown.send(true);
        self.shared.command(sim::Command::Stop);
        let _ = (&mut self.server).await;
        if let Some(sim) = self.sim.take() {
            let _ = tokio::task::spawn_blocking(move || sim.join()).await;
        }
    }
}

/// Writes the ready file atomically (a temporary file in the same folder, then a rename), readable by the owner
/// only: it holds the accounts' secrets.
fn write_ready(path: &Path, document: &serde_json::Value) -> Result<(), VenueError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // The path is the user's option (a folder that does not exist, one they cannot write): exit 2 naming it.
    let bad =
        |e: std::io::Error| VenueError::Input(format!("--ready {}: cannot write the ready file: {e}", path.display()));
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        path.file_name().map_or_else(|| "ready".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(serde_json::to_string_pretty(document).expect("json").as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        // It holds the keys: none is left beside a ready file that was never written.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(bad)
}

impl Drop for Venue {
    /// A venue dropped without [`Venue::stop`] (an error path, a test) takes its ready file with it too.
    fn drop(&mut self) {
        if let Some(path) = self.ready.take() {
            remove_ready(&path, &self.rest_url());
        }
    }
}

/// Removes the ready file at `path` if it still names this venue (`rest`): a venue started since with the same
/// `--ready` keeps its own.
fn remove_ready(path: &Path, rest: &str) {
    let ours = std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|document| document["rest"] == rest && document["pid"] == std::process::id());
    if ours && let Err(error) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), %error, "could not remove the ready file");
    }
}

/// Injects the periodic faults of the plan, each on its own exponential schedule, until shutdown.
async fn schedule_faults(shared: Arc<Shared>) {
    let plan = shared.faults.clone();
    let mut tasks = Vec::new();
    let periodic: [(&str, Option<f64>, u64); 5] = [
        ("skip", plan.skip.map(|e| e.every_s), 1),
        ("disconnect", plan.disconnect.map(|e| e.every_s), 2),
        ("restart", plan.restart.map(|e| e.every_s), 3),
        ("latency_spike", plan.latency_spike.map(|w| w.every_s), 4),
        ("rate_limit_burst", plan.rate_limit_burst.map(|w| w.every_s), 5),
    ];
    for (fault, every, stream) in periodic {
        let Some(every) = every else { continue };
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut dice = Dice::new(shared.faults.seed, 1_000 + stream);
            let mut shutdown = shared.shutdown.clone();
            loop {
                let wait = std::time::Duration::from_millis(dice.wait_ms(every));
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    () = tokio::time::sleep(wait) => inject(&shared, fault, &mut dice),
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Injects one periodic fault now and logs it.
fn inject(shared: &Shared, fault: &str, dice: &mut Dice) {
    let now = wall_ms();
    let symbols = shared.symbols.len();
    let connection = |dice: &mut Dice| {
        let ids: Vec<u64> = shared.connections.lock().expect("connections").keys().copied().collect();
        (!ids.is_empty()).then(|| ids[dice.pick(ids.len())])
    };
    match fault {
        "skip" => {
            let (symbol, depth) = (dice.pick(symbols), dice.pick(4));
            shared.command(sim::Command::SkipUpdateId { symbol, depth });
            let topic = shared.topics.name(shared.topics.book(symbol, depth));
            shared.fault_log.record(now, fault, json!({"topic": topic}));
        }
        "disconnect" => {
            if let Some(id) = connection(dice)
                && ws::control(shared, id, Control::Close("fault: disconnect"))
            {
                shared.fault_log.record(now, fault, json!({"conn": Shared::conn_id(id)}));
            }
        }
        "restart" => {
            let symbol = dice.pick(symbols);
            shared.command(sim::Command::Restart { symbol });
            shared.fault_log.record(now, fault, json!({"symbol": shared.symbols[symbol].units.symbol}));
        }
        "latency_spike" => {
            let duration = shared.faults.latency_spike.map_or(0, |w| w.duration_ms);
            shared.switches.rest_stall_until_ms.store(now + duration as i64, Ordering::Relaxed);
            let conn = connection(dice).filter(|&id| ws::control(shared, id, Control::Stall(duration)));
            shared.fault_log.record(now, fault, json!({"duration_ms": duration, "conn": conn.map(Shared::conn_id)}));
        }
        "rate_limit_burst" => {
            let duration = shared.faults.rate_limit_burst.map_or(0, |w| w.duration_ms);
            shared.switches.rate_limit_until_ms.store(now + duration as i64, Ordering::Relaxed);
            shared.fault_log.record(now, fault, json!({"duration_ms": duration}));
        }
        _ => {}
    }
}
