//! Adversarial fitness: every GP tree trades in the DSG-populated market of every seed, all (tree, seed) runs in
//! parallel with rayon; the PnL there is the second objective of dual-fitness evolution.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use apex_gp::{Limits, Program, StreamingEvaluator};
use rayon::prelude::*;

use crate::dsg::Dsg;
use crate::gp_strategy::{
    FeatureOptions, FeatureRecorder, GpStrategy, SimFeatures, feature_key, needed, sim_feature_names, used_only,
    uses_book,
};
use crate::market::{DecisionRecord, ExternalRequest, Market, SimConfig, SimOutput, run};
use crate::strategy::{Context, Feed, PublicTrade, Strategy};
use crate::{EngineBook, L2Update, SimError};

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
    /// Per seed: the markets simulated past the flat run (forks, each shared by the trees that sent the same
    /// requests; the independent evaluation runs one per simulated pair).
    pub markets: Vec<u64>,
}

/// How [`adversarial_fitness`] runs the markets; both give the same results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markets {
    /// Trees share a seed's market for as long as they send the same requests (the fast path).
    Shared,
    /// Every (tree, seed) pair that trades runs in a market of its own from time 0: the evaluation before markets
    /// were shared, kept as the reference the shared one is checked and benchmarked against.
    Independent,
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
/// features made with `options`. Results do not depend on the number of threads, and each pair's equals a run of
/// its own ([`gp_run`]) bit for bit.
///
/// With [`Markets::Shared`]: a strategy moves the market only through the requests its slot sends, so trees that
/// send the same requests share one market: each seed's market runs once with a flat scout that follows every tree's signal on the shared feature
/// rows (one feature engine per distinct need of book and VMD columns) and asks the slot's rule what each tree's
/// signal would send at every bar. The trees whose requests differ from the scout's (an entry) leave it, grouped by
/// the requests they send, each group on a fork (clone) of the market taken just before that decision, where its
/// first tree's signal trades and the others follow; a group splits the same way at every later bar, recursively.
/// So only the bars after a tree's first entry are simulated (`simulated`), once per distinct sequence of requests
/// rather than once per tree. A tree whose rule never enters on a seed's market (its signal stays below the entry
/// threshold, or its size rounds to no order) gets the flat run's result (exactly PnL 0).
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
    markets: Markets,
) -> Result<AdversarialFitness, SimError> {
    let programs = load(trees, template, options, limits)?;
    let config = fitness_config(template);
    let batch = Shared { dsg, config: &config, options, programs: &programs };
    match markets {
        Markets::Shared => shared_markets(&batch, seeds),
        Markets::Independent => independent_markets(&batch, seeds),
    }
}

/// [`Markets::Shared`] (see [`adversarial_fitness`]).
fn shared_markets(shared: &Shared<'_>, seeds: &[u64]) -> Result<AdversarialFitness, SimError> {
    let programs = shared.programs;
    let results: Mutex<Vec<Option<Result<RunSummary, SimError>>>> =
        Mutex::new(vec![None; programs.len() * seeds.len()]);
    let store = |index: usize, result: Result<RunSummary, SimError>| {
        results.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[index] = Some(result);
    };
    let columns: Vec<Column<_>> = (0..seeds.len())
        .map(|index| Column { shared, index, seeds: seeds.len(), store: &store, markets: AtomicU64::new(0) })
        .collect();
    rayon::scope(|scope| {
        for (column, &seed) in columns.iter().zip(seeds) {
            scope.spawn(move |scope| {
                let split = |snapshot: Arc<Snapshot>, class: Vec<usize>| column.spawn(scope, snapshot, class);
                match shared.flat_market(seed) {
                    Ok((market, scout)) => {
                        let (flat, trees) = shared.run_group(market, scout, false, split);
                        trees.into_iter().for_each(|tree| column.fill(tree, Ok(flat.clone())));
                    }
                    Err(error) => (0..shared.programs.len()).for_each(|tree| column.fill(tree, Err(error.clone()))),
                }
            });
        }
    });
    let markets = columns.iter().map(|c| c.markets.load(Ordering::Relaxed)).collect();
    drop(columns);
    let runs = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|r| r.expect("every (tree, seed) pair is filled"))
        .collect::<Result<Vec<RunSummary>, SimError>>()?;
    let mut fitness = assemble(programs.len(), seeds.len(), runs);
    fitness.markets = markets;
    Ok(fitness)
}

