//! The ledger: one SQLite file per run folder (WAL; every commit synced to disk by [`crate::durable`] before an
//! order that follows it is sent) holding every decision, order intent (on disk before the order is sent), ack, fill, position, equity snapshot and capital weight, each with the
//! exchange's and the local timestamp (UTC nanoseconds). Fills are unique by the exchange's `execId`, so a fill seen
//! twice (the private stream, then the reconciliation after a restart) is booked once. The schema is documented in
//! `apexctl/schemas/ledger.md`; tables may gain columns and new tables may appear, existing ones keep their meaning.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::NexusError;
use crate::durable::{Durability, Synced};

/// The `schema` value in the `meta` table.
pub const SCHEMA: &str = "apex.ledger";
/// The schema version this build writes (and the newest it reads).
pub const VERSION: i64 = 2;

const DDL: &str = r"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    venue TEXT NOT NULL,
    config_sha256 TEXT NOT NULL,
    started_local INTEGER NOT NULL,
    ended_local INTEGER,
    exit TEXT
);
CREATE TABLE IF NOT EXISTS slots (
    slot TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    account TEXT NOT NULL,
    capital REAL NOT NULL,
    bundle TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'live'
);
CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL,
    ts_exchange INTEGER NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    features TEXT NOT NULL,
    ts_local INTEGER NOT NULL,
    PRIMARY KEY (symbol, ts_exchange)
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL,
    slot TEXT NOT NULL,
    symbol TEXT NOT NULL,
    bar_ts INTEGER NOT NULL,
    signal REAL,
    p_up REAL,
    kind TEXT NOT NULL,
    side TEXT,
    qty REAL,
    stop REAL,
    take REAL,
    win_probability REAL,
    equity REAL NOT NULL,
    ts_exchange INTEGER NOT NULL,
    ts_local INTEGER NOT NULL,
    model_id TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    order_link_id TEXT NOT NULL UNIQUE,
    slot TEXT NOT NULL,
    seq INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty REAL NOT NULL,
    price REAL,
    tactic TEXT NOT NULL,
    purpose TEXT NOT NULL,
    reduce_only INTEGER NOT NULL,
    decision_id INTEGER,
    stop REAL,
    take REAL,
    status TEXT NOT NULL,
    book_update_id INTEGER,
    mid REAL,
    order_id TEXT,
    cum_qty REAL NOT NULL DEFAULT 0,
    detail TEXT,
    ts_intent_local INTEGER NOT NULL,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL,
    UNIQUE (slot, seq)
);
CREATE TABLE IF NOT EXISTS order_events (
    id INTEGER PRIMARY KEY,
    order_link_id TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT,
    detail TEXT,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    exec_id TEXT NOT NULL UNIQUE,
    order_link_id TEXT NOT NULL,
    slot TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    price REAL NOT NULL,
    qty REAL NOT NULL,
    fee REAL NOT NULL,
    is_maker INTEGER,
    order_id TEXT,
    source TEXT NOT NULL,
    ts_exchange INTEGER NOT NULL,
    ts_local INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_by_slot ON fills (slot, ts_exchange);
CREATE TABLE IF NOT EXISTS positions (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    symbol TEXT NOT NULL,
    qty REAL NOT NULL,
    avg_price REAL,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS equity (
    id INTEGER PRIMARY KEY,
    slot TEXT NOT NULL,
    equity REAL NOT NULL,
    cash REAL NOT NULL,
    unrealized REAL NOT NULL,
    position REAL NOT NULL,
    mark REAL,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS weights (
    id INTEGER PRIMARY KEY,
    slot TEXT NOT NULL,
    weight REAL NOT NULL,
    capital REAL NOT NULL,
    base REAL,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    slot TEXT NOT NULL,
    model_id TEXT NOT NULL,
    bundle TEXT NOT NULL,
    label TEXT NOT NULL,
    gp_tree TEXT,
    role TEXT NOT NULL,
    detail TEXT,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL,
    PRIMARY KEY (slot, model_id)
);
CREATE TABLE IF NOT EXISTS shadow_equity (
    id INTEGER PRIMARY KEY,
    slot TEXT NOT NULL,
    model_id TEXT NOT NULL,
    equity REAL NOT NULL,
    position REAL NOT NULL,
    decisions INTEGER NOT NULL,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS swaps (
    id INTEGER PRIMARY KEY,
    slot TEXT NOT NULL,
    from_model TEXT,
    to_model TEXT NOT NULL,
    reason TEXT NOT NULL,
    position TEXT NOT NULL,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deaths (
    id INTEGER PRIMARY KEY,
    slot TEXT NOT NULL,
    symbol TEXT NOT NULL,
    model_id TEXT,
    reason TEXT NOT NULL,
    equity REAL NOT NULL,
    threshold REAL NOT NULL,
    request TEXT,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    ts_exchange INTEGER,
    ts_local INTEGER NOT NULL
);
";

/// Columns version 2 added to version-1 tables (new tables come from the DDL itself).
const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    ("decisions", "model_id", "TEXT"),
    ("slots", "state", "TEXT NOT NULL DEFAULT 'live'"),
    ("orders", "mid", "REAL"),
    ("weights", "base", "REAL"),
];

/// Brings the tables of an older ledger up to this version (a no-op on a new or current file).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let exists: bool = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![table],
            |r| r.get::<_, i64>(0),
        )? > 0;
        if !exists {
            continue;
        }
        let mut statement = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let names = statement.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        if !names.iter().any(|n| n == column) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// Wall-clock time now, UTC nanoseconds.
#[must_use]
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A slot as the ledger records it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRow {
    pub slot: String,
    pub symbol: String,
    pub account: String,
    pub capital: f64,
    pub bundle: String,
    pub bundle_sha256: String,
    pub model: String,
}

/// One decision of a slot's rule.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    pub slot: String,
    pub symbol: String,
    /// Open time of the bar decided on.
    pub bar_ts: i64,
    pub signal: f64,
    pub p_up: Option<f64>,
    /// "hold", "exit", "enter", "reverse", or why nothing could be done ("blind: ...").
    pub kind: String,
    pub side: Option<String>,
    pub qty: Option<f64>,
    pub stop: Option<f64>,
    pub take: Option<f64>,
    pub win_probability: Option<f64>,
    pub equity: f64,
    pub ts_exchange: i64,
    /// The model (its manifest's SHA-256) that made the decision.
    pub model_id: String,
}

/// A model a slot has loaded, as the ledger records it: its DNA (the signal's GP tree) and its role.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub slot: String,
    /// SHA-256 of the bundle's manifest.
    pub model_id: String,
    /// The folder the engine loaded it from.
    pub bundle: String,
    /// "signal", "signal+maml", ... (what the bundle holds).
    pub label: String,
    /// The signal model's GP tree (apex.gp_tree JSON), when the bundle holds one.
    pub gp_tree: Option<String>,
    /// "champion", "challenger", "fallback", "retired".
    pub role: String,
    pub detail: Option<String>,
    pub ts_exchange: Option<i64>,
}

/// A slot's death, as the Watchtower records it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeathRow {
    pub slot: String,
    pub symbol: String,
    pub model_id: Option<String>,
    pub reason: String,
    /// The equity (cash plus position at mid) that killed it.
    pub equity: f64,
    /// The least equity the instrument's minimum order needs.
    pub threshold: f64,
    /// The recycling request written to the outbox.
    pub request: Option<String>,
    pub ts_exchange: Option<i64>,
}

