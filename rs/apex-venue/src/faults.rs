//! Fault injection: the plan read from a TOML file (`--faults`), the seeded draws that decide when and where a fault
//! strikes, and the JSON-lines log of every fault injected, so a test can line up what a client saw.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::VenueError;

/// A fault that strikes each time with a probability (per message or per request).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chance {
    pub probability: f64,
}

/// A fault that strikes now and then: intervals are exponential with mean `every_s` wall-clock seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Every {
    pub every_s: f64,
}

/// A periodic fault that lasts `duration_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub every_s: f64,
    pub duration_ms: u64,
}

/// A stream held back by a fixed time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lag {
    pub delay_ms: u64,
}

/// Order creates refused with a retCode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    pub probability: f64,
    #[serde(default = "default_reject_code")]
    pub ret_code: i64,
}

fn default_reject_code() -> i64 {
    10016
}

/// Which faults to inject and how often. Every section is optional; an empty plan injects nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Seed of the fault draws (the market has its own).
    #[serde(default)]
    pub seed: u64,
    /// A public order-book delta is not sent to one connection: its client sees a gap in `u`.
    pub drop: Option<Chance>,
    /// A topic's update id jumps by one: every subscriber sees the gap.
    pub skip: Option<Every>,
    /// A public message is sent twice to one connection.
    pub duplicate: Option<Chance>,
    /// One open WebSocket connection is closed (code 1001, reason "fault: disconnect").
    pub disconnect: Option<Every>,
    /// The order-book service restarts: every book stream of one symbol sends a `u` = 1 snapshot.
    pub restart: Option<Every>,
    /// One connection and every REST answer stall for `duration_ms`.
    pub latency_spike: Option<Window>,
    /// Order creates are refused with `ret_code` (default 10016, "Server error").
    pub reject: Option<Reject>,
    /// A market order is accepted and then cancelled without trading, as Bybit cancels one that finds nothing
    /// inside its price band. The venue books it as an IOC limit 5 % short of the opposite touch, so it shows as a
    /// cancelled `Limit` order.
    pub unfilled: Option<Chance>,
    /// A market order trades only what rests at the opposite touch and the rest is cancelled, as Bybit cancels what
    /// is left of one once its price band is reached. The venue books it as an IOC limit at the touch, so it shows as
    /// a cancelled `Limit` order with part of its quantity traded (all of it when the touch holds enough).
    pub partial: Option<Chance>,
    /// Every authenticated REST request is answered 10006 ("Too many visits!") for `duration_ms`.
    pub rate_limit_burst: Option<Window>,
    /// Every private `execution` message reaches its subscribers `delay_ms` late, in order, while the `order`,
    /// `position` and `wallet` streams are on time: Bybit's private topics are separate streams, so a client can
    /// learn an order ended, with part of it traded, before it hears of those trades.
    pub execution_lag: Option<Lag>,
    /// Every public trade message reaches its subscribers `delay_ms` late, in order, while book messages are on time:
    /// Bybit's public topics are separate streams too, so a client can see a book change before the trade that made
    /// it, by as much as this.
    pub trade_lag: Option<Lag>,
    /// A private `order` or `execution` message never reaches the account's subscribers, as when a client's event
    /// queue overflows and drops it: the REST order and execution history still hold what it said.
    pub private_loss: Option<Chance>,
}

/// A fault plan's change to how a market order meets the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketFault {
    /// It cannot trade: the book cancels it unfilled.
    Unfilled,
    /// It trades only what rests at the opposite touch: the book cancels the rest.
    Partial,
}

impl MarketFault {
    /// The fault's name in the plan and the fault log.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            MarketFault::Unfilled => "unfilled",
            MarketFault::Partial => "partial",
        }
    }
}