/// [`Markets::Independent`]: each seed's market once with a flat feature recorder, every tree batch-evaluated on the
/// recorded rows, and every (tree, seed) pair whose signal is not 0 on every row run in a market of its own.
fn independent_markets(batch: &Shared<'_>, seeds: &[u64]) -> Result<AdversarialFitness, SimError> {
    let Shared { dsg, config, options, programs } = *batch;
    let config_for = |seed: u64| SimConfig { seed, ..config.clone() };
    let used: Vec<String> = programs.iter().flat_map(|p| p.inputs().to_vec()).collect();
    let (recorded, book) = (needed(&used, options), uses_book(&used));
    let recorded_names = FeatureRecorder::new(config, &recorded, book)?.names().to_vec();
    let on_recorded: Vec<Program> = programs
        .iter()
        .map(|p| Program::compile(p.tree(), &recorded_names).expect("the recorder has every feature a tree uses"))
        .collect();
    let flat_runs = seeds
        .par_iter()
        .map(|&seed| {
            let mut recorder = FeatureRecorder::new(config, &recorded, book)?;
            let output = run(dsg, &config_for(seed), Some(&mut recorder))?;
            Ok((summary(output, false), recorder))
        })
        .collect::<Result<Vec<_>, SimError>>()?;
    let runs = (0..programs.len() * seeds.len())
        .into_par_iter()
        .map(|job| {
            let (tree, seed) = (job / seeds.len(), job % seeds.len());
            let (flat, recorder) = &flat_runs[seed];
            if apex_gp::batch::evaluate(&on_recorded[tree], &recorder.columns())?.iter().all(|&s| s == 0.0) {
                return Ok(flat.clone());
            }
            let mut strategy = GpStrategy::new(&programs[tree], config, options)?;
            Ok(summary(run(dsg, &config_for(seeds[seed]), Some(&mut strategy))?, true))
        })
        .collect::<Result<Vec<RunSummary>, SimError>>()?;
    let mut fitness = assemble(programs.len(), seeds.len(), runs);
    fitness.markets = (0..seeds.len())
        .map(|seed| fitness.simulated.iter().skip(seed).step_by(seeds.len()).filter(|&&s| s).count() as u64)
        .collect();
    Ok(fitness)
}

/// Loads every tree against the simulator's features and checks its strategy can be made; each compiled against
/// only the features it reads.
fn load<S: AsRef<str> + Sync>(
    trees: &[S],
    template: &SimConfig,
    options: &FeatureOptions,
    limits: &Limits,
) -> Result<Vec<Program>, SimError> {
    let names = sim_feature_names(template.bar_s, options);
    let programs = apex_gp::batch::compile_all(trees, &names, limits)?;
    // Each tree's own strategy checks its inputs against the simulator's features (and VMD modes).
    for program in &programs {
        GpStrategy::new(program, template, options)?;
    }
    Ok(programs.iter().map(used_only).collect())
}

/// The template without market tables or other accounts' fills (only the strategy report counts).
fn fitness_config(template: &SimConfig) -> SimConfig {
    SimConfig { record_market: false, record_all_fills: false, ..template.clone() }
}

fn summary(output: SimOutput, simulated: bool) -> RunSummary {
    let report = output.strategy.expect("every fitness run has a strategy");
    RunSummary {
        pnl: report.pnl,
        fees: report.fees,
        max_drawdown: report.max_drawdown,
        trades: report.n_fills as u64,
        ruined: report.ruined,
        truncated: output.truncated,
        simulated,
    }
}