/// An order the engine is about to send (written before it is sent).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderIntent {
    pub order_link_id: String,
    pub slot: String,
    pub seq: i64,
    pub symbol: String,
    /// "Buy" or "Sell".
    pub side: String,
    pub qty: f64,
    /// Limit price; `None` for a market order.
    pub price: Option<f64>,
    /// "aggressive" or "passive".
    pub tactic: String,
    /// "entry", "exit", "stop", "take", "flatten".
    pub purpose: String,
    pub reduce_only: bool,
    pub decision_id: Option<i64>,
    /// The bracket an entry opens.
    pub stop: Option<f64>,
    pub take: Option<f64>,
    /// The update id (`u`) of the book the order was priced off (None for an order read back without one).
    pub book_update_id: Option<i64>,
    /// The book's mid when the order was priced (what realized slippage is measured from).
    pub mid: Option<f64>,
}

/// An order as the ledger knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRow {
    pub intent: OrderIntent,
    pub status: String,
    pub order_id: Option<String>,
    pub cum_qty: f64,
}

/// One execution of one of the engine's orders.
#[derive(Debug, Clone, PartialEq)]
pub struct FillRow {
    pub exec_id: String,
    pub order_link_id: String,
    pub slot: String,
    pub symbol: String,
    /// "Buy" or "Sell".
    pub side: String,
    pub price: f64,
    pub qty: f64,
    pub fee: f64,
    pub is_maker: Option<bool>,
    pub order_id: Option<String>,
    /// Where it was learnt: "ws" (private stream), "reconcile" (REST, at start, reconnect and stop) or "recover" (REST,
    /// reading back what the private stream lost).
    pub source: String,
    pub ts_exchange: i64,
}

/// A stored bar: open time (exchange, ns), OHLCV, and the feature row (NaN where the value was missing).
pub type BarRow = (i64, [f64; 5], Vec<f64>);

/// Statuses of an order that may still trade or whose outcome is not known yet.
pub const LIVE_STATUSES: [&str; 4] = ["intent", "sent", "New", "PartiallyFilled"];

/// The SQL condition "the order's status is one of [`LIVE_STATUSES`]".
fn live_filter() -> String {
    format!("status IN ('{}')", LIVE_STATUSES.join("', '"))
}

/// The ledger of one run folder.
pub struct Ledger {
    path: PathBuf,
    conn: Connection,
    run_id: i64,
    durability: Durability,
}

