//! Many simulations at once: (DSG, seed, strategy) jobs run in parallel with rayon, summarized per job.

use apex_core::Bounds;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dsg::Dsg;
use crate::market::{SimConfig, run};
use crate::strategy;
use crate::{InstrumentSpec, SimError};

/// One job of a batch.
#[derive(Debug, Clone)]
pub struct Job {
    pub dsg: Dsg,
    pub seed: u64,
    /// A built-in strategy name (see [`strategy::builtin`]); `None` runs the market alone.
    pub strategy: Option<String>,
}

/// The per-job result of a batch (the strategy fields are NaN/false/0 for a job without a strategy).
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    pub pnl: f64,
    pub fees: f64,
    pub max_drawdown: f64,
    /// Seconds to reach the target equity, NaN when never reached.
    pub time_to_target_s: f64,
    pub ruined: bool,
    pub n_fills: usize,
    pub events: u64,
    pub trades: usize,
    pub truncated: bool,
}

/// The instruments the simulator has presets for: (symbol, Bybit linear tick size, qty step, start price). The one
/// list the venue, the Python bindings (`_core.sim_presets()`) and every CLI check read.
pub const PRESETS: [(&str, &str, &str, f64); 3] =
    [("BTCUSDT", "0.10", "0.001", 108_000.0), ("ETHUSDT", "0.01", "0.01", 4_300.0), ("SOLUSDT", "0.010", "0.1", 200.0)];

/// The preset symbols, comma-separated (for error messages).
#[must_use]
pub fn preset_names() -> String {
    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
}

/// The instrument preset of `symbol` and its start price.
///
/// # Errors
/// `SimError::Config` for a symbol without a preset (the message lists the presets).
pub fn preset(symbol: &str) -> Result<(InstrumentSpec, f64), SimError> {
    let Some(&(_, tick, lot, start)) = PRESETS.iter().find(|p| p.0 == symbol) else {
        return Err(SimError::Config(format!("no instrument preset for {symbol}; known: {}", preset_names())));
    };
    Ok((InstrumentSpec::bybit_linear(symbol, tick, lot, lot)?, start))
}

/// The default configuration of a run of `symbol`'s preset with `seed` (see [`SimConfig::new`]).
///
/// # Errors
/// As [`preset`].
pub fn preset_config(symbol: &str, seed: u64) -> Result<SimConfig, SimError> {
    let (spec, start) = preset(symbol)?;
    Ok(SimConfig::new(spec, start, seed))
}

apex_core::param_table! {
    /// What a binding or a CLI sets of a run: [`preset_config`] with these fields replaced. The one definition of
    /// their defaults and bounds: [`SimConfig::new`] starts from them, `_core.param_table("sim_run")` hands the table
    /// to Python (whose `--hours` and `--capital` checks read it), and `apexctl/schemas/sim_run.schema.json` is
    /// generated from it.
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct RunOptions {
        hours: f64 = 1.0, Bounds::open_closed(0.0, 168.0),
            "Simulated hours of the run (up to a week).";
        book_depth: usize = crate::market::DEFAULT_BOOK_DEPTH, Bounds::closed(1.0, 1000.0),
            "Levels per side of the published order-book stream (Bybit's level-50 stream by default).";
        book_cadence_ms: i64 = crate::market::DEFAULT_BOOK_CADENCE_MS, Bounds::closed(1.0, 3_600_000.0),
            "Milliseconds between two order-book snapshots (Bybit's level-50 push interval by default).";
        bar_seconds: i64 = 60, Bounds::closed(1.0, 86_400.0),
            "Bar length of the bars table and of the strategy's decisions, seconds.";
        capital: f64 = 200.0, Bounds::open_closed(0.0, 1e9),
            "The strategy's starting capital, quote currency (USDT).";
        max_events: u64 = 200_000_000, Bounds::closed(1.0, 1e12),
            "Hard cap on processed events: a run that reaches it stops early and says so.";
        seed: u64 = 0, Bounds::at_least(0.0),
            "Seed of the run's random generators (the same seed gives the same market).";
    }
}

impl RunOptions {
    /// The defaults with `seed` and `hours` (what a batch, whose market tables are not recorded, uses).
    #[must_use]
    pub fn new(seed: u64, hours: f64) -> RunOptions {
        RunOptions { seed, hours, ..RunOptions::default() }
    }

    /// Checks every field against its bounds.
    ///
    /// # Errors
    /// `SimError::Config` naming the first field out of range.
    pub fn validate(&self) -> Result<(), SimError> {
        match self.out_of_bounds() {
            Some((name, value, why)) => Err(SimError::Config(format!("{name} {why}, got {value}"))),
            None => Ok(()),
        }
    }