/// The per-pair results (row-major trees x seeds) as the fitness table, with each tree's mean PnL.
fn assemble(trees: usize, seeds: usize, runs: Vec<RunSummary>) -> AdversarialFitness {
    let mut out = AdversarialFitness { trees, seeds, ..AdversarialFitness::default() };
    for r in runs {
        out.pnl.push(r.pnl);
        out.fees.push(r.fees);
        out.max_drawdown.push(r.max_drawdown);
        out.trades.push(r.trades);
        out.ruined.push(r.ruined);
        out.truncated.push(r.truncated);
        out.simulated.push(r.simulated);
    }
    out.mean_pnl = if seeds == 0 {
        vec![f64::NAN; trees]
    } else {
        out.pnl.chunks(seeds).map(|pnl| pnl.iter().sum::<f64>() / pnl.len() as f64).collect()
    };
    out
}

/// What every run of one batch shares.
struct Shared<'a> {
    dsg: &'a Dsg,
    config: &'a SimConfig,
    options: &'a FeatureOptions,
    /// Each tree compiled against only the features it reads.
    programs: &'a [Program],
}

/// A market just before a bar's decision, with its scout's feature engines and rows at that instant.
struct Snapshot {
    market: Market,
    /// Per engine id: the engine and its columns up to the instant, for the engines the scout's members read.
    engines: Vec<Option<(SimFeatures, Vec<Vec<f64>>)>>,
    /// The engine id of each tree.
    engine_of: Arc<Vec<usize>>,
}

/// Where the results of one seed's trees go (row-major `trees x seeds` through `store`), and how a group split off
/// one of its markets runs (a task of the rayon scope).
struct Column<'s, S: Fn(usize, Result<RunSummary, SimError>) + Sync> {
    shared: &'s Shared<'s>,
    index: usize,
    seeds: usize,
    store: &'s S,
    /// Markets forked so far.
    markets: AtomicU64,
}

impl<'s, S: Fn(usize, Result<RunSummary, SimError>) + Sync> Column<'s, S> {
    fn fill(&self, tree: usize, result: Result<RunSummary, SimError>) {
        (self.store)(tree * self.seeds + self.index, result);
    }

    /// Runs `members` (trees that decided alike, and otherwise than their market's slot, at the snapshot's bar) on a
    /// fork of `snapshot`, as a task of `scope`.
    fn spawn<'scope>(&'scope self, scope: &rayon::Scope<'scope>, snapshot: Arc<Snapshot>, members: Vec<usize>)
    where
        's: 'scope,
    {
        self.markets.fetch_add(1, Ordering::Relaxed);
        scope.spawn(move |scope| {
            let split = |snapshot: Arc<Snapshot>, class: Vec<usize>| self.spawn(scope, snapshot, class);
            let scout = Scout::resumed(self.shared.programs, &snapshot, &members);
            let market = snapshot.market.fork("gp");
            drop(snapshot);
            let (summary, trees) = self.shared.run_group(market, scout, true, split);
            trees.into_iter().for_each(|tree| self.fill(tree, Ok(summary.clone())));
        });
    }
}

