//! What a venue is started with: symbols, seed, DSG, speed, accounts, faults, port, ready file, duration; and the
//! accounts file.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use apex_sim::Dsg;
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::VenueError;
use crate::faults::FaultPlan;

/// Balance of an account the venue generates or whose file entry gives none, in USDT.
pub const DEFAULT_BALANCE: &str = "10000";
/// Order-entry latency of an account whose file entry gives none, in simulated milliseconds.
pub const DEFAULT_LATENCY_MS: f64 = 5.0;
/// Symbols served by default.
pub const DEFAULT_SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];

/// One trading account: its name, API credentials, starting USDT balance and order-entry latency.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    pub name: String,
    pub api_key: String,
    pub api_secret: String,
    /// Starting wallet balance in USDT, a decimal string (default 10000); the file may give a JSON number.
    #[serde(default = "default_balance", deserialize_with = "decimal_text")]
    pub balance: String,
    /// Simulated milliseconds between a request's arrival at the venue and its arrival at the matching engine.
    #[serde(default = "default_latency")]
    pub latency_ms: f64,
}

fn default_balance() -> String {
    DEFAULT_BALANCE.to_owned()
}

/// A decimal as its text: a JSON string as written, or a JSON number (`1000`, `2500.5`) as Rust prints it (the
/// shortest text that reads back as the same number), so both spellings of a balance are checked the same way.
fn decimal_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct DecimalText;
    impl serde::de::Visitor<'_> for DecimalText {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a decimal number, as a string (\"2500.5\") or a number")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<String, E> {
            Ok(text.to_owned())
        }
        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<String, E> {
            Ok(value.to_string())
        }
    }
    deserializer.deserialize_any(DecimalText)
}

fn default_latency() -> f64 {
    DEFAULT_LATENCY_MS
}

impl std::fmt::Debug for AccountSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSpec")
            .field("name", &self.name)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<hidden>")
            .field("balance", &self.balance)
            .field("latency_ms", &self.latency_ms)
            .finish()
    }
}

impl AccountSpec {
    /// A new account with random 18-character key and 36-character secret (Bybit's lengths).
    #[must_use]
    pub fn generate(name: &str) -> AccountSpec {
        let mut rng = rand::rng();
        let mut token = |len: usize| -> String {
            const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
        };
        AccountSpec {
            name: name.to_owned(),
            api_key: token(18),
            api_secret: token(36),
            balance: default_balance(),
            latency_ms: DEFAULT_LATENCY_MS,
        }
    }
}

/// Reads an accounts file: a JSON array of `{"name", "api_key", "api_secret", "balance"?, "latency_ms"?}`.
///
/// # Errors
/// `Input` naming the file and what is wrong (unreadable, not JSON of that shape, duplicate names or keys, empty
/// fields, a balance that is not a decimal from 0 to [`MAX_BALANCE`] with at most 8 decimals, a latency outside
/// [0, 10000] ms).
pub fn read_accounts(path: &Path) -> Result<Vec<AccountSpec>, VenueError> {
    let bad = |what: String| VenueError::Input(format!("{}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let accounts: Vec<AccountSpec> = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "expected a JSON array of {{\"name\", \"api_key\", \"api_secret\", \"balance\"?, \"latency_ms\"?}}: {e}"
        ))
    })?;
    if accounts.is_empty() {
        return Err(bad("no accounts".into()));
    }
    for (i, a) in accounts.iter().enumerate() {
        for (field, value) in [("name", &a.name), ("api_key", &a.api_key), ("api_secret", &a.api_secret)] {
            if value.trim().is_empty() {
                return Err(bad(format!("account {i}: {field} is empty")));
            }
        }
        if accounts[..i].iter().any(|b| b.name == a.name || b.api_key == a.api_key) {
            return Err(bad(format!("account {i} ({}): its name or api_key is used twice", a.name)));
        }
        if let Err(why) = check_balance(&a.balance) {
            return Err(bad(format!("account {i} ({}): balance '{}' {why}", a.name, a.balance)));
        }
        if !(a.latency_ms.is_finite() && (0.0..=10_000.0).contains(&a.latency_ms)) {
            return Err(bad(format!("account {i} ({}): latency_ms {} is outside [0, 10000]", a.name, a.latency_ms)));
        }
    }
    Ok(accounts)
}

