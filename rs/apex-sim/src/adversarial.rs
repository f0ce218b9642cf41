//! Adversarial fitness: every GP tree trades in the DSG-populated market of every seed, all (tree, seed) runs in
//! parallel with rayon; the PnL there is the second objective of dual-fitness evolution.

use apex_gp::{GpError, Limits, Program};
use rayon::prelude::*;

use crate::SimError;
use crate::dsg::Dsg;
use crate::gp_strategy::{GpStrategy, sim_feature_names};
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
}

/// Runs every tree (GP JSON documents) as the strategy in the market of `dsg` for every seed, on `template`
/// (instrument, horizon, bar length, capital; its seed is replaced, market tables are not recorded). Results do not
/// depend on the number of threads.
///
/// # Errors
/// `Gp(InTree { index, .. })` for the first tree (by index) that does not load or uses a feature outside
/// [`sim_feature_names`] (named in the message); `Config`/`Features` for an invalid template.
pub fn adversarial_fitness<S: AsRef<str> + Sync>(
    trees: &[S],
    dsg: &Dsg,
    seeds: &[u64],
    template: &SimConfig,
    limits: &Limits,
) -> Result<AdversarialFitness, SimError> {
    let names = sim_feature_names(template.bar_s);
    let programs = trees
        .par_iter()
        .enumerate()
        .map(|(index, text)| {
            Program::from_json(text.as_ref(), &names, limits)
                .map_err(|e| GpError::InTree { index, source: Box::new(e) })
        })
        .collect::<Result<Vec<Program>, GpError>>()?;
    let strategies =
        programs.iter().map(|p| GpStrategy::new(p, template.bar_s)).collect::<Result<Vec<GpStrategy>, SimError>>()?;
    let mut config = template.clone();
    config.record_market = false;
    config.record_all_fills = false;
    let runs = (0..strategies.len() * seeds.len())
        .into_par_iter()
        .map(|job| {
            let mut strategy = strategies[job / seeds.len()].clone();
            let mut config = config.clone();
            config.seed = seeds[job % seeds.len()];
            let output = run(dsg, &config, Some(&mut strategy))?;
            let report = output.strategy.expect("every run has the GP strategy");
            Ok((report.pnl, report.fees, report.max_drawdown, report.n_fills as u64, report.ruined, output.truncated))
        })
        .collect::<Result<Vec<_>, SimError>>()?;
    let mut out = AdversarialFitness { trees: trees.len(), seeds: seeds.len(), ..AdversarialFitness::default() };
    for (pnl, fees, max_drawdown, trades, ruined, truncated) in runs {
        out.pnl.push(pnl);
        out.fees.push(fees);
        out.max_drawdown.push(max_drawdown);
        out.trades.push(trades);
        out.ruined.push(ruined);
        out.truncated.push(truncated);
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
    /// One signal per bar in `output.bars` that the strategy saw (all of them unless it was ruined).
    pub signals: Vec<f64>,
}

/// Runs `tree` (GP JSON) as the strategy in the market of `dsg` with `config` as given.
///
/// # Errors
/// `Gp` for a tree that does not load or uses a feature outside [`sim_feature_names`]; `Config`/`Features` for an
/// invalid configuration.
pub fn gp_run(tree: &str, dsg: &Dsg, config: &SimConfig, limits: &Limits) -> Result<GpRun, SimError> {
    let mut strategy = GpStrategy::from_json(tree, config.bar_s, limits)?;
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
        let fit = adversarial_fitness(&trees, &dsg, &seeds, &config, &Limits::default()).unwrap();
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
        let again = adversarial_fitness(&trees[2..], &dsg, &seeds, &config, &Limits::default()).unwrap();
        assert_eq!(again.pnl, fit.pnl[4..], "same seed, same result, whatever else is in the batch");
    }

    #[test]
    fn a_bad_tree_is_named_by_index_and_feature() {
        let trees = [tree(r#"{"const":0.0}"#, ""), tree(r#"{"feature":"ofi_l1_sum"}"#, r#""ofi_l1_sum""#)];
        let err = adversarial_fitness(&trees, &Dsg::default(), &[1], &template(), &Limits::default()).unwrap_err();
        assert!(matches!(&err, SimError::Gp(GpError::InTree { index: 1, .. })), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with("trees[1]") && message.contains("ofi_l1_sum"), "{message}");
    }
}