impl Shared<'_> {
    /// Runs `scout`'s market from its instant to the horizon, the market's slot trading the scout leader's signal
    /// (none: flat). At every bar the members whose rule would send other requests than the market's slot sent are
    /// handed to `split` (grouped by the requests they send, with the snapshot just before the decision) and leave
    /// the scout; returns the run's summary (`simulated` when the scout has a leader) and the trees still members at
    /// the end. A flat scout stops early once every tree has left (its summary is then unused).
    fn run_group(
        &self,
        mut market: Market,
        mut scout: Scout,
        simulated: bool,
        split: impl Fn(Arc<Snapshot>, Vec<usize>),
    ) -> (RunSummary, Vec<usize>) {
        let horizon = market.horizon_us();
        let bar_us = self.config.bar_s.saturating_mul(1_000_000);
        // The next bar close after now (a snapshot is taken 1 µs before one).
        let mut close = (market.now_us() / bar_us).saturating_add(1).saturating_mul(bar_us);
        while close <= horizon && scout.others() > 0 {
            // The state just before the decision: a tree that decides otherwise there runs from this instant on.
            market.advance_until(close - 1, Some(&mut scout));
            let before = (market.clone(), scout.engines());
            let running = market.advance_until(close, Some(&mut scout));
            let classes = market.last_decision().filter(|d| d.ts_us == close).map(|d| scout.split(d));
            if let Some(classes) = classes.filter(|c| !c.is_empty()) {
                let (market, engines) = before;
                let snapshot = Arc::new(Snapshot { market, engines, engine_of: Arc::clone(&scout.engine_of) });
                for class in classes {
                    split(Arc::clone(&snapshot), class);
                }
            }
            if !running {
                break;
            }
            close = close.saturating_add(bar_us);
        }
        let members = scout.members();
        if !members.is_empty() {
            market.advance_until(horizon, Some(&mut scout));
        }
        (summary(market.finish(), simulated), members)
    }

    /// Seed `seed`'s market at its start with a flat scout following every tree.
    fn flat_market(&self, seed: u64) -> Result<(Market, Scout), SimError> {
        let config = SimConfig { seed, ..self.config.clone() };
        let scout = Scout::new(self.programs, &config, self.options)?;
        let mut market = Market::new(self.dsg, &config)?;
        market.start(Some(scout.name()));
        Ok((market, scout))
    }
}

/// A strategy that follows many trees on one market: one feature engine per distinct [`feature_key`] a member reads
/// (the engine each tree's own strategy would run), whose rows feed the streaming evaluator of every member. The
/// market's slot trades the leader's signal (none: flat); every member has sent the same requests as the slot so
/// far, so the market is the one each member's own run would have made.
struct Scout {
    /// Per engine id (the same ids in every scout of a batch): the engine, if a member reads it.
    recordings: Vec<Option<Recording>>,
    followers: Vec<Follower>,
    engine_of: Arc<Vec<usize>>,
    /// The follower whose signal the slot trades.
    leader: Option<usize>,
    feed: Feed,
}

/// One feature engine, the rows it emitted so far, and the followers reading it.
struct Recording {
    features: SimFeatures,
    columns: Vec<Vec<f64>>,
    followers: Vec<usize>,
}

/// One tree's evaluation while it is a member.
struct Follower {
    tree: usize,
    engine: usize,
    evaluator: StreamingEvaluator,
    /// For each program input, its index in the engine's row.
    select: Vec<usize>,
    input: Vec<f64>,
    /// The newest signal (what the tree's strategy would answer now, unless its features failed).
    signal: f64,
    following: bool,
}

impl Follower {
    fn new(tree: usize, engine: usize, program: &Program, names: &[String]) -> Follower {
        let select = program
            .inputs()
            .iter()
            .map(|input| names.iter().position(|n| n == input).expect("the engine has the tree's inputs"))
            .collect::<Vec<usize>>();
        Follower {
            tree,
            engine,
            evaluator: StreamingEvaluator::new(program),
            input: vec![0.0; select.len()],
            select,
            signal: 0.0,
            following: true,
        }
    }

    fn push(&mut self, row: &[f64]) {
        for (value, &index) in self.input.iter_mut().zip(self.select.iter()) {
            *value = row[index];
        }
        self.signal = self.evaluator.push(&self.input);
    }
}

impl Scout {
    /// A flat scout following every tree from the market's start.
    fn new(programs: &[Program], config: &SimConfig, options: &FeatureOptions) -> Result<Scout, SimError> {
        let mut keys: Vec<(bool, bool)> = Vec::new();
        let mut recordings: Vec<Option<Recording>> = Vec::new();
        let mut engine_of = Vec::with_capacity(programs.len());
        let mut followers = Vec::with_capacity(programs.len());
        for (tree, program) in programs.iter().enumerate() {
            let key = feature_key(program.inputs(), options);
            let engine = match keys.iter().position(|&k| k == key) {
                Some(engine) => engine,
                None => {
                    let features = SimFeatures::new(config, &needed(program.inputs(), options), key.0)?;
                    let columns = vec![Vec::new(); features.names().len()];
                    recordings.push(Some(Recording { features, columns, followers: Vec::new() }));
                    keys.push(key);
                    keys.len() - 1
                }
            };
            let recording = recordings[engine].as_mut().expect("made above");
            recording.followers.push(tree);
            followers.push(Follower::new(tree, engine, program, recording.features.names()));
            engine_of.push(engine);
        }
        let feed = if keys.iter().any(|k| k.0) { Feed::TradesAndBook } else { Feed::Trades };
        Ok(Scout { recordings, followers, engine_of: Arc::new(engine_of), leader: None, feed })
    }