impl FaultPlan {
    /// Reads and checks a plan.
    ///
    /// # Errors
    /// `Input` naming the file: unreadable, not TOML, an unknown section or key, a probability outside [0, 1], an
    /// interval that is not positive, a reject whose `ret_code` is 0.
    pub fn read(path: &Path) -> Result<FaultPlan, VenueError> {
        let bad = |what: String| VenueError::Input(format!("{}: {what}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let plan: FaultPlan = apex_core::text::parse_toml(&text).map_err(bad)?;
        plan.validate().map_err(bad)?;
        Ok(plan)
    }

    fn validate(&self) -> Result<(), String> {
        let chances = [
            ("drop", self.drop.map(|c| c.probability)),
            ("duplicate", self.duplicate.map(|c| c.probability)),
            ("unfilled", self.unfilled.map(|c| c.probability)),
            ("partial", self.partial.map(|c| c.probability)),
            ("private_loss", self.private_loss.map(|c| c.probability)),
        ];
        for (name, p) in chances.into_iter().chain([("reject", self.reject.map(|r| r.probability))]) {
            if let Some(p) = p
                && !(0.0..=1.0).contains(&p)
            {
                return Err(format!("[{name}] probability must be in [0, 1], got {p}"));
            }
        }
        // A reject answered with 0 would tell the client its order was placed while nothing was: a reject must carry
        // an error code.
        if self.reject.is_some_and(|r| r.ret_code == 0) {
            return Err("[reject] ret_code must be a Bybit error code such as 10016, not 0 (0 means success)".into());
        }
        let everys = [
            ("skip", self.skip.map(|e| e.every_s)),
            ("disconnect", self.disconnect.map(|e| e.every_s)),
            ("restart", self.restart.map(|e| e.every_s)),
            ("latency_spike", self.latency_spike.map(|w| w.every_s)),
            ("rate_limit_burst", self.rate_limit_burst.map(|w| w.every_s)),
        ];
        for (name, every) in everys {
            if let Some(every) = every
                && !(every.is_finite() && every > 0.0)
            {
                return Err(format!("[{name}] every_s must be a positive number of seconds, got {every}"));
            }
        }
        for (name, window) in [("latency_spike", self.latency_spike), ("rate_limit_burst", self.rate_limit_burst)] {
            if window.is_some_and(|w| w.duration_ms == 0 || w.duration_ms > 600_000) {
                return Err(format!("[{name}] duration_ms must be in [1, 600000]"));
            }
        }
        for (name, lag) in [("execution_lag", self.execution_lag), ("trade_lag", self.trade_lag)] {
            if lag.is_some_and(|lag| lag.delay_ms == 0 || lag.delay_ms > 60_000) {
                return Err(format!("[{name}] delay_ms must be in [1, 60000]"));
            }
        }
        Ok(())
    }

    /// True when no fault is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == FaultPlan { seed: self.seed, ..FaultPlan::default() }
    }
}

/// Seeded draws for one place that injects faults (a connection, the REST gateway, the scheduler).
#[derive(Debug, Clone)]
pub struct Dice(Xoshiro256PlusPlus);

impl Dice {
    /// Draws for stream `stream` of the plan's seed (streams are independent).
    #[must_use]
    pub fn new(seed: u64, stream: u64) -> Dice {
        Dice(Xoshiro256PlusPlus::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    /// True with probability `p` (never draws for `None`).
    pub fn hit(&mut self, chance: Option<f64>) -> bool {
        chance.is_some_and(|p| p > 0.0 && self.0.random_bool(p.min(1.0)))
    }

    /// An exponential wait with mean `mean_s`, in milliseconds.
    pub fn wait_ms(&mut self, mean_s: f64) -> u64 {
        let u: f64 = self.0.random_range(f64::EPSILON..1.0);
        (-u.ln() * mean_s * 1e3).clamp(1.0, 86_400_000.0) as u64
    }

    /// A uniform index below `n` (n > 0).
    pub fn pick(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }
}

/// The fault log: one JSON object per line, `{"t_ms": wall-clock ms, "fault": name, ...details}`, flushed per line.
#[derive(Debug, Default)]
pub struct FaultLog {
    file: Option<Mutex<BufWriter<File>>>,
    counts: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl FaultLog {
    /// A log written to `path` (created or truncated), or kept only as counts.
    ///
    /// # Errors
    /// `Input` when the file cannot be created.
    pub fn create(path: Option<&Path>) -> Result<FaultLog, VenueError> {
        let file = match path {
            Some(path) => Some(Mutex::new(BufWriter::new(File::create(path).map_err(|e| {
                VenueError::Input(format!("--fault-log {}: cannot create the fault log: {e}", path.display()))
            })?))),
            None => None,
        };
        Ok(FaultLog { file, counts: Mutex::new(std::collections::BTreeMap::new()) })
    }

    /// Records one injected fault with its details (an object).
    pub fn record(&self, t_ms: i64, fault: &str, details: Value) {
        *self.counts.lock().expect("fault counts").entry(fault.to_owned()).or_default() += 1;
        tracing::info!(fault, %details, "fault injected");
        if let Some(file) = &self.file {
            let mut line = json!({"t_ms": t_ms, "fault": fault});
            if let (Some(line), Value::Object(details)) = (line.as_object_mut(), details) {
                line.extend(details);
            }
            let mut file = file.lock().expect("fault log");
            // A full disk must not take the venue down; the log is best effort.
            let _ = writeln!(file, "{line}").and_then(|()| file.flush());
        }
    }

    /// How many faults of each kind were injected.
    #[must_use]
    pub fn counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.counts.lock().expect("fault counts").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_plan_reads_and_bad_plans_say_why() {
        let temp = tempfile::Builder::new().prefix("apex-venue-faults-").tempdir().unwrap();
        let dir = temp.path();
        let example = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../examples/venue/faults.toml");
        let plan = FaultPlan::read(&example).unwrap();
        assert!(
            plan.drop.is_some()
                && plan.restart.is_some()
                && plan.rate_limit_burst.is_some()
                && plan.unfilled.is_some()
                && plan.partial.is_some()
                && plan.execution_lag.is_some()
                && plan.trade_lag.is_some()
                && plan.private_loss.is_some()
                && !plan.is_empty()
        );
        for (text, expected) in [
            ("[drop]\nprobability = 2.0\n", "probability must be in [0, 1]"),
            ("[unfilled]\nprobability = -0.1\n", "[unfilled] probability must be in [0, 1]"),
            ("[partial]\nprobability = 1.5\n", "[partial] probability must be in [0, 1]"),
            ("[private_loss]\nprobability = 1.01\n", "[private_loss] probability must be in [0, 1]"),
            ("[restart]\nevery_s = 0\n", "every_s must be a positive"),
            ("[explode]\nevery_s = 1\n", "unknown field"),
            ("[latency_spike]\nevery_s = 1\nduration_ms = 0\n", "duration_ms"),
            ("[execution_lag]\ndelay_ms = 0\n", "[execution_lag] delay_ms must be in [1, 60000]"),
            ("[execution_lag]\ndelay = 5\n", "unknown field"),
            ("[trade_lag]\ndelay_ms = 60001\n", "[trade_lag] delay_ms must be in [1, 60000]"),
            ("drop = 3", "invalid type"),
            ("[reject]\nprobability = 0.5\nret_code = 0\n", "[reject] ret_code must be a Bybit error code"),
        ] {
            let path = dir.join("bad.toml");
            std::fs::write(&path, text).unwrap();
            let err = FaultPlan::read(&path).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("bad.toml"), "{text:?} -> {err}");
        }
        assert!(FaultPlan::default().is_empty());
    }

    #[test]
    fn dice_are_seeded() {
        let draws = |seed| {
            let mut d = Dice::new(seed, 3);
            (0..50).map(|_| (d.hit(Some(0.3)), d.wait_ms(2.0), d.pick(7))).collect::<Vec<_>>()
        };
        assert_eq!(draws(1), draws(1));
        assert_ne!(draws(1), draws(2));
        assert!(!Dice::new(0, 0).hit(None));
    }
}
