//! The engine's TOML config: the venue, the engine's knobs and limits, the rule's overrides, and the slots (symbol,
//! capital, bundle folder, account). Read and checked in full before anything connects; every problem is one line
//! naming the file and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use apex_rule::RuleParams;
use serde::Deserialize;

use crate::NexusError;
use crate::cwo::CwoParams;

/// Where the engine trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VenueKind {
    /// The local Bybit-compatible venue (`apex-venue`), launched by `apexctl trade` or attached through its ready
    /// file.
    Local,
    /// Bybit's testnet, with keys from the environment.
    Testnet,
    /// Bybit's mainnet: only with the explicit opt-in flag and keys.
    Mainnet,
}

impl VenueKind {
    /// The name used in the config and on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            VenueKind::Local => "local",
            VenueKind::Testnet => "testnet",
            VenueKind::Mainnet => "mainnet",
        }
    }

    /// Parses `local`, `testnet` or `mainnet`.
    #[must_use]
    pub fn parse(text: &str) -> Option<VenueKind> {
        match text {
            "local" => Some(VenueKind::Local),
            "testnet" => Some(VenueKind::Testnet),
            "mainnet" => Some(VenueKind::Mainnet),
            _ => None,
        }
    }
}

/// `[venue]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueSection {
    pub kind: VenueKind,
    /// A running local venue's ready file (relative to the config file); `--venue-ready` overrides it.
    #[serde(default)]
    pub ready: Option<PathBuf>,
    /// For a local venue that `apexctl trade` launches: simulated seconds per wall-clock second, and its seed.
    #[serde(default = "default_speed")]
    pub speed: f64,
    #[serde(default)]
    pub seed: u64,
    /// For a launched local venue: a fault plan (TOML, relative to the config file).
    #[serde(default)]
    pub faults: Option<PathBuf>,
}

fn default_speed() -> f64 {
    1.0
}

/// `[engine]`: how the engine runs (durations as "500ms", "5s", "2m", "1h").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Bar length (exchange time) of the features and decisions: the bundles' bar.
    pub bar: String,
    /// Depth of the order-book stream (1, 50, 200 or 1000).
    pub book_depth: u32,
    /// A book with no message for this long (wall clock) is stale: no order is priced off it.
    pub stale_after: String,
    /// Cancel every open order of the engine on SIGINT/SIGTERM (before the ledger is flushed).
    pub cancel_on_exit: bool,
    /// Prometheus `/metrics` address; loopback only (port 0 picks a free port, written to the status file).
    pub metrics: String,
    /// How often `status.json` is rewritten.
    pub status_every: String,
    /// Record every public frame as received to `OUT/public.jsonl` (what `apexctl fetch` and `apexctl features`
    /// read: the feature rows the engine booked can be recomputed from it).
    pub record_public: bool,
    /// Exchange time a book message or trade is held before the feature engine sees it, so the two streams reach it
    /// in exchange-time order whatever order they arrived in (bars then equal `apexctl features` on a recording).
    /// Bars close this much later; trades act on brackets at once.
    pub reorder_window: String,
    /// Bybit's disconnection protection: once every private connection of an account is lost for this long (whole
    /// seconds, 3 to 300), the exchange cancels the account's open orders; "off" leaves it unset. A clean stop
    /// loses the connections too: with it on, `cancel_on_exit = false` keeps orders only for the window.
    pub disconnect_protection: String,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            bar: "1m".into(),
            book_depth: 50,
            stale_after: "10s".into(),
            cancel_on_exit: true,
            metrics: "127.0.0.1:0".into(),
            status_every: "1s".into(),
            record_public: false,
            reorder_window: "1s".into(),
            disconnect_protection: crate::protection::DEFAULT_WINDOW.into(),
        }
    }
}

/// `[limits]`: hard caps on what the engine sends, whatever the rule asks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Leverage cap of every slot (position notional over the slot's equity).
    pub max_leverage: f64,
    /// Largest notional of one order, quote currency.
    pub max_order_notional: f64,
    /// Most orders one slot may send per minute (wall clock); more are refused and logged.
    pub max_orders_per_minute: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection { max_leverage: 10.0, max_order_notional: 5_000.0, max_orders_per_minute: 30 }
    }
}