/// A run that ends without `end_run` (a failed start, a refused reconciliation, a runtime error) is closed as
/// `error`; only a crash leaves its row open.
impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = self.conn.execute(
            "UPDATE runs SET ended_local = ?1, exit = 'error' WHERE run_id = ?2 AND ended_local IS NULL",
            params![now_ns(), self.run_id],
        );
    }
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` and starts a run row.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] when the file cannot be opened, is not a ledger, or is of a newer version.
    pub fn open(path: &Path, venue: &str, config_sha256: &str) -> Result<Ledger, NexusError> {
        let fail = |message: String| NexusError::Ledger { path: path.to_owned(), message };
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| fail(format!("journal_mode=WAL: {e}")))?;
        // Commits are writes into the WAL (safe from a killed process at once); `Durability` syncs them to disk (on
        // the loop when orders wait, else on its thread), and every order waits for the sync that covers it.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| fail(format!("synchronous=NORMAL: {e}")))?;
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(|e| fail(format!("wal_autocheckpoint: {e}")))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| fail(e.to_string()))?;
        migrate(&conn).map_err(|e| fail(format!("schema migration: {e}")))?;
        conn.execute_batch(DDL).map_err(|e| fail(format!("schema: {e}")))?;
        let schema: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
            .optional()
            .map_err(|e| fail(e.to_string()))?;
        match schema.as_deref() {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1), ('version', ?2)",
                    params![SCHEMA, VERSION.to_string()],
                )
                .map_err(|e| fail(e.to_string()))?;
            }
            Some(SCHEMA) => {
                let version: String = conn
                    .query_row("SELECT value FROM meta WHERE key = 'version'", [], |r| r.get(0))
                    .map_err(|e| fail(e.to_string()))?;
                if version.parse::<i64>().map_or(true, |v| v > VERSION) {
                    return Err(fail(format!(
                        "{SCHEMA} version {version} is newer than this engine reads ({VERSION})"
                    )));
                }
                conn.execute("UPDATE meta SET value = ?1 WHERE key = 'version'", params![VERSION.to_string()])
                    .map_err(|e| fail(e.to_string()))?;
            }
            Some(other) => return Err(fail(format!("not a ledger (meta schema {other:?})"))),
        }
        conn.execute(
            "INSERT INTO runs (pid, venue, config_sha256, started_local) VALUES (?1, ?2, ?3, ?4)",
            params![std::process::id(), venue, config_sha256, now_ns()],
        )
        .map_err(|e| fail(e.to_string()))?;
        let run_id = conn.last_insert_rowid();
        let durability = Durability::start(path)?;
        let ledger = Ledger { path: path.to_owned(), conn, run_id, durability };
        ledger.sync_now()?;
        Ok(ledger)
    }

    /// Asks for every commit so far to reach the disk; returns the [`Synced::generation`] that will say it has.
    #[must_use]
    pub fn request_sync(&self) -> u64 {
        self.durability.request()
    }

    /// Syncs every commit so far on this thread; returns the generation that covers them (already published).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] when the sync fails (final: nothing may be sent after it).
    pub fn sync_here(&self) -> Result<u64, NexusError> {
        self.durability.sync_here().map_err(|e| NexusError::Ledger { path: self.path.clone(), message: e.into() })
    }

    /// The sync progress, for the tasks that send orders once their intents are on disk.
    #[must_use]
    pub fn sync_progress(&self) -> tokio::sync::watch::Receiver<Synced> {
        self.durability.progress()
    }

    /// Syncs every commit so far to disk and waits for it.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] when the sync fails.
    pub fn sync_now(&self) -> Result<(), NexusError> {
        self.durability.sync_now().map_err(|e| NexusError::Ledger { path: self.path.clone(), message: e.into() })
    }

    /// Starts a transaction: the writes up to [`Ledger::commit`] reach the disk together, with one sync (a bar's
    /// row, decisions and equity snapshots). Order intents are committed before their order is sent.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] when a transaction is already open or the write fails.
    pub fn begin(&self) -> Result<(), NexusError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| self.fail(&e))
    }

    /// Commits the transaction [`Ledger::begin`] opened.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] when the commit fails.
    pub fn commit(&self) -> Result<(), NexusError> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.fail(&e))
    }

    /// This ledger's short id (6 characters of `[a-z0-9]`, made once when the ledger is created): part of every
    /// orderLinkId, so two run folders trading one account never reuse an id.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read or write failure.
    pub fn instance(&self) -> Result<String, NexusError> {
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.fail(&e))?;
        if let Some(id) = found {
            return Ok(id);
        }
        let mut n = (now_ns() as u64) ^ (u64::from(std::process::id()) << 40);
        let id: String = (0..6)
            .map(|_| {
                let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(n % 36) as usize];
                n /= 36;
                c as char
            })
            .collect();
        self.run("INSERT INTO meta (key, value) VALUES ('instance', ?1)", params![id])?;
        Ok(id)
    }

    /// The run row of this process.
    #[must_use]
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one statement through the connection's statement cache (the engine writes the same few statements on
    /// every bar, so each is compiled once).
    fn run(&self, sql: &str, values: impl rusqlite::Params) -> Result<usize, NexusError> {
        self.conn.prepare_cached(sql).and_then(|mut statement| statement.execute(values)).map_err(|e| self.fail(&e))
    }

    fn fail(&self, error: &rusqlite::Error) -> NexusError {
        NexusError::Ledger { path: self.path.clone(), message: error.to_string() }
    }

    /// Records how the run ended.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn end_run(&self, exit: &str) -> Result<(), NexusError> {
        self.run(
            "UPDATE runs SET ended_local = ?1, exit = ?2 WHERE run_id = ?3",
            params![now_ns(), exit, self.run_id],
        )?;
        Ok(())
    }

    /// Records (or updates) a slot.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn upsert_slot(&self, row: &SlotRow) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO slots (slot, symbol, account, capital, bundle, bundle_sha256, model)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (slot) DO UPDATE SET symbol = ?2, account = ?3, capital = ?4, bundle = ?5,
                     bundle_sha256 = ?6, model = ?7",
            params![row.slot, row.symbol, row.account, row.capital, row.bundle, row.bundle_sha256, row.model],
        )?;
        Ok(())
    }

    /// Records a closed bar and its feature row (kept to warm the slots up after a restart).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_bar(&self, symbol: &str, ts: i64, ohlcv: [f64; 5], features: &[f64]) -> Result<(), NexusError> {
        let features = serde_json::to_string(&features.iter().map(|v| v.is_finite().then_some(*v)).collect::<Vec<_>>())
            .expect("numbers serialize");
        self.run(
            "INSERT OR REPLACE INTO bars (symbol, ts_exchange, open, high, low, close, volume, features, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![symbol, ts, ohlcv[0], ohlcv[1], ohlcv[2], ohlcv[3], ohlcv[4], features, now_ns()],
        )?;
        Ok(())
    }

    /// The last `limit` bars of `symbol`, oldest first: (open time, OHLCV, feature row with NaN for nulls).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn recent_bars(&self, symbol: &str, limit: usize) -> Result<Vec<BarRow>, NexusError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT ts_exchange, open, high, low, close, volume, features FROM bars WHERE symbol = ?1
                 ORDER BY ts_exchange DESC LIMIT ?2",
            )
            .map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map(params![symbol, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                let features: String = r.get(6)?;
                Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?], features))
            })
            .map_err(|e| self.fail(&e))?;
        let mut out = Vec::new();
        for row in rows {
            let (ts, ohlcv, features) = row.map_err(|e| self.fail(&e))?;
            let values: Vec<Option<f64>> = serde_json::from_str(&features).unwrap_or_default();
            out.push((ts, ohlcv, values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect()));
        }
        out.reverse();
        Ok(out)
    }

    /// Records a decision; returns its id.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_decision(&self, row: &DecisionRow) -> Result<i64, NexusError> {
        let finite = |v: f64| v.is_finite().then_some(v);
        self.run(
            "INSERT INTO decisions (run_id, slot, symbol, bar_ts, signal, p_up, kind, side, qty, stop, take,
                     win_probability, equity, ts_exchange, ts_local, model_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                self.run_id,
                row.slot,
                row.symbol,
                row.bar_ts,
                finite(row.signal),
                row.p_up,
                row.kind,
                row.side,
                row.qty,
                row.stop,
                row.take,
                row.win_probability,
                row.equity,
                row.ts_exchange,
                now_ns(),
                row.model_id
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Sets a `meta` entry (e.g. `bar_columns.BTCUSDT`: the names of the `bars.features` array, as JSON).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), NexusError> {
        self.run("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
        Ok(())
    }

    /// Records an order before it is sent (status "intent").
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure, including an orderLinkId used before.
    pub fn record_intent(&self, intent: &OrderIntent) -> Result<(), NexusError> {
        let now = now_ns();
        self.run(
            "INSERT INTO orders (order_link_id, slot, seq, symbol, side, qty, price, tactic, purpose, reduce_only,
                     decision_id, stop, take, book_update_id, mid, status, ts_intent_local, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?15, ?16, 'intent', ?14, ?14)",
            params![
                intent.order_link_id,
                intent.slot,
                intent.seq,
                intent.symbol,
                intent.side,
                intent.qty,
                intent.price,
                intent.tactic,
                intent.purpose,
                intent.reduce_only,
                intent.decision_id,
                intent.stop,
                intent.take,
                now,
                intent.book_update_id,
                intent.mid
            ],
        )?;
        self.order_event(&intent.order_link_id, "intent", Some("intent"), None, None)?;
        Ok(())
    }

    /// Sets an order's status (and the exchange's order id and filled quantity when known), with an event row.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn update_order(
        &self,
        order_link_id: &str,
        status: &str,
        order_id: Option<&str>,
        cum_qty: Option<f64>,
        detail: Option<&str>,
        ts_exchange: Option<i64>,
    ) -> Result<(), NexusError> {
        self.run(
            "UPDATE orders SET status = ?2, order_id = COALESCE(?3, order_id), cum_qty = COALESCE(?4, cum_qty),
                     detail = COALESCE(?5, detail), ts_exchange = COALESCE(?6, ts_exchange), ts_local = ?7
                 WHERE order_link_id = ?1",
            params![order_link_id, status, order_id, cum_qty, detail, ts_exchange, now_ns()],
        )?;
        self.order_event(order_link_id, "status", Some(status), detail, ts_exchange)
    }

    /// The exchange accepted an order: its order id, and status `sent` unless the private stream already moved it on
    /// (a fill can overtake the REST answer).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn acknowledge(&self, order_link_id: &str, order_id: &str) -> Result<(), NexusError> {
        self.run(
            "UPDATE orders SET order_id = ?2, ts_local = ?3,
                     status = CASE WHEN status IN ('intent', 'unknown') THEN 'sent' ELSE status END
                 WHERE order_link_id = ?1",
            params![order_link_id, order_id, now_ns()],
        )?;
        self.order_event(order_link_id, "ack", Some("sent"), None, None)
    }

    /// Appends an order event (an ack, a status change, a refusal).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn order_event(
        &self,
        order_link_id: &str,
        event: &str,
        status: Option<&str>,
        detail: Option<&str>,
        ts_exchange: Option<i64>,
    ) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO order_events (order_link_id, event, status, detail, ts_exchange, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![order_link_id, event, status, detail, ts_exchange, now_ns()],
        )?;
        Ok(())
    }

    /// The order named `order_link_id`, if the engine ever intended it.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn order(&self, order_link_id: &str) -> Result<Option<OrderRow>, NexusError> {
        self.orders_where("order_link_id = ?1", params![order_link_id]).map(|mut v| v.pop())
    }

    /// Orders that may still trade or whose outcome is unknown (see [`LIVE_STATUSES`]).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn live_orders(&self) -> Result<Vec<OrderRow>, NexusError> {
        self.orders_where(&live_filter(), params![])
    }

    /// Every order of `slot`, oldest first.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn orders_of(&self, slot: &str) -> Result<Vec<OrderRow>, NexusError> {
        self.orders_where("slot = ?1", params![slot])
    }

    fn orders_where(&self, filter: &str, args: impl rusqlite::Params) -> Result<Vec<OrderRow>, NexusError> {
        let sql = format!(
            "SELECT order_link_id, slot, seq, symbol, side, qty, price, tactic, purpose, reduce_only, decision_id,
                 stop, take, status, order_id, cum_qty, book_update_id, mid FROM orders WHERE {filter}
                 ORDER BY ts_intent_local, rowid"
        );
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map(args, |r| {
                Ok(OrderRow {
                    intent: OrderIntent {
                        order_link_id: r.get(0)?,
                        slot: r.get(1)?,
                        seq: r.get(2)?,
                        symbol: r.get(3)?,
                        side: r.get(4)?,
                        qty: r.get(5)?,
                        price: r.get(6)?,
                        tactic: r.get(7)?,
                        purpose: r.get(8)?,
                        reduce_only: r.get(9)?,
                        decision_id: r.get(10)?,
                        stop: r.get(11)?,
                        take: r.get(12)?,
                        book_update_id: r.get(16)?,
                        mid: r.get(17)?,
                    },
                    status: r.get(13)?,
                    order_id: r.get(14)?,
                    cum_qty: r.get(15)?,
                })
            })
            .map_err(|e| self.fail(&e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.fail(&e))
    }

    /// The next order sequence number of `slot` (one past every number it ever used).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn next_seq(&self, slot: &str) -> Result<i64, NexusError> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT MAX(seq) FROM orders WHERE slot = ?1", params![slot], |r| r.get(0))
            .map_err(|e| self.fail(&e))?;
        Ok(max.map_or(1, |m| m + 1))
    }

    /// Books a fill unless its `exec_id` is booked already; true when it is new.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_fill(&self, fill: &FillRow) -> Result<bool, NexusError> {
        let inserted = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO fills (exec_id, order_link_id, slot, symbol, side, price, qty, fee, is_maker,
                     order_id, source, ts_exchange, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    fill.exec_id,
                    fill.order_link_id,
                    fill.slot,
                    fill.symbol,
                    fill.side,
                    fill.price,
                    fill.qty,
                    fill.fee,
                    fill.is_maker,
                    fill.order_id,
                    fill.source,
                    fill.ts_exchange,
                    now_ns()
                ],
            )
            .map_err(|e| self.fail(&e))?;
        Ok(inserted == 1)
    }

    /// Every fill of `slot` in booking order.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn fills_of(&self, slot: &str) -> Result<Vec<FillRow>, NexusError> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT exec_id, order_link_id, slot, symbol, side, price, qty, fee, is_maker, order_id, source,
                     ts_exchange FROM fills WHERE slot = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map(params![slot], |r| {
                Ok(FillRow {
                    exec_id: r.get(0)?,
                    order_link_id: r.get(1)?,
                    slot: r.get(2)?,
                    symbol: r.get(3)?,
                    side: r.get(4)?,
                    price: r.get(5)?,
                    qty: r.get(6)?,
                    fee: r.get(7)?,
                    is_maker: r.get(8)?,
                    order_id: r.get(9)?,
                    source: r.get(10)?,
                    ts_exchange: r.get(11)?,
                })
            })
            .map_err(|e| self.fail(&e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.fail(&e))
    }

    /// Exchange time of the newest fill of any slot trading from `account` (`None` before the first).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn last_fill_ts(&self, account: &str) -> Result<Option<i64>, NexusError> {
        self.conn
            .query_row(
                "SELECT MAX(f.ts_exchange) FROM fills f JOIN slots s ON s.slot = f.slot WHERE s.account = ?1",
                params![account],
                |r| r.get(0),
            )
            .map_err(|e| self.fail(&e))
    }

    /// Local time of the oldest intent of any slot trading from `account` whose order the ledger still holds as live
    /// or whose create's outcome is unknown (it may have traded), `None` when there is none.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn oldest_live_intent_ts(&self, account: &str) -> Result<Option<i64>, NexusError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT MIN(ts_intent_local) FROM orders o JOIN slots s ON s.slot = o.slot WHERE s.account = ?1
                         AND ({} OR status = 'unknown')",
                    live_filter()
                ),
                params![account],
                |r| r.get(0),
            )
            .map_err(|e| self.fail(&e))
    }

    /// Records a position snapshot: `scope` "slot" (a slot's virtual position) or "account" (the exchange's).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_position(
        &self,
        scope: &str,
        name: &str,
        symbol: &str,
        qty: f64,
        avg_price: Option<f64>,
        ts_exchange: Option<i64>,
    ) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO positions (scope, name, symbol, qty, avg_price, ts_exchange, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![scope, name, symbol, qty, avg_price, ts_exchange, now_ns()],
        )?;
        Ok(())
    }

    /// Records a slot's equity snapshot.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    #[allow(clippy::too_many_arguments)]
    pub fn record_equity(
        &self,
        slot: &str,
        equity: f64,
        cash: f64,
        unrealized: f64,
        position: f64,
        mark: Option<f64>,
        ts_exchange: Option<i64>,
    ) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO equity (slot, equity, cash, unrealized, position, mark, ts_exchange, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![slot, equity, cash, unrealized, position, mark, ts_exchange, now_ns()],
        )?;
        Ok(())
    }

    /// Records a slot's capital weight.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_weight(
        &self,
        slot: &str,
        weight: f64,
        capital: f64,
        base: f64,
        ts_exchange: Option<i64>,
    ) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO weights (slot, weight, capital, base, ts_exchange, ts_local) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![slot, weight, capital, base, ts_exchange, now_ns()],
        )?;
        Ok(())
    }

    /// The slot's accounting base after its last reweight (`weights.base`), if the ledger has one: a restart replays
    /// the fills on it, so the capital the CWO moved survives.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn last_base(&self, slot: &str) -> Result<Option<f64>, NexusError> {
        self.conn
            .query_row(
                "SELECT base FROM weights WHERE slot = ?1 AND base IS NOT NULL ORDER BY id DESC LIMIT 1",
                params![slot],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.fail(&e))
    }

    /// The capital the slot was last configured with, if the ledger knows the slot.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn slot_capital(&self, slot: &str) -> Result<Option<f64>, NexusError> {
        self.conn
            .query_row("SELECT capital FROM slots WHERE slot = ?1", params![slot], |r| r.get(0))
            .optional()
            .map_err(|e| self.fail(&e))
    }

    /// The model of the slot's last death, if it died.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn last_death_model(&self, slot: &str) -> Result<Option<String>, NexusError> {
        self.conn
            .query_row("SELECT model_id FROM deaths WHERE slot = ?1 ORDER BY id DESC LIMIT 1", params![slot], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.fail(&e))
    }

    /// The slot's champion by the ledger: (model id, bundle folder) of its latest model in the role `champion`.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn champion(&self, slot: &str) -> Result<Option<(String, String)>, NexusError> {
        self.conn
            .query_row(
                "SELECT model_id, bundle FROM models WHERE slot = ?1 AND role = 'champion'
                     ORDER BY ts_local DESC LIMIT 1",
                params![slot],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.fail(&e))
    }

    /// Records an engine event (connections, book sync changes, reconciliation results, refusals).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_event(&self, kind: &str, detail: &str, ts_exchange: Option<i64>) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO events (kind, detail, ts_exchange, ts_local) VALUES (?1, ?2, ?3, ?4)",
            params![kind, detail, ts_exchange, now_ns()],
        )?;
        Ok(())
    }

    /// Records a model a slot loaded (or changes its role: the row of a (slot, model) is kept, its role updated).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_model(&self, row: &ModelRow) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO models (slot, model_id, bundle, label, gp_tree, role, detail, ts_exchange, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (slot, model_id) DO UPDATE SET bundle = ?3, label = ?4, gp_tree = ?5, role = ?6,
                     detail = ?7, ts_exchange = ?8, ts_local = ?9",
            params![
                row.slot,
                row.model_id,
                row.bundle,
                row.label,
                row.gp_tree,
                row.role,
                row.detail,
                row.ts_exchange,
                now_ns()
            ],
        )?;
        Ok(())
    }

    /// Sets the role of a model already recorded (promotion, retirement).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn set_model_role(
        &self,
        slot: &str,
        model_id: &str,
        role: &str,
        detail: Option<&str>,
        ts_exchange: Option<i64>,
    ) -> Result<(), NexusError> {
        self.run(
            "UPDATE models SET role = ?3, detail = coalesce(?4, detail), ts_exchange = ?5, ts_local = ?6
                 WHERE slot = ?1 AND model_id = ?2",
            params![slot, model_id, role, detail, ts_exchange, now_ns()],
        )?;
        Ok(())
    }

    /// Records a challenger's shadow equity (paper fills against the live book and tape) after `decisions` decisions.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_shadow_equity(
        &self,
        slot: &str,
        model_id: &str,
        equity: f64,
        position: f64,
        decisions: i64,
        ts_exchange: Option<i64>,
    ) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO shadow_equity (slot, model_id, equity, position, decisions, ts_exchange, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![slot, model_id, equity, position, decisions, ts_exchange, now_ns()],
        )?;
        Ok(())
    }

    /// Records a swap of a slot's champion: `position` says what happened to the open position ("handed_over",
    /// "flattened", "flat").
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_swap(
        &self,
        slot: &str,
        from_model: Option<&str>,
        to_model: &str,
        reason: &str,
        position: &str,
        ts_exchange: Option<i64>,
    ) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO swaps (slot, from_model, to_model, reason, position, ts_exchange, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![slot, from_model, to_model, reason, position, ts_exchange, now_ns()],
        )?;
        Ok(())
    }

    /// Records a slot's death and marks the slot dead.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn record_death(&self, row: &DeathRow) -> Result<(), NexusError> {
        self.run(
            "INSERT INTO deaths (slot, symbol, model_id, reason, equity, threshold, request, ts_exchange, ts_local)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                row.slot,
                row.symbol,
                row.model_id,
                row.reason,
                row.equity,
                row.threshold,
                row.request,
                row.ts_exchange,
                now_ns()
            ],
        )?;
        self.set_slot_state(&row.slot, "dead")
    }

    /// Sets a slot's state: "live" or "dead" (a dead slot trades nothing until a new bundle refills it).
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a write failure.
    pub fn set_slot_state(&self, slot: &str, state: &str) -> Result<(), NexusError> {
        self.run("UPDATE slots SET state = ?2 WHERE slot = ?1", params![slot, state])?;
        Ok(())
    }

    /// The state ("live" or "dead") a slot was left in, if the ledger knows the slot.
    ///
    /// # Errors
    /// [`NexusError::Ledger`] on a read failure.
    pub fn slot_state(&self, slot: &str) -> Result<Option<String>, NexusError> {
        self.conn
            .query_row("SELECT state FROM slots WHERE slot = ?1", params![slot], |r| r.get(0))
            .optional()
            .map_err(|e| self.fail(&e))
    }

    /// The underlying connection, for reports and tests that query the tables directly.
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger path in a fresh folder, and the folder (kept while the test runs).
    fn temp(name: &str) -> (crate::Scratch, PathBuf) {
        let dir = crate::scratch(&format!("ledger-{name}"));
        let path = dir.join("ledger.sqlite");
        (dir, path)
    }

    fn intent(link: &str, seq: i64) -> OrderIntent {
        OrderIntent {
            order_link_id: link.into(),
            slot: "btc-a".into(),
            seq,
            symbol: "BTCUSDT".into(),
            side: "Buy".into(),
            qty: 0.002,
            price: None,
            tactic: "aggressive".into(),
            purpose: "entry".into(),
            reduce_only: false,
            decision_id: None,
            stop: Some(99_000.0),
            take: Some(105_000.0),
            book_update_id: Some(7),
            mid: Some(100_000.0),
        }
    }

    fn fill(exec: &str) -> FillRow {
        FillRow {
            exec_id: exec.into(),
            order_link_id: "btc-a-1".into(),
            slot: "btc-a".into(),
            symbol: "BTCUSDT".into(),
            side: "Buy".into(),
            price: 100_000.0,
            qty: 0.001,
            fee: 0.055,
            is_maker: Some(false),
            order_id: Some("1".into()),
            source: "ws".into(),
            ts_exchange: 1_000,
        }
    }

    #[test]
    fn wal_full_and_the_two_documented_tables() {
        let (_dir, path) = temp("pragmas");
        let ledger = Ledger::open(&path, "local", "abc").unwrap();
        let mode: String = ledger.connection().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        let sync: i64 = ledger.connection().query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        // NORMAL: a commit is a write into the WAL; `Durability` makes it durable (and orders wait for it).
        assert_eq!((mode.as_str(), sync), ("wal", 1));
        let wanted = ledger.request_sync();
        ledger.sync_now().unwrap();
        assert!(ledger.sync_progress().borrow().generation >= wanted);
        for (table, columns) in [
            ("fills", "exec_id order_link_id slot symbol side price qty fee ts_exchange ts_local"),
            ("orders", "order_link_id slot symbol side qty price tactic status"),
        ] {
            let mut statement = ledger.connection().prepare(&format!("PRAGMA table_info({table})")).unwrap();
            let names: Vec<String> =
                statement.query_map([], |r| r.get::<_, String>(1)).unwrap().map(Result::unwrap).collect();
            for column in columns.split(' ') {
                assert!(names.iter().any(|n| n == column), "{table} lacks {column}");
            }
        }
    }

    #[test]
    fn fills_are_booked_once_and_orders_keep_their_history() {
        let (_dir, path) = temp("fills");
        let ledger = Ledger::open(&path, "local", "abc").unwrap();
        ledger
            .upsert_slot(&SlotRow {
                slot: "btc-a".into(),
                symbol: "BTCUSDT".into(),
                account: "main".into(),
                capital: 200.0,
                bundle: "b".into(),
                bundle_sha256: "0".repeat(64),
                model: "signal".into(),
            })
            .unwrap();
        assert_eq!(ledger.next_seq("btc-a").unwrap(), 1);
        ledger.record_intent(&intent("btc-a-1", 1)).unwrap();
        assert!(ledger.record_intent(&intent("btc-a-1", 2)).is_err(), "an orderLinkId is used once");
        assert_eq!(ledger.next_seq("btc-a").unwrap(), 2);
        assert_eq!(ledger.live_orders().unwrap().len(), 1);
        let intended = ledger.oldest_live_intent_ts("main").unwrap().expect("a live order");
        assert!(intended > 0 && intended <= now_ns());
        assert_eq!(ledger.oldest_live_intent_ts("other").unwrap(), None);
        ledger.update_order("btc-a-1", "Filled", Some("1"), Some(0.002), None, Some(900)).unwrap();
        assert!(ledger.live_orders().unwrap().is_empty());
        assert_eq!(ledger.oldest_live_intent_ts("main").unwrap(), None);
        assert!(ledger.record_fill(&fill("e1")).unwrap());
        assert!(!ledger.record_fill(&fill("e1")).unwrap(), "the same execId is not booked twice");
        assert!(ledger.record_fill(&fill("e2")).unwrap());
        assert_eq!(ledger.fills_of("btc-a").unwrap().len(), 2);
        assert_eq!(ledger.last_fill_ts("main").unwrap(), Some(1_000));
        assert_eq!(ledger.last_fill_ts("other").unwrap(), None);
        drop(ledger);
        // Reopened: the same rows, a new run.
        let again = Ledger::open(&path, "local", "abc").unwrap();
        assert_eq!(again.run_id(), 2);
        assert_eq!(again.order("btc-a-1").unwrap().unwrap().status, "Filled");
        assert_eq!(again.fills_of("btc-a").unwrap().len(), 2);
    }

    #[test]
    fn bars_round_trip_with_nan_as_null() {
        let (_dir, path) = temp("bars");
        let ledger = Ledger::open(&path, "local", "abc").unwrap();
        ledger.record_bar("ETHUSDT", 60, [1.0, 2.0, 0.5, 1.5, 10.0], &[f64::NAN, 3.0]).unwrap();
        ledger.record_bar("ETHUSDT", 120, [1.5, 2.0, 1.0, 1.2, 5.0], &[0.1, 0.2]).unwrap();
        let bars = ledger.recent_bars("ETHUSDT", 10).unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].0, 60);
        assert!(bars[0].2[0].is_nan() && bars[0].2[1] == 3.0);
        assert_eq!(ledger.recent_bars("ETHUSDT", 1).unwrap()[0].0, 120);
    }

    #[test]
    fn a_foreign_database_is_refused() {
        let (_dir, path) = temp("foreign");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('schema', 'x');",
        )
        .unwrap();
        drop(conn);
        let error = Ledger::open(&path, "local", "abc").err().unwrap().to_string();
        assert!(error.contains("not a ledger"), "{error}");
    }

    #[test]
    fn a_version_1_ledger_gains_the_version_2_columns_and_keeps_its_rows() {
        let (_dir, path) = temp("migrate");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO meta VALUES ('schema', 'apex.ledger'), ('version', '1');
                 CREATE TABLE slots (slot TEXT PRIMARY KEY, symbol TEXT NOT NULL, account TEXT NOT NULL,
                     capital REAL NOT NULL, bundle TEXT NOT NULL, bundle_sha256 TEXT NOT NULL, model TEXT NOT NULL);
                 INSERT INTO slots VALUES ('btc-a', 'BTCUSDT', 'main', 200, 'b', 'h', 'signal');
                 CREATE TABLE decisions (decision_id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL,
                     slot TEXT NOT NULL, symbol TEXT NOT NULL, bar_ts INTEGER NOT NULL, signal REAL, p_up REAL,
                     kind TEXT NOT NULL, side TEXT, qty REAL, stop REAL, take REAL, win_probability REAL,
                     equity REAL NOT NULL, ts_exchange INTEGER NOT NULL, ts_local INTEGER NOT NULL);
                 CREATE TABLE weights (id INTEGER PRIMARY KEY, slot TEXT NOT NULL, weight REAL NOT NULL,
                     capital REAL NOT NULL, ts_exchange INTEGER, ts_local INTEGER NOT NULL);
                 INSERT INTO weights (slot, weight, capital, ts_local) VALUES ('btc-a', 1, 200, 1);",
            )
            .unwrap();
        }
        let ledger = Ledger::open(&path, "local", "abc").unwrap();
        assert_eq!(ledger.slot_state("btc-a").unwrap().as_deref(), Some("live"));
        // A weight of version 1 has no base; the next one written has.
        assert_eq!(ledger.last_base("btc-a").unwrap(), None);
        ledger.record_weight("btc-a", 1.0, 210.0, 190.0, Some(5)).unwrap();
        assert_eq!(ledger.last_base("btc-a").unwrap(), Some(190.0));
        let version: String =
            ledger.connection().query_row("SELECT value FROM meta WHERE key = 'version'", [], |r| r.get(0)).unwrap();
        assert_eq!(version, VERSION.to_string());
        ledger
            .record_death(&DeathRow {
                slot: "btc-a".into(),
                symbol: "BTCUSDT".into(),
                model_id: Some("h".into()),
                reason: "equity 0".into(),
                equity: 0.0,
                threshold: 5.0,
                request: None,
                ts_exchange: Some(1),
            })
            .unwrap();
        assert_eq!(ledger.slot_state("btc-a").unwrap().as_deref(), Some("dead"));
        let columns: i64 = ledger
            .connection()
            .query_row("SELECT count(*) FROM pragma_table_info('decisions') WHERE name = 'model_id'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(columns, 1);
    }
}