/// Decimals of a balance: the wallet's wire precision (Bybit writes USDT with up to 8).
pub const BALANCE_DECIMALS: u32 = 8;
/// Largest balance, in USDT: what 8-decimal units fit in an `i64`.
pub const MAX_BALANCE: &str = "92233720368.54775807";

/// Why a balance string cannot be used, if it cannot: what it should be and, for a number out of bounds or too
/// precise, the accepted range or decimals.
fn check_balance(balance: &str) -> Result<(), String> {
    let range = format!("from 0 to {MAX_BALANCE} USDT");
    let scale = apex_core::Scale::new(BALANCE_DECIMALS).expect("8 decimals is a scale");
    match scale.parse(balance) {
        Ok(units) if units >= 0 => Ok(()),
        Ok(_) => Err(format!("is negative: give a balance {range}")),
        Err(apex_core::ScaleError::TooPrecise { .. }) => {
            Err(format!("has more than {BALANCE_DECIMALS} decimals: give at most {BALANCE_DECIMALS}"))
        }
        Err(apex_core::ScaleError::OutOfRange { .. }) => Err(format!("is too large: give a balance {range}")),
        Err(_) => Err(format!("is not a decimal number such as \"10000\" or \"2500.5\" ({range})")),
    }
}

/// Everything a venue runs with.
#[derive(Debug, Clone)]
pub struct VenueConfig {
    pub symbols: Vec<String>,
    pub seed: u64,
    pub dsg: Dsg,
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
    pub accounts: Vec<AccountSpec>,
    pub faults: FaultPlan,
    /// Where each injected fault is logged (JSON lines), if anywhere.
    pub fault_log: Option<PathBuf>,
    /// Loopback port; 0 picks a free one.
    pub port: u16,
    /// Where the ready file goes (see `Venue::ready_document`); removed at stop.
    pub ready: Option<PathBuf>,
    /// Stop after this long (wall clock); `None` runs until SIGINT/SIGTERM.
    pub duration: Option<Duration>,
}

impl VenueConfig {
    /// The defaults: BTCUSDT, ETHUSDT, SOLUSDT at real time, seed 0, the built-in DSG, one generated account, no
    /// faults, a free port.
    #[must_use]
    pub fn new(accounts: Vec<AccountSpec>) -> VenueConfig {
        VenueConfig {
            symbols: DEFAULT_SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
            seed: 0,
            dsg: Dsg::default(),
            speed: 1.0,
            accounts,
            faults: FaultPlan::default(),
            fault_log: None,
            port: 0,
            ready: None,
            duration: None,
        }
    }

    /// The address the venue listens on: always loopback.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Checks what the types cannot.
    ///
    /// # Errors
    /// `Input` for an unknown or repeated symbol, a speed outside (0, 10000], no account.
    pub fn validate(&self) -> Result<(), VenueError> {
        if self.symbols.is_empty() {
            return Err(VenueError::Input("--symbols: give at least one symbol".into()));
        }
        for (i, symbol) in self.symbols.iter().enumerate() {
            if apex_sim::batch::PRESETS.iter().all(|p| p.0 != symbol) {
                let known = apex_sim::batch::preset_names();
                return Err(VenueError::Input(format!("--symbols: no instrument preset for {symbol}; known: {known}")));
            }
            if self.symbols[..i].contains(symbol) {
                return Err(VenueError::Input(format!("--symbols: {symbol} is given twice")));
            }
        }
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= 10_000.0) {
            return Err(VenueError::Input(format!("--speed must be in (0, 10000], got {}", self.speed)));
        }
        if self.accounts.is_empty() {
            return Err(VenueError::Input("no accounts".into()));
        }
        Ok(())
    }
}