/// `[rule]`: overrides of the shared trading rule's parameters (see `apex-rule`); absent ones keep its defaults.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    pub entry_threshold: Option<f64>,
    pub stop_atr_mult: Option<f64>,
    pub atr_window: Option<usize>,
    pub stop_min_bps: Option<f64>,
    pub kelly_scale: Option<f64>,
    pub kelly_window: Option<usize>,
    pub prior_win_rate: Option<f64>,
    pub prior_trades: Option<f64>,
    pub min_fraction: Option<f64>,
    pub max_fraction: Option<f64>,
}

/// `[cwo]`: the continuous weight optimization (see `crate::cwo` for the rule).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CwoSection {
    /// false: every slot keeps its configured capital (plus its own PnL).
    pub enabled: bool,
    /// Market (exchange) time between reweights.
    pub every: String,
    /// Per-bar returns a slot's score looks at.
    pub lookback: usize,
    /// Prior strength, in bars, pulling a short record's score to 0.
    pub shrink: f64,
    /// How far a score moves a share from equal, 0 to 1.
    pub tilt: f64,
    /// Least share of its account's capital a live slot gets.
    pub floor: f64,
    /// Largest share of its account's capital a slot gets.
    pub cap: f64,
}

impl Default for CwoSection {
    fn default() -> Self {
        let params = CwoParams::default();
        CwoSection {
            enabled: true,
            every: "60s".into(),
            lookback: params.lookback,
            shrink: params.shrink,
            tilt: params.tilt,
            floor: params.floor,
            cap: params.cap,
        }
    }
}

/// `[pitcrew]`: the challenger bench and its promotion rule (see `pitcrew.rs`; durations as in `[engine]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PitcrewSection {
    /// Watch the slots' bundle folders for new bundles.
    pub enabled: bool,
    /// Fewest paired differences (bars after the one a challenger joined on) before a promotion (2 to 100000).
    pub min_decisions: u32,
    /// Level of the one-sided t-test on the paired log-growth differences, in (0, 0.5).
    pub alpha: f64,
    /// Most challengers per slot (1 to 16): a full bench retires its weakest for a new one.
    pub bench: u32,
    /// "notify" (file notifications, polling when they cannot start) or "poll".
    pub watch: String,
    /// Polling interval.
    pub poll: String,
    /// A changed folder is read once it has not changed for this long.
    pub settle: String,
    /// Fee rates of the challengers' paper fills (fraction of notional), in [-0.01, 0.1); the local venue's rates
    /// unless set.
    pub taker_fee: f64,
    pub maker_fee: f64,
}

impl Default for PitcrewSection {
    fn default() -> Self {
        let d = crate::pitcrew::Settings::default();
        PitcrewSection {
            enabled: d.enabled,
            min_decisions: u32::try_from(d.promotion.min_decisions).unwrap_or(u32::MAX),
            alpha: d.promotion.alpha,
            bench: u32::try_from(d.bench).unwrap_or(u32::MAX),
            watch: "notify".into(),
            poll: "2s".into(),
            settle: "500ms".into(),
            taker_fee: d.fees.taker,
            maker_fee: d.fees.maker,
        }
    }
}

fn pitcrew_settings(section: PitcrewSection) -> Result<crate::pitcrew::Settings, String> {
    use crate::pitcrew::{Fees, Promotion, Settings, WatchMode};
    if !(2..=100_000).contains(&section.min_decisions) {
        return Err(format!("pitcrew.min_decisions must be 2 to 100000, got {}", section.min_decisions));
    }
    if !(section.alpha.is_finite() && section.alpha > 0.0 && section.alpha < 0.5) {
        return Err(format!("pitcrew.alpha must be in (0, 0.5), got {}", section.alpha));
    }
    if !(1..=16).contains(&section.bench) {
        return Err(format!("pitcrew.bench must be 1 to 16, got {}", section.bench));
    }
    let watch = match section.watch.as_str() {
        "notify" => WatchMode::Notify,
        "poll" => WatchMode::Poll,
        other => return Err(format!("pitcrew.watch must be \"notify\" or \"poll\", got {other:?}")),
    };
    for (field, value) in [("taker_fee", section.taker_fee), ("maker_fee", section.maker_fee)] {
        if !(value.is_finite() && (-0.01..0.1).contains(&value)) {
            return Err(format!("pitcrew.{field} must be in [-0.01, 0.1), got {value}"));
        }
    }
    let duration = |field: &str, text: &str| parse_duration(text).map_err(|e| format!("pitcrew.{field}: {e}"));
    Ok(Settings {
        enabled: section.enabled,
        promotion: Promotion { min_decisions: section.min_decisions as usize, alpha: section.alpha },
        bench: section.bench as usize,
        watch,
        poll: duration("poll", &section.poll)?,
        settle: duration("settle", &section.settle)?,
        fees: Fees { taker: section.taker_fee, maker: section.maker_fee },
    })
}