    /// A scout of `members` (tree ids) led by the first, as their strategies would be at `snapshot`'s instant: the
    /// snapshot's engines, each member's evaluator replayed over the rows so far.
    fn resumed(programs: &[Program], snapshot: &Snapshot, members: &[usize]) -> Scout {
        let mut recordings: Vec<Option<Recording>> = snapshot.engines.iter().map(|_| None).collect();
        let mut followers = Vec::with_capacity(members.len());
        for &tree in members {
            let engine = snapshot.engine_of[tree];
            let (features, columns) = snapshot.engines[engine].as_ref().expect("a member's engine is in its snapshot");
            let recording = recordings[engine].get_or_insert_with(|| Recording {
                features: features.clone(),
                columns: columns.clone(),
                followers: Vec::new(),
            });
            let mut follower = Follower::new(tree, engine, &programs[tree], features.names());
            let mut row = vec![0.0; columns.len()];
            for at in 0..columns.first().map_or(0, Vec::len) {
                for (value, column) in row.iter_mut().zip(columns) {
                    *value = column[at];
                }
                follower.push(&row);
            }
            recording.followers.push(followers.len());
            followers.push(follower);
        }
        let book = recordings.iter().flatten().any(|r| r.features.feed() == Feed::TradesAndBook);
        let feed = if book { Feed::TradesAndBook } else { Feed::Trades };
        Scout { recordings, followers, engine_of: Arc::clone(&snapshot.engine_of), leader: Some(0), feed }
    }

    /// What follower `index`'s strategy answers now: its newest signal, 0 once its features failed.
    fn signal(&self, index: usize) -> f64 {
        let follower = &self.followers[index];
        let failed = self.recordings[follower.engine].as_ref().is_some_and(|r| r.features.error().is_some());
        if failed { 0.0 } else { follower.signal }
    }

    /// How many members besides the leader.
    fn others(&self) -> usize {
        self.followers.iter().enumerate().filter(|&(i, f)| f.following && Some(i) != self.leader).count()
    }

    /// The trees still members.
    fn members(&self) -> Vec<usize> {
        self.followers.iter().filter(|f| f.following).map(|f| f.tree).collect()
    }

    /// The members whose rule would have sent other requests than the slot did at `decision`, grouped by those
    /// requests (tree ids, in follower order); they leave the scout.
    fn split(&mut self, decision: &DecisionRecord) -> Vec<Vec<usize>> {
        let mut classes: Vec<(Vec<ExternalRequest>, Vec<usize>)> = Vec::new();
        for index in 0..self.followers.len() {
            let signal = self.signal(index);
            // The same signal sends the same requests (bit for bit, so a NaN is asked about).
            if !self.followers[index].following || signal.to_bits() == decision.signal.to_bits() {
                continue;
            }
            let requests = decision.requests_for(signal);
            if requests == decision.requests {
                continue;
            }
            let follower = &mut self.followers[index];
            follower.following = false;
            match classes.iter_mut().find(|(r, _)| *r == requests) {
                Some((_, trees)) => trees.push(follower.tree),
                None => classes.push((requests, vec![follower.tree])),
            }
        }
        classes.into_iter().map(|(_, trees)| trees).collect()
    }

    /// Every engine as it is now, with its rows so far.
    fn engines(&self) -> Vec<Option<(SimFeatures, Vec<Vec<f64>>)>> {
        self.recordings.iter().map(|r| r.as_ref().map(|r| (r.features.clone(), r.columns.clone()))).collect()
    }

