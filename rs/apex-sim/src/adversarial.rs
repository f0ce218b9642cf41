//! Adversarial fitness: every GP tree trades in the DSG-populated market of every seed, all (tree, seed) runs in
//! parallel with rayon; the PnL there is the second objective of dual-fitness evolution.

use apex_gp::{GpError, Limits, Program};
use rayon::prelude::*;

use crate::SimError;
use crate::dsg::Dsg;
use crate::gp_strategy::{
    FeatureOptions, FeatureRecorder, GpStrategy, needed, sim_feature_names, used_only, uses_book,
};
use crate::market::{SimConfig, SimOutput, run};

/// Per (tree, seed) results, row-major `trees x seeds`, plus the mean PnL of each tree over the seeds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdversarialFitness {
    pub trees: usize,
    pub seeds: usize,
    /// Mean of `pnl` over the seeds, one per tree (the fitness).
    pub mean_pnl: Vec<f64>,
    /// Final equity minus capital, in quote units.
    pub pnl: Vec<f64>,
    pub fees: Vec<f64>,
    /// Largest peak-to-trough equity loss as a fraction of the peak.
    pub max_drawdown: Vec<f64>,
    /// The strategy's fills.
    pub trades: Vec<u64>,
    /// Equity reached zero (the strategy stopped trading).
    pub ruined: Vec<bool>,
    /// The run hit `max_events` and stopped early.
    pub truncated: Vec<bool>,
    /// The pair ran in the simulator (false: the tree was flat on the seed's market, its result is the flat run's).
    pub simulated: Vec<bool>,
}

/// What one (tree, seed) pair contributes.
#[derive(Debug, Clone)]
struct RunSummary {
    pnl: f64,
    fees: f64,
    max_drawdown: f64,
    trades: u64,
    ruined: bool,
    truncated: bool,
    simulated: bool,
}