/// One `[[slot]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSection {
    /// Unique, 1 to 12 characters of `[a-z0-9-]`: it prefixes every orderLinkId of the slot.
    pub name: String,
    pub symbol: String,
    /// Quote currency the slot starts with (its share of the account).
    pub capital: f64,
    /// The bundle folder `apexctl export` wrote (relative to the config file).
    pub bundle: PathBuf,
    /// Which key pair trades it: on a local venue the ready file's account of this name; on Bybit `main` is
    /// `BYBIT_API_KEY`/`BYBIT_API_SECRET` and any other name `BYBIT_API_KEY_<NAME>`/`BYBIT_API_SECRET_<NAME>`.
    #[serde(default = "default_account")]
    pub account: String,
}

fn default_account() -> String {
    "main".into()
}

/// The environment variables holding `account`'s key pair on Bybit: `main` is `BYBIT_API_KEY`/`BYBIT_API_SECRET`,
/// any other name `BYBIT_API_KEY_<NAME>`/`BYBIT_API_SECRET_<NAME>` (upper case, `-` as `_`, as shells name
/// variables).
#[must_use]
pub fn key_variables(account: &str) -> (String, String) {
    if account == "main" {
        ("BYBIT_API_KEY".to_owned(), "BYBIT_API_SECRET".to_owned())
    } else {
        let upper = account.to_ascii_uppercase().replace('-', "_");
        (format!("BYBIT_API_KEY_{upper}"), format!("BYBIT_API_SECRET_{upper}"))
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    venue: VenueSection,
    #[serde(default)]
    engine: EngineSection,
    #[serde(default)]
    limits: LimitsSection,
    #[serde(default)]
    rule: RuleSection,
    #[serde(default)]
    cwo: CwoSection,
    #[serde(default)]
    pitcrew: PitcrewSection,
    #[serde(rename = "slot", default)]
    slots: Vec<SlotSection>,
}

/// A slot as the engine runs it: the section with its bundle path resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotConfig {
    pub name: String,
    pub symbol: String,
    pub capital: f64,
    pub bundle: PathBuf,
    pub account: String,
}

/// The checked config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes (recorded in the ledger's run row).
    pub sha256: String,
    pub venue: VenueSection,
    pub bar: Duration,
    pub book_depth: u32,
    pub stale_after: Duration,
    pub cancel_on_exit: bool,
    pub metrics: std::net::SocketAddr,
    pub status_every: Duration,
    pub record_public: bool,
    pub reorder_window: Duration,
    /// The disconnection-protection window, seconds (`None`: off).
    pub disconnect_protection: Option<u32>,
    pub limits: LimitsSection,
    /// The rule every slot trades by (defaults, the `[rule]` overrides, `limits.max_leverage`).
    pub rule: RuleParams,
    /// The CWO's parameters (`None`: disabled).
    pub cwo: Option<CwoParams>,
    /// The Pit Crew's settings (`[pitcrew]`).
    pub pitcrew: crate::pitcrew::Settings,
    pub slots: Vec<SlotConfig>,
}

/// Run lengths and protection windows are spelled as every apexctl `--duration` is: one definition in apex-core.
pub use apex_core::text::parse_duration;