    fn sink<'a>(
        columns: &'a mut [Vec<f64>],
        members: &'a [usize],
        followers: &'a mut [Follower],
    ) -> impl FnMut(i64, &[f64]) + 'a {
        move |_, row| {
            for (column, &value) in columns.iter_mut().zip(row) {
                column.push(value);
            }
            for &index in members {
                let follower = &mut followers[index];
                if follower.following {
                    follower.push(row);
                }
            }
        }
    }
}

impl Strategy for Scout {
    fn name(&self) -> String {
        "flat_scout".to_owned()
    }

    fn feed(&self) -> Feed {
        self.feed
    }

    fn on_trade(&mut self, trade: &PublicTrade) {
        for Recording { features, columns, followers } in self.recordings.iter_mut().flatten() {
            features.on_trade(trade, Self::sink(columns, followers, &mut self.followers));
        }
    }

    fn on_book(&mut self, update: &L2Update) {
        for Recording { features, columns, followers } in self.recordings.iter_mut().flatten() {
            if features.feed() == Feed::TradesAndBook {
                features.on_book(update, Self::sink(columns, followers, &mut self.followers));
            }
        }
    }

    fn on_engine_book(&mut self, book: &EngineBook<'_>) {
        for Recording { features, columns, followers } in self.recordings.iter_mut().flatten() {
            if features.feed() == Feed::TradesAndBook {
                features.on_engine_book(book, Self::sink(columns, followers, &mut self.followers));
            }
        }
    }

    fn target(&mut self, ctx: &Context<'_>) -> f64 {
        for Recording { features, columns, followers } in self.recordings.iter_mut().flatten() {
            features.on_decision(ctx, Self::sink(columns, followers, &mut self.followers));
        }
        self.leader.map_or(0.0, |leader| self.signal(leader))
    }
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
    use apex_gp::GpError;