    /// The JSON Schema of the options object, as committed in `apexctl/schemas/sim_run.schema.json`.
    #[must_use]
    pub fn json_schema() -> serde_json::Value {
        apex_core::params::json_schema(
            "https://apexctl.dev/schemas/sim_run.schema.json",
            "Simulator run options",
            "What a run of an instrument preset sets besides the DSG (apex-sim RunOptions); absent keys keep their \
             defaults.",
            Self::PARAMS,
        )
    }
}

/// The configuration of a run of `symbol`'s preset with `options`.
///
/// # Errors
/// As [`preset`], and `SimError::Config` for options out of their bounds.
pub fn config_for(symbol: &str, options: &RunOptions) -> Result<SimConfig, SimError> {
    options.validate()?;
    let mut config = preset_config(symbol, options.seed)?;
    config.horizon_s = options.hours * 3600.0;
    config.book_depth = options.book_depth;
    config.book_cadence_ms = options.book_cadence_ms;
    config.bar_s = options.bar_seconds;
    config.capital = options.capital;
    config.max_events = options.max_events;
    Ok(config)
}

/// Runs every job on `template` (instrument, horizon, cadences; its seed is replaced by the job's) in parallel.
/// Market tables are not recorded, only the summaries. Results are in job order and do not depend on the number of
/// threads.
///
/// # Errors
/// The first job error in job order (an unknown strategy name, an invalid configuration).
pub fn run_batch(template: &SimConfig, jobs: &[Job]) -> Result<Vec<JobSummary>, SimError> {
    jobs.par_iter()
        .map(|job| {
            let mut config = template.clone();
            config.seed = job.seed;
            config.record_market = false;
            config.record_all_fills = false;
            let mut chosen: Option<Box<dyn strategy::Strategy>> = match &job.strategy {
                None => None,
                Some(name) => Some(strategy::parse(name)?),
            };
            let out = match chosen.as_mut() {
                Some(strategy) => run(&job.dsg, &config, Some(strategy.as_mut()))?,
                None => run(&job.dsg, &config, None)?,
            };
            let report = out.strategy.as_ref();
            Ok(JobSummary {
                pnl: report.map_or(f64::NAN, |r| r.pnl),
                fees: report.map_or(f64::NAN, |r| r.fees),
                max_drawdown: report.map_or(f64::NAN, |r| r.max_drawdown),
                time_to_target_s: report.and_then(|r| r.time_to_target_s).unwrap_or(f64::NAN),
                ruined: report.is_some_and(|r| r.ruined),
                n_fills: report.map_or(0, |r| r.n_fills),
                events: out.events,
                trades: out.trade_count,
                truncated: out.truncated,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_equals_single_runs_in_job_order() {
        let (spec, start) = preset("SOLUSDT").unwrap();
        let mut template = SimConfig::new(spec, start, 0);
        template.horizon_s = 300.0;
        let jobs: Vec<Job> =
            (0..4).map(|i| Job { dsg: Dsg::default(), seed: i, strategy: Some("buy_and_hold".to_owned()) }).collect();
        let batch = run_batch(&template, &jobs).unwrap();
        for (job, summary) in jobs.iter().zip(&batch) {
            let single = run_batch(&template, std::slice::from_ref(job)).unwrap();
            // Debug text compares NaN fields (no target reached) as equal, bit for bit on the rest.
            assert_eq!(format!("{:?}", single[0]), format!("{summary:?}"));
        }
        assert_ne!(format!("{:?}", batch[0]), format!("{:?}", batch[1]), "different seeds give different markets");
        let bad = [Job { dsg: Dsg::default(), seed: 1, strategy: Some("nope".to_owned()) }];
        assert!(matches!(run_batch(&template, &bad), Err(SimError::Config(_))));
    }

    #[test]
    fn committed_schema_is_generated_from_the_table() {
        apex_core::params::assert_schema_committed("sim_run", &RunOptions::json_schema());
    }

    #[test]
    fn options_out_of_bounds_are_refused_by_name() {
        assert!(RunOptions::default().validate().is_ok());
        for (options, name) in [
            (RunOptions::new(0, 0.0), "hours"),
            (RunOptions::new(0, 169.0), "hours"),
            (RunOptions { book_depth: 0, ..RunOptions::default() }, "book_depth"),
            (RunOptions { capital: f64::NAN, ..RunOptions::default() }, "capital"),
            (RunOptions { bar_seconds: 0, ..RunOptions::default() }, "bar_seconds"),
        ] {
            let Err(SimError::Config(message)) = config_for("BTCUSDT", &options) else { panic!("{name} accepted") };
            assert!(message.starts_with(name), "{message}");
        }
    }
}