/// Runs every tree (GP JSON documents) as the strategy in the market of `dsg` for every seed, on `template`
/// (instrument, horizon, bar length, capital; its seed is replaced, market tables are not recorded), the trees'
/// features made with `options`. Results do not depend on the number of threads.
///
/// A tree whose signal is exactly 0 on every bar of a seed's market run with a flat strategy is not simulated for
/// that seed: it would send no order, so the market, its feature rows and its zero signals would be the same, and
/// its result is the flat run's (exactly PnL 0). Only the other (tree, seed) pairs run the simulator (`simulated`).
///
/// # Errors
/// `Gp(InTree { index, .. })` for the first tree (by index) that does not load or uses a feature outside
/// [`sim_feature_names`] (named in the message); `Config`/`Features` for an invalid template.
pub fn adversarial_fitness<S: AsRef<str> + Sync>(
    trees: &[S],
    dsg: &Dsg,
    seeds: &[u64],
    template: &SimConfig,
    options: &FeatureOptions,
    limits: &Limits,
) -> Result<AdversarialFitness, SimError> {
    let names = sim_feature_names(template.bar_s, options);
    let programs = trees
        .par_iter()
        .enumerate()
        .map(|(index, text)| {
            Program::from_json(text.as_ref(), &names, limits)
                .map_err(|e| GpError::InTree { index, source: Box::new(e) })
        })
        .collect::<Result<Vec<Program>, GpError>>()?;
    let strategies = programs
        .iter()
        .map(|p| GpStrategy::new(p, template, options))
        .collect::<Result<Vec<GpStrategy>, SimError>>()?;
    // The flat runs record what any tree reads: the book and VMD only if a tree needs them (both cost time); the
    // trees are evaluated on those columns.
    let used: Vec<String> = programs.iter().flat_map(|p| used_only(p).inputs().to_vec()).collect();
    let (recorded, book) = (needed(&used, options), uses_book(&used));
    let recorded_names = FeatureRecorder::new(template, &recorded, book)?.names().to_vec();
    let programs: Vec<Program> = programs
        .iter()
        .map(|p| Program::compile(p.tree(), &recorded_names).expect("the recorder has every feature a tree uses"))
        .collect();
    let mut config = template.clone();
    config.record_market = false;
    config.record_all_fills = false;
    let config_for = |seed: u64| {
        let mut config = config.clone();
        config.seed = seed;
        config
    };
    let flat_runs = seeds
        .par_iter()
        .map(|&seed| {
            let mut recorder = FeatureRecorder::new(template, &recorded, book)?;
            let output = run(dsg, &config_for(seed), Some(&mut recorder))?;
            let report = output.strategy.expect("the flat run has a strategy");
            let summary = RunSummary {
                pnl: report.pnl,
                fees: report.fees,
                max_drawdown: report.max_drawdown,
                trades: report.n_fills as u64,
                ruined: report.ruined,
                truncated: output.truncated,
                simulated: false,
            };
            Ok((summary, recorder))
        })
        .collect::<Result<Vec<_>, SimError>>()?;
    let runs = (0..strategies.len() * seeds.len())
        .into_par_iter()
        .map(|job| {
            let (tree, seed) = (job / seeds.len(), job % seeds.len());
            let (flat, recorder) = &flat_runs[seed];
            let columns: Vec<&[f64]> = recorder.columns();
            if apex_gp::batch::evaluate(&programs[tree], &columns)?.iter().all(|&s| s == 0.0) {
                return Ok(flat.clone());
            }
            let mut strategy = strategies[tree].clone();
            let output = run(dsg, &config_for(seeds[seed]), Some(&mut strategy))?;
            let report = output.strategy.expect("every run has the GP strategy");
            Ok(RunSummary {
                pnl: report.pnl,
                fees: report.fees,
                max_drawdown: report.max_drawdown,
                trades: report.n_fills as u64,
                ruined: report.ruined,
                truncated: output.truncated,
                simulated: true,
            })
        })
        .collect::<Result<Vec<RunSummary>, SimError>>()?;
    let mut out = AdversarialFitness { trees: trees.len(), seeds: seeds.len(), ..AdversarialFitness::default() };
    for r in runs {
        out.pnl.push(r.pnl);
        out.fees.push(r.fees);
        out.max_drawdown.push(r.max_drawdown);
        out.trades.push(r.trades);
        out.ruined.push(r.ruined);
        out.truncated.push(r.truncated);
        out.simulated.push(r.simulated);
    }
    out.mean_pnl = if seeds.is_empty() {
        vec![f64::NAN; trees.len()]
    } else {
        out.pnl.chunks(seeds.len()).map(|pnl| pnl.iter().sum::<f64>() / pnl.len() as f64).collect()
    };
    Ok(out)
}

/// One simulation of one tree, with the signal of every bar the tree saw (inspection and parity checks).
#[derive(Debug, Clone, PartialEq)]
pub struct GpRun {
    pub output: SimOutput,
    /// One signal per feature row the strategy saw: one per bar from the bar of the market's first trade.
    pub signals: Vec<f64>,
}