    fn tree(root: &str, features: &str) -> String {
        format!(r#"{{"schema":"apex.gp_tree","version":1,"features":[{features}],"root":{root}}}"#)
    }

    /// Shared markets with the default features and limits.
    fn shared_default(trees: &[String], dsg: &Dsg, seeds: &[u64], config: &SimConfig) -> AdversarialFitness {
        adversarial_fitness(trees, dsg, seeds, config, &FeatureOptions::default(), &Limits::default(), Markets::Shared)
            .unwrap()
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
        let fit = shared_default(&trees, &dsg, &seeds, &config);
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
        let again = shared_default(&trees[2..], &dsg, &seeds, &config);
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
        let fit = shared_default(&trees, &dsg, &[8], &config);
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

    /// Every field but `simulated` (which says how a pair was computed), bit for bit.
    fn same_results(a: &AdversarialFitness, b: &AdversarialFitness) {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(&a.pnl), bits(&b.pnl));
        assert_eq!(bits(&a.fees), bits(&b.fees));
        assert_eq!(bits(&a.max_drawdown), bits(&b.max_drawdown));
        assert_eq!(bits(&a.mean_pnl), bits(&b.mean_pnl));
        assert_eq!((&a.trades, &a.ruined, &a.truncated), (&b.trades, &b.ruined, &b.truncated));
    }

    #[test]
    fn forked_markets_equal_runs_of_their_own_bit_for_bit() {
        let mut config = template();
        config.horizon_s = 900.0;
        let dsg = Dsg::default();
        // rv over 5 bars and VMD over 8, so trees on them start trading a few bars in; one tree per feature engine
        // (trades only, book, VMD, both).
        let options = FeatureOptions::new(5, 2, 8);
        let trees = [
            tree(r#"{"const":0.0}"#, ""),
            tree(r#"{"const":1.0}"#, ""),
            tree(r#"{"op":"sign","args":[{"feature":"clv"}]}"#, r#""clv""#),
            tree(r#"{"op":"sign","args":[{"feature":"rv_1h"}]}"#, r#""rv_1h""#),
            tree(r#"{"op":"neg","args":[{"op":"sign","args":[{"feature":"rv"}]}]}"#, r#""rv""#),
            tree(r#"{"op":"sign","args":[{"feature":"ofi_l1_sum"}]}"#, r#""ofi_l1_sum""#),
            tree(r#"{"op":"sign","args":[{"feature":"vmd_1"}]}"#, r#""vmd_1""#),
            tree(
                r#"{"op":"sub","args":[{"op":"sign","args":[{"feature":"vmd_2"}]},{"op":"sign","args":[{"feature":"spread_bps_mean"}]}]}"#,
                r#""vmd_2","spread_bps_mean""#,
            ),
            // A signal far below the rule's entry threshold: the rule holds on it, so the tree never forks.
            tree(r#"{"op":"mul","args":[{"const":1e-12},{"op":"sign","args":[{"feature":"clv"}]}]}"#, r#""clv""#),
            // The same requests as const 1 and sign(clv) (a signal is clamped to 1): they share those markets.
            tree(r#"{"const":2.0}"#, ""),
            tree(r#"{"op":"sign","args":[{"op":"mul","args":[{"const":3.0},{"feature":"clv"}]}]}"#, r#""clv""#),
            // Half of sign(clv): the same directions, sizes that may differ.
            tree(r#"{"op":"mul","args":[{"const":0.5},{"op":"sign","args":[{"feature":"clv"}]}]}"#, r#""clv""#),
        ];
        let seeds = [1, 6, 9];
        let limits = Limits::default();
        let shared = adversarial_fitness(&trees, &dsg, &seeds, &config, &options, &limits, Markets::Shared).unwrap();
        let independent =
            adversarial_fitness(&trees, &dsg, &seeds, &config, &options, &limits, Markets::Independent).unwrap();
        same_results(&shared, &independent);
        let (rows, n) = (|t: usize| t * seeds.len()..(t + 1) * seeds.len(), seeds.len());
        assert_eq!(&shared.simulated[rows(0)], &[false; 3][..n], "const 0 never forks");
        assert_eq!(&shared.simulated[rows(3)], &[false; 3][..n], "rv_1h is NaN for 31 hours");
        assert!(shared.trades[rows(1)].iter().all(|&t| t > 0), "const 1 trades from the first bar");
        assert_eq!(&shared.simulated[rows(8)], &[false; 3][..n], "the rule never enters on a signal of 1e-12");
        let simulated = shared.simulated.iter().filter(|&&s| s).count() as u64;
        assert!(
            shared.markets.iter().sum::<u64>() + 6 <= simulated,
            "{:?} markets for {simulated} pairs",
            shared.markets
        );
        for t in [2, 4, 5, 6, 7] {
            assert!(shared.trades[rows(t)].iter().any(|&f| f > 0), "tree {t} trades");
        }
        for (t, text) in trees.iter().enumerate() {
            for (s, &seed) in seeds.iter().enumerate() {
                let c = SimConfig { seed, record_market: false, ..config.clone() };
                let own = gp_run(text, &dsg, &c, &options, &limits).unwrap().output.strategy.unwrap();
                let i = t * seeds.len() + s;
                assert_eq!(shared.pnl[i].to_bits(), own.pnl.to_bits(), "tree {t} seed {seed}");
                assert_eq!(shared.max_drawdown[i].to_bits(), own.max_drawdown.to_bits(), "tree {t} seed {seed}");
                assert_eq!((shared.trades[i], shared.ruined[i]), (own.n_fills as u64, own.ruined));
            }
        }
        let one =
            adversarial_fitness(&trees[5..6], &dsg, &seeds[1..2], &config, &options, &limits, Markets::Shared).unwrap();
        assert_eq!(one.pnl[0].to_bits(), shared.pnl[5 * seeds.len() + 1].to_bits(), "whatever else is in the batch");
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
            Markets::Shared,
        )
        .unwrap_err();
        assert!(matches!(&err, SimError::Gp(GpError::InTree { index: 1, .. })), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with("trees[1]") && message.contains("tfi_1s"), "{message}");
    }
}