impl Config {
    /// Reads and checks the config at `path`.
    ///
    /// # Errors
    /// [`NexusError::Config`] naming the file and the first problem (unreadable file, TOML syntax with its line,
    /// unknown or missing field, value out of range, duplicate slot name).
    pub fn read(path: &Path) -> Result<Config, NexusError> {
        let fail = |message: String| NexusError::Config { path: path.to_owned(), message };
        let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| fail("not UTF-8 text".into()))?;
        let raw: RawConfig = apex_core::text::parse_toml(&text).map_err(fail)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::check(raw, path, &base, apex_infer::sha256_hex(&bytes)).map_err(fail)
    }

    fn check(raw: RawConfig, path: &Path, base: &Path, sha256: String) -> Result<Config, String> {
        let resolve = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };
        let mut venue = raw.venue;
        if !(venue.speed.is_finite() && venue.speed > 0.0) {
            return Err(format!("venue.speed must be positive, got {}", venue.speed));
        }
        venue.ready = venue.ready.as_deref().map(resolve);
        venue.faults = venue.faults.as_deref().map(resolve);
        let engine = raw.engine;
        let duration = |field: &str, text: &str| parse_duration(text).map_err(|e| format!("engine.{field}: {e}"));
        let bar = duration("bar", &engine.bar)?;
        if bar.as_secs() == 0 || bar.subsec_nanos() != 0 || 86_400 % bar.as_secs() != 0 {
            return Err(format!("engine.bar must be whole seconds dividing a day, got {:?}", engine.bar));
        }
        if !apex_bybit::ORDERBOOK_DEPTHS.contains(&engine.book_depth) {
            return Err(format!(
                "engine.book_depth must be one of {:?}, got {}",
                apex_bybit::ORDERBOOK_DEPTHS,
                engine.book_depth
            ));
        }
        let metrics: std::net::SocketAddr =
            engine.metrics.parse().map_err(|_| format!("engine.metrics: {:?} is not an address", engine.metrics))?;
        if !metrics.ip().is_loopback() {
            return Err(format!("engine.metrics must be a loopback address, got {metrics}"));
        }
        let limits = raw.limits;
        for (field, value) in [("max_leverage", limits.max_leverage), ("max_order_notional", limits.max_order_notional)]
        {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("limits.{field} must be positive, got {value}"));
            }
        }
        if limits.max_orders_per_minute == 0 {
            return Err("limits.max_orders_per_minute must be at least 1".into());
        }
        let rule = rule_params(&raw.rule, limits.max_leverage)?;
        let pitcrew = pitcrew_settings(raw.pitcrew)?;
        if raw.slots.is_empty() {
            return Err("no [[slot]]: the engine needs at least one slot".into());
        }
        let cwo = if raw.cwo.enabled {
            let section = &raw.cwo;
            let params = CwoParams {
                every: parse_duration(&section.every).map_err(|e| format!("cwo.every: {e}"))?,
                lookback: section.lookback,
                shrink: section.shrink,
                tilt: section.tilt,
                floor: section.floor,
                cap: section.cap,
            };
            params.validate()?;
            Some(params)
        } else {
            None
        };
        let mut names = BTreeSet::new();
        // Account names are the venue's accounts, and on Bybit the variables their keys are read from.
        let mut key_owners: BTreeMap<String, String> = BTreeMap::new();
        let mut slots = Vec::new();
        for (i, slot) in raw.slots.into_iter().enumerate() {
            let at = format!("slot[{i}]");
            let valid_name = !slot.name.is_empty()
                && slot.name.len() <= 12
                && slot.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_name {
                return Err(format!("{at}.name {:?} must be 1-12 characters of a-z, 0-9 and -", slot.name));
            }
            if !names.insert(slot.name.clone()) {
                return Err(format!("{at}.name {:?} is used by two slots", slot.name));
            }
            if slot.symbol.is_empty() || !slot.symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
                return Err(format!("{at}.symbol {:?} must be an upper-case symbol such as BTCUSDT", slot.symbol));
            }
            if !(slot.capital.is_finite() && slot.capital > 0.0) {
                return Err(format!("{at}.capital must be positive, got {}", slot.capital));
            }
            let valid_account = !slot.account.is_empty()
                && slot.account.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_account {
                return Err(format!("{at}.account {:?} must be letters, digits, - or _", slot.account));
            }
            let (key_variable, _) = key_variables(&slot.account);
            match key_owners.get(&key_variable) {
                Some(other) if *other != slot.account => {
                    return Err(format!(
                        "{at}.account {:?} and account {other:?} would both trade with the keys in {key_variable}: \
                         name accounts apart by more than case, - and _",
                        slot.account
                    ));
                }
                _ => {
                    key_owners.insert(key_variable, slot.account.clone());
                }
            }
            slots.push(SlotConfig {
                name: slot.name,
                symbol: slot.symbol,
                capital: slot.capital,
                bundle: resolve(&slot.bundle),
                account: slot.account,
            });
        }
        Ok(Config {
            path: path.to_owned(),
            sha256,
            venue,
            bar,
            book_depth: engine.book_depth,
            stale_after: duration("stale_after", &engine.stale_after)?,
            cancel_on_exit: engine.cancel_on_exit,
            metrics,
            status_every: duration("status_every", &engine.status_every)?,
            record_public: engine.record_public,
            reorder_window: duration("reorder_window", &engine.reorder_window)?,
            disconnect_protection: crate::protection::parse_window(&engine.disconnect_protection)
                .map_err(|e| format!("engine.disconnect_protection: {e}"))?,
            limits,
            rule,
            cwo,
            pitcrew,
            slots,
        })
    }

    /// The symbols the slots trade, sorted, once each.
    #[must_use]
    pub fn symbols(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.symbol.clone()).collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// The accounts the slots trade from, sorted, once each.
    #[must_use]
    pub fn accounts(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.account.clone()).collect::<BTreeSet<_>>().into_iter().collect()
    }
}