/// Runs `tree` (GP JSON) as the strategy in the market of `dsg` with `config` as given, its features made with
/// `options`.
///
/// # Errors
/// `Gp` for a tree that does not load or uses a feature outside [`sim_feature_names`]; `Config`/`Features` for an
/// invalid configuration.
pub fn gp_run(
    tree: &str,
    dsg: &Dsg,
    config: &SimConfig,
    options: &FeatureOptions,
    limits: &Limits,
) -> Result<GpRun, SimError> {
    let mut strategy = GpStrategy::from_json(tree, config, options, limits)?;
    let output = run(dsg, config, Some(&mut strategy))?;
    Ok(GpRun { output, signals: strategy.signals().to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::preset;
    use crate::strategy::{AlwaysFlat, BuyAndHold};

    fn tree(root: &str, features: &str) -> String {
        format!(r#"{{"schema":"apex.gp_tree","version":1,"features":[{features}],"root":{root}}}"#)
    }

    fn template() -> SimConfig {
        let (spec, start) = preset("SOLUSDT").unwrap();
        let mut config = SimConfig::new(spec, start, 0);
        config.horizon_s = 600.0;
        config
    }

    #[test]
    fn constant_trees_equal_the_reference_strategies() {
        let config = template();
        let dsg = Dsg::default();
        let trees = [
            tree(r#"{"const":0.0}"#, ""),
            tree(r#"{"const":1.0}"#, ""),
            tree(r#"{"op":"sign","args":[{"feature":"clv"}]}"#, r#""clv""#),
        ];
        let seeds = [3, 4];
        let fit =
            adversarial_fitness(&trees, &dsg, &seeds, &config, &FeatureOptions::default(), &Limits::default()).unwrap();
        assert_eq!((fit.trees, fit.seeds, fit.pnl.len(), fit.mean_pnl.len()), (3, 2, 6, 3));
        assert_eq!(&fit.pnl[..2], &[0.0, 0.0], "a flat tree never trades");
        assert_eq!(&fit.trades[..2], &[0, 0]);
        for (s, &seed) in seeds.iter().enumerate() {
            let mut c = config.clone();
            c.seed = seed;
            c.record_market = false;
            let hold = run(&dsg, &c, Some(&mut BuyAndHold)).unwrap().strategy.unwrap();
            assert_eq!(fit.pnl[2 + s].to_bits(), hold.pnl.to_bits(), "const 1 is buy and hold");
            assert_eq!(fit.trades[2 + s], hold.n_fills as u64);
            let flat = run(&dsg, &c, Some(&mut AlwaysFlat)).unwrap().strategy.unwrap();
            assert_eq!(flat.pnl, fit.pnl[s]);
        }
        assert_eq!(fit.mean_pnl[1], (fit.pnl[2] + fit.pnl[3]) / 2.0);
        assert!(fit.trades[4] > 0, "the clv tree trades");
        let again =
            adversarial_fitness(&trees[2..], &dsg, &seeds, &config, &FeatureOptions::default(), &Limits::default())
                .unwrap();
        assert_eq!(again.pnl, fit.pnl[4..], "same seed, same result, whatever else is in the batch");
    }

    #[test]
    fn trees_flat_on_the_market_are_not_simulated_and_match_a_full_run() {
        let config = template();
        let dsg = Dsg::default();
        // rv_1h is NaN for 31 hours, so this tree is flat in a 10-minute market; the clv tree is not.
        let trees = [
            tree(r#"{"op":"sign","args":[{"feature":"rv_1h"}]}"#, r#""rv_1h""#),
            tree(r#"{"op":"sign","args":[{"feature":"clv"}]}"#, r#""clv""#),
        ];
        let fit =
            adversarial_fitness(&trees, &dsg, &[8], &config, &FeatureOptions::default(), &Limits::default()).unwrap();
        assert_eq!(fit.simulated, [false, true]);
        let mut c = config.clone();
        c.seed = 8;
        c.record_market = false;
        for (t, text) in trees.iter().enumerate() {
            let full = gp_run(text, &dsg, &c, &FeatureOptions::default(), &Limits::default())
                .unwrap()
                .output
                .strategy
                .unwrap();
            assert_eq!(fit.pnl[t].to_bits(), full.pnl.to_bits());
            assert_eq!(fit.max_drawdown[t].to_bits(), full.max_drawdown.to_bits());
            assert_eq!(fit.trades[t], full.n_fills as u64);
        }
    }

    #[test]
    fn a_bad_tree_is_named_by_index_and_feature() {
        let trees = [tree(r#"{"const":0.0}"#, ""), tree(r#"{"feature":"tfi_1s"}"#, r#""tfi_1s""#)];
        let err = adversarial_fitness(
            &trees,
            &Dsg::default(),
            &[1],
            &template(),
            &FeatureOptions::default(),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(matches!(&err, SimError::Gp(GpError::InTree { index: 1, .. })), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with("trees[1]") && message.contains("tfi_1s"), "{message}");
    }
}