fn rule_params(section: &RuleSection, max_leverage: f64) -> Result<RuleParams, String> {
    let d = RuleParams::default();
    let params = RuleParams {
        entry_threshold: section.entry_threshold.unwrap_or(d.entry_threshold),
        stop_atr_mult: section.stop_atr_mult.unwrap_or(d.stop_atr_mult),
        atr_window: section.atr_window.unwrap_or(d.atr_window),
        stop_min_bps: section.stop_min_bps.unwrap_or(d.stop_min_bps),
        reward_risk: d.reward_risk,
        kelly_scale: section.kelly_scale.unwrap_or(d.kelly_scale),
        kelly_window: section.kelly_window.unwrap_or(d.kelly_window),
        prior_win_rate: section.prior_win_rate.unwrap_or(d.prior_win_rate),
        prior_trades: section.prior_trades.unwrap_or(d.prior_trades),
        min_fraction: section.min_fraction.unwrap_or(d.min_fraction),
        max_fraction: section.max_fraction.unwrap_or(d.max_fraction),
        max_leverage,
    };
    params.validate().map_err(|e| format!("rule: {e}"))?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("nexus.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A folder per test: tests run concurrently and each rewrites its `nexus.toml`.
    fn temp(test: &str) -> crate::Scratch {
        crate::scratch(&format!("config-{test}"))
    }

    const GOOD: &str = r#"
[venue]
kind = "local"
speed = 20

[engine]
bar = "1m"

[rule]
prior_win_rate = 0.35

[[slot]]
name = "btc-a"
symbol = "BTCUSDT"
capital = 200
bundle = "bundles/BTCUSDT/a"

[[slot]]
name = "btc-b"
symbol = "BTCUSDT"
capital = 200
bundle = "/abs/bundles/BTCUSDT/b"
account = "second"
"#;

    #[test]
    fn a_good_config_resolves_paths_and_defaults() {
        let dir = temp("good");
        let config = Config::read(&write(&dir, GOOD)).unwrap();
        assert_eq!(config.venue.kind, VenueKind::Local);
        assert_eq!(config.bar, Duration::from_secs(60));
        assert_eq!(config.slots[0].bundle, dir.join("bundles/BTCUSDT/a"));
        assert_eq!(config.slots[1].bundle, PathBuf::from("/abs/bundles/BTCUSDT/b"));
        assert_eq!(config.rule.prior_win_rate, 0.35);
        assert_eq!(config.rule.max_leverage, 10.0);
        assert_eq!(config.accounts(), ["main", "second"]);
        assert_eq!(config.symbols(), ["BTCUSDT"]);
        assert_eq!(config.sha256.len(), 64);
        assert_eq!(config.disconnect_protection, Some(10), "on with 10 s unless told otherwise");
        let off = Config::read(&write(&dir, &GOOD.replace("bar = \"1m\"", "disconnect_protection = \"off\""))).unwrap();
        assert_eq!(off.disconnect_protection, None);
    }

    #[test]
    fn every_problem_is_one_line_naming_the_file_and_field() {
        let dir = temp("problems");
        let cases = [
            (GOOD.replace("kind = \"local\"", "kind = \"moon\""), "unknown variant"),
            (GOOD.replace("capital = 200\nbundle = \"b", "capital = -1\nbundle = \"b"), "slot[0].capital"),
            (GOOD.replace("name = \"btc-b\"", "name = \"btc-a\""), "used by two slots"),
            (GOOD.replace("name = \"btc-a\"", "name = \"BTC A\""), "slot[0].name"),
            (GOOD.replace("bar = \"1m\"", "bar = \"7s\""), "engine.bar"),
            (GOOD.replace("bar = \"1m\"", "bar = \"1m\"\nbook_depth = 500"), "book_depth"),
            (GOOD.replace("bar = \"1m\"", "bar = \"1m\"\nmetrics = \"0.0.0.0:9000\""), "loopback"),
            (
                GOOD.replace("bar = \"1m\"", "bar = \"1m\"\ndisconnect_protection = \"2s\""),
                "engine.disconnect_protection",
            ),
            (
                GOOD.replace("bar = \"1m\"", "bar = \"1m\"\ndisconnect_protection = \"no\""),
                "engine.disconnect_protection",
            ),
            (GOOD.replace("[rule]", "[rule]\nmax_fraction = 2"), "rule:"),
            (GOOD.replace("[rule]", "[pitcrew]\nmin_decisions = 1\n[rule]"), "pitcrew.min_decisions"),
            (GOOD.replace("[rule]", "[pitcrew]\nalpha = 0.7\n[rule]"), "pitcrew.alpha"),
            (GOOD.replace("[rule]", "[pitcrew]\nbench = 0\n[rule]"), "pitcrew.bench"),
            (GOOD.replace("[rule]", "[pitcrew]\nwatch = \"inotify\"\n[rule]"), "pitcrew.watch"),
            (GOOD.replace("[rule]", "[pitcrew]\npoll = \"0s\"\n[rule]"), "pitcrew.poll"),
            (GOOD.replace("[rule]", "[pitcrew]\ntaker_fee = 0.5\n[rule]"), "pitcrew.taker_fee"),
            (GOOD.replace("[rule]", "[pitcrew]\nmin_decisons = 10\n[rule]"), "unknown field"),
            (GOOD.replace("speed = 20", "speed = 20\ncolour = 1"), "unknown field"),
            (GOOD.replace("[venue]", "[venue"), "line 2"),
            ("[venue]\nkind = \"local\"\n".into(), "no [[slot]]"),
        ];
        for (text, expected) in cases {
            let error = Config::read(&write(&dir, &text)).unwrap_err().to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
            assert!(error.starts_with(dir.join("nexus.toml").to_str().unwrap()), "{error}");
            assert!(!error.contains('\n'), "{error:?}");
        }
        let missing = Config::read(&dir.join("absent.toml")).unwrap_err().to_string();
        assert!(missing.contains("cannot read"), "{missing}");
    }

    /// A third slot on `account`, beside GOOD's `main` and `second`.
    fn with_account(account: &str) -> String {
        format!(
            "{GOOD}\n[[slot]]\nname = \"btc-c\"\nsymbol = \"BTCUSDT\"\ncapital = 1\nbundle = \"c\"\naccount = \"{account}\"\n"
        )
    }

    #[test]
    fn accounts_that_would_share_key_variables_are_refused() {
        let dir = temp("accounts");
        for (account, variable) in [("SECOND", "BYBIT_API_KEY_SECOND"), ("Second", "BYBIT_API_KEY_SECOND")] {
            let error = Config::read(&write(&dir, &with_account(account))).unwrap_err().to_string();
            assert!(error.contains("slot[2].account") && error.contains(variable), "{error}");
        }
        let hyphen = with_account("a-b").replace("account = \"second\"", "account = \"a_b\"");
        let error = Config::read(&write(&dir, &hyphen)).unwrap_err().to_string();
        assert!(error.contains("BYBIT_API_KEY_A_B"), "{error}");
        // The same name twice is one account; `MAIN` has its own variables (BYBIT_API_KEY_MAIN), apart from `main`'s.
        for account in ["second", "MAIN", "third"] {
            Config::read(&write(&dir, &with_account(account))).unwrap();
        }
        assert_eq!(key_variables("main").0, "BYBIT_API_KEY");
        assert_eq!(key_variables("desk-2").1, "BYBIT_API_SECRET_DESK_2");
    }

    #[test]
    fn a_run_of_days_parses() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_duration("1w").is_err());
    }

    #[test]
    fn the_example_configs_are_valid() {
        let examples = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../examples/nexus");
        for name in ["local.toml", "testnet.toml"] {
            let config = Config::read(&examples.join(name)).unwrap();
            assert_eq!(config.slots.len(), 6, "{name}");
            assert_eq!(config.symbols(), ["BTCUSDT", "ETHUSDT", "SOLUSDT"]);
            assert!(config.slots[0].bundle.ends_with("runs/pipeline/bundles/BTCUSDT/a"), "{name}");
        }
    }
}
