//! A GP tree as the simulator's strategy: the simulated market's public trades (and its L2 stream, when the tree reads
//! book features) drive apex-features' streaming feature engine, the streaming GP evaluator turns each closed bar's
//! row into a signal, and the newest signal is the target position.
//!
//! The engine is the one the live engine runs and the batch `features` command runs over tables, so a tree decides in
//! the simulator exactly as it did in the backtest on the features of the simulator's recorded trades and book: the
//! full bar row (OHLCV, turnover, trade counts, CLV, returns, rv, MTFA, book aggregates, VMD) is available.

use apex_book::MessageHeader;
use apex_features::bars::{BOOK_COLUMNS, BarParams, column_names};
use apex_features::engine::{BarFeatureEngine, EngineConfig, Trade};
use apex_features::{FeatureError, SECOND, duration_label};
use apex_gp::{GpError, Limits, Program, StreamingEvaluator};

use crate::market::SimConfig;
use crate::strategy::{Context, Feed, PublicTrade, Strategy};
use crate::{BookTick, EngineBook, L2Update, SimError};

/// The `apexctl features` options that shape a tree's inputs (`--rv-bars`, `--vmd-modes`, `--vmd-window`); the
/// simulator must compute its features with those of the table the tree was evolved on.
pub use apex_features::FeatureOptions;

/// The bar-feature parameters the simulator streams for bars of `bar_s` seconds: every standard interval above the
/// bar as MTFA, as [`BarParams::new`] and the `features` command choose them, with `options`.
#[must_use]
pub fn sim_bar_params(bar_s: i64, options: &FeatureOptions) -> BarParams {
    BarParams::with_options(bar_s.saturating_mul(SECOND), options)
}

/// The features a GP tree may use in the simulator with bars of `bar_s` seconds, in row order: every column of
/// `apexctl features --grain <bar>` over trades and book (OHLCV, turnover, n_trades, buy_volume, CLV, ret, rv, MTFA,
/// book aggregates, then `vmd_1..K`).
#[must_use]
pub fn sim_feature_names(bar_s: i64, options: &FeatureOptions) -> Vec<String> {
    column_names(&sim_bar_params(bar_s, options), true)
}

/// For each of [`sim_feature_names`] (same order), the number of bars from the start of a simulation before the
/// feature is first defined (not NaN): 0 for the bar's own columns and book aggregates, 1 for `ret`, the rv window
/// for `rv`, `window - 1` for VMD, and for a higher timeframe of `h` bars: `h - 1` (its first close), `2h - 1` for
/// its `ret`, `(rv window + 1) h - 1` for its `rv`. A tree reading a feature whose warm-up exceeds the simulated
/// span sees only NaN there.
#[must_use]
pub fn sim_feature_warmup(bar_s: i64, options: &FeatureOptions) -> Vec<(String, usize)> {
    let params = sim_bar_params(bar_s, options);
    let windows = params.rv_window;
    sim_feature_names(bar_s, options)
        .into_iter()
        .map(|name| {
            let (base, suffix) = name.rsplit_once('_').unwrap_or((name.as_str(), ""));
            let higher = params.higher.iter().find(|&&h| duration_label(h) == suffix);
            let bars = match higher {
                Some(&h) => {
                    let per = usize::try_from(h / params.interval).unwrap_or(usize::MAX);
                    let closes = match base {
                        "ret" => 2,
                        "rv" => windows + 1,
                        _ => 1,
                    };
                    per.saturating_mul(closes) - 1
                }
                None if base == "vmd" => params.vmd.as_ref().map_or(0, |v| v.window - 1),
                None => match name.as_str() {
                    "ret" => 1,
                    "rv" => windows,
                    _ => 0,
                },
            };
            (name, bars)
        })
        .collect()
}

/// Compiles a JSON tree against the simulator's features for bars of `bar_s` seconds.
///
/// # Errors
/// Every load error of [`Program::from_json`]; `UnknownFeature` (naming the feature and the node path) for a feature
/// the simulator does not compute.
pub fn compile_for_sim(text: &str, bar_s: i64, options: &FeatureOptions, limits: &Limits) -> Result<Program, GpError> {
    Program::from_json(text, &sim_feature_names(bar_s, options), limits)
}

/// The simulator's public streams into one feature engine: what a strategy slot computes its features with.
#[derive(Debug, Clone)]
pub struct SimFeatures {
    engine: BarFeatureEngine,
    bar_us: i64,
    feed: Feed,
    error: Option<FeatureError>,
}

impl SimFeatures {
    /// Features of the market `config` describes (instrument scales, bar length), with `options`; the book columns
    /// are computed (and the L2 stream asked for) only when `book` is set, and VMD only when `options` has it.
    ///
    /// # Errors
    /// `Features` for `bar_s <= 0`, `rv_bars == 0` or bad VMD settings.
    pub fn new(config: &SimConfig, options: &FeatureOptions, book: bool) -> Result<SimFeatures, SimError> {
        let engine = BarFeatureEngine::new(EngineConfig {
            bars: sim_bar_params(config.bar_s, options),
            price_scale: config.spec.price_scale,
            qty_scale: config.spec.qty_scale,
            book_columns: book,
        })?;
        Ok(SimFeatures {
            engine,
            bar_us: config.bar_s.saturating_mul(1_000_000),
            feed: if book { Feed::TradesAndBook } else { Feed::Trades },
            error: None,
        })
    }

    /// The names of a row's values, in order.
    pub fn names(&self) -> &[String] {
        self.engine.names()
    }

    /// What the engine reads from the market: trades, and the L2 stream when it computes book columns.
    pub(crate) fn feed(&self) -> Feed {
        self.feed
    }

    /// The first trade the engine refused, if any (the simulator never sends one; rows stop being trusted after it).
    pub fn error(&self) -> Option<&FeatureError> {
        self.error.as_ref()
    }

    pub(crate) fn on_trade(&mut self, trade: &PublicTrade, emit: impl FnMut(i64, &[f64])) {
        let trade =
            Trade { ts: trade.ts_us.saturating_mul(1_000), side: trade.side, price: trade.price, size: trade.size };
        if let Err(failure) = self.engine.on_trade(&trade, emit) {
            self.error.get_or_insert(failure);
        }
    }

    pub(crate) fn on_book(&mut self, update: &L2Update, emit: impl FnMut(i64, &[f64])) {
        // The book's verdicts (a crossed book, never a gap here) are in the features as NaN, as in the batch.
        let _verdict = self.engine.on_book(&header(&update.tick()), &update.bids, &update.asks, emit);
    }

    /// A message of the simulator's publisher with the book's top levels after it: the same rows as
    /// [`SimFeatures::on_book`] (the engine's book is in sequence and never crossed), without rebuilding that book.
    pub(crate) fn on_engine_book(&mut self, book: &EngineBook<'_>, emit: impl FnMut(i64, &[f64])) {
        let (bids, asks) = book.top();
        self.engine.on_book_top(&header(book.tick()), bids, asks, emit);
    }

    /// Closes the bar the decision in `ctx` follows (its close is the decision time).
    pub(crate) fn on_decision(&mut self, ctx: &Context<'_>, emit: impl FnMut(i64, &[f64])) {
        if let Some(last) = ctx.bars.last() {
            self.engine.on_clock((last.ts_us + self.bar_us).saturating_mul(1_000), emit);
        }
    }
}

/// The feature engine's header of a published message (simulated µs to UTC ns).
fn header(tick: &BookTick) -> MessageHeader {
    MessageHeader {
        first_row: 0,
        symbol: 0,
        kind: tick.kind,
        update_id: tick.update_id,
        seq: i64::try_from(tick.seq).unwrap_or(i64::MAX),
        ts: tick.ts_us.saturating_mul(1_000),
    }
}

/// A compiled GP tree driving the simulator's strategy slot.
#[derive(Debug, Clone)]
pub struct GpStrategy {
    name: String,
    evaluator: StreamingEvaluator,
    features: SimFeatures,
    /// For each program input, its index in the engine's row.
    select: Vec<usize>,
    input: Vec<f64>,
    signals: Vec<f64>,
}

impl GpStrategy {
    /// A strategy running `program` in the market `config` describes, on features made with `options`. The L2 stream
    /// is read only when the tree uses a book aggregate, VMD computed only when it uses a VMD column.
    ///
    /// # Errors
    /// `Config` when the program reads an input that is not in [`sim_feature_names`]; `Features` for `bar_s <= 0`,
    /// `rv_bars == 0` or bad VMD settings.
    pub fn new(program: &Program, config: &SimConfig, options: &FeatureOptions) -> Result<GpStrategy, SimError> {
        let available = sim_feature_names(config.bar_s, options);
        if let Some(unknown) = program.inputs().iter().find(|input| !available.contains(input)) {
            return Err(SimError::Config(format!(
                "GP program input {unknown:?} is not a simulator feature (the simulator has: {})",
                available.join(", ")
            )));
        }
        // Bound to the features the tree reads (not every input it was compiled against): the same signals, and the
        // engine computes only what they need.
        let program = used_only(program);
        let used = program.inputs();
        let features = SimFeatures::new(config, &needed(used, options), uses_book(used))?;
        let select = program
            .inputs()
            .iter()
            .map(|input| features.names().iter().position(|n| n == input).expect("checked against the names"))
            .collect::<Vec<usize>>();
        Ok(GpStrategy {
            name: "gp".to_owned(),
            evaluator: StreamingEvaluator::new(&program),
            input: vec![0.0; select.len()],
            select,
            features,
            signals: Vec::new(),
        })
    }

    /// Loads and compiles a JSON tree (see [`compile_for_sim`]) and makes the strategy.
    ///
    /// # Errors
    /// As [`compile_for_sim`] and [`GpStrategy::new`].
    pub fn from_json(
        text: &str,
        config: &SimConfig,
        options: &FeatureOptions,
        limits: &Limits,
    ) -> Result<GpStrategy, SimError> {
        GpStrategy::new(&compile_for_sim(text, config.bar_s, options, limits)?, config, options)
    }

    /// The signal of every feature row so far, one per bar the strategy has seen (the parity record).
    pub fn signals(&self) -> &[f64] {
        &self.signals
    }

    /// The trade the feature engine refused, if the simulator ever handed it one; the strategy stays flat from then on.
    pub fn error(&self) -> Option<&FeatureError> {
        self.features.error()
    }

    /// Emits the signal of each completed row.
    fn sink<'a>(
        evaluator: &'a mut StreamingEvaluator,
        select: &'a [usize],
        input: &'a mut [f64],
        signals: &'a mut Vec<f64>,
    ) -> impl FnMut(i64, &[f64]) + 'a {
        move |_, row| {
            for (value, &index) in input.iter_mut().zip(select) {
                *value = row[index];
            }
            signals.push(evaluator.push(input));
        }
    }
}

/// `program` compiled against only the features its tree uses (the same tree, so the same signal on the same values).
///
/// # Panics
/// Never: a tree compiles against its own feature list.
#[must_use]
pub fn used_only(program: &Program) -> Program {
    let tree = program.tree();
    Program::compile(tree, tree.features()).expect("a tree compiles against its own features")
}

/// The options restricted to what `inputs` read: VMD only when a VMD column is among them.
pub(crate) fn needed(inputs: &[String], options: &FeatureOptions) -> FeatureOptions {
    let vmd = inputs.iter().any(|i| i.starts_with("vmd_"));
    FeatureOptions { vmd_modes: if vmd { options.vmd_modes } else { 0 }, ..*options }
}

pub(crate) fn uses_book(inputs: &[String]) -> bool {
    inputs.iter().any(|i| BOOK_COLUMNS.contains(&i.as_str()))
}

/// Which feature engine a strategy reading `inputs` runs: (book columns, VMD). Strategies with the same key run the
/// same engine on the same streams, so they see the same rows.
pub(crate) fn feature_key(inputs: &[String], options: &FeatureOptions) -> (bool, bool) {
    (uses_book(inputs), needed(inputs, options).vmd().is_some())
}

impl Strategy for GpStrategy {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn feed(&self) -> Feed {
        self.features.feed
    }

    fn on_trade(&mut self, trade: &PublicTrade) {
        let Self { evaluator, features, select, input, signals, .. } = self;
        features.on_trade(trade, Self::sink(evaluator, select, input, signals));
    }

    fn on_book(&mut self, update: &L2Update) {
        let Self { evaluator, features, select, input, signals, .. } = self;
        features.on_book(update, Self::sink(evaluator, select, input, signals));
    }

    fn on_engine_book(&mut self, book: &EngineBook<'_>) {
        let Self { evaluator, features, select, input, signals, .. } = self;
        features.on_engine_book(book, Self::sink(evaluator, select, input, signals));
    }

    fn target(&mut self, ctx: &Context<'_>) -> f64 {
        let Self { evaluator, features, select, input, signals, .. } = self;
        features.on_decision(ctx, Self::sink(evaluator, select, input, signals));
        if features.error().is_some() {
            return 0.0;
        }
        signals.last().copied().unwrap_or(0.0)
    }
}

/// A flat strategy that records the feature rows the simulator streams (the rows a tree would see on the same
/// market, since a flat strategy moves nothing): one column per name of [`SimFeatures::names`].
#[derive(Debug, Clone)]
pub struct FeatureRecorder {
    features: SimFeatures,
    columns: Vec<Vec<f64>>,
}

impl FeatureRecorder {
    /// Records every column of the market `config` describes with `options` (the book columns when `book`).
    ///
    /// # Errors
    /// As [`SimFeatures::new`].
    pub fn new(config: &SimConfig, options: &FeatureOptions, book: bool) -> Result<FeatureRecorder, SimError> {
        let features = SimFeatures::new(config, options, book)?;
        let columns = vec![Vec::new(); features.names().len()];
        Ok(FeatureRecorder { features, columns })
    }

    /// The names of the recorded columns.
    pub fn names(&self) -> &[String] {
        self.features.names()
    }

    /// Every recorded column, in [`FeatureRecorder::names`] order.
    pub fn columns(&self) -> Vec<&[f64]> {
        self.columns.iter().map(Vec::as_slice).collect()
    }

    /// The recorded column called `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.names().iter().position(|n| n == name).map(|i| self.columns[i].as_slice())
    }

    /// The trade the feature engine refused, if any.
    pub fn error(&self) -> Option<&FeatureError> {
        self.features.error()
    }

    fn sink(columns: &mut [Vec<f64>]) -> impl FnMut(i64, &[f64]) + '_ {
        |_, row| {
            for (column, &value) in columns.iter_mut().zip(row) {
                column.push(value);
            }
        }
    }
}

impl Strategy for FeatureRecorder {
    fn name(&self) -> String {
        "feature_recorder".to_owned()
    }

    fn feed(&self) -> Feed {
        self.features.feed
    }

    fn on_trade(&mut self, trade: &PublicTrade) {
        self.features.on_trade(trade, Self::sink(&mut self.columns));
    }

    fn on_book(&mut self, update: &L2Update) {
        self.features.on_book(update, Self::sink(&mut self.columns));
    }

    fn on_engine_book(&mut self, book: &EngineBook<'_>) {
        self.features.on_engine_book(book, Self::sink(&mut self.columns));
    }

    fn target(&mut self, ctx: &Context<'_>) -> f64 {
        self.features.on_decision(ctx, Self::sink(&mut self.columns));
        0.0
    }
}

#[cfg(test)]
mod tests {
    use apex_book::BookColumns;
    use apex_features::bars::{BarSource, bar_features};
    use apex_features::trades::TradeColumns;
    use apex_features::update::{UpdateParams, update_features};

    use super::*;
    use crate::batch::preset;
    use crate::dsg::Dsg;
    use crate::market::{SimOutput, run};

    const TREE: &str = r#"{"schema":"apex.gp_tree","version":1,"features":["clv","clv_5m","ret","rv","n_trades","ofi_l1_sum","buy_volume","volume"],"root":
        {"op":"if_then_else","args":[{"op":"gt","args":[{"op":"ts_zscore","args":[{"feature":"ofi_l1_sum"},{"window":5}]},
        {"op":"ema","args":[{"feature":"clv_5m"},{"window":3}]}]},{"op":"tanh","args":[{"op":"div","args":
        [{"op":"sub","args":[{"op":"div","args":[{"feature":"buy_volume"},{"feature":"volume"}]},{"const":0.5}]},
        {"feature":"rv"}]}]},{"op":"neg","args":[{"op":"lag","args":[{"feature":"clv"},{"window":2}]}]}]}}"#;

    fn config(symbol: &str, seed: u64, minutes: f64) -> SimConfig {
        let (spec, start) = preset(symbol).unwrap();
        let mut config = SimConfig::new(spec, start, seed);
        config.horizon_s = minutes * 60.0;
        config
    }

    /// `apexctl features --grain <bar>` over a recorded run's trades and book.
    fn batch_features(out: &SimOutput, config: &SimConfig, options: &FeatureOptions) -> apex_features::bars::BarTable {
        let trades = TradeColumns::from(&out.trades);
        let book = BookColumns::from(&out.book);
        // The scales `features` infers from the table (fewer decimals than the instrument's for SOLUSDT's "0.010").
        let updates = update_features(&book, book.infer_scales(), &UpdateParams::default()).unwrap();
        let params = sim_bar_params(config.bar_s, options);
        bar_features(&BarSource::Trades(trades), Some(&updates.series()), &params).unwrap()
    }

    #[test]
    fn signals_in_the_simulator_equal_batch_evaluation_of_its_recorded_trades_and_book() {
        let config = config("SOLUSDT", 11, 30.0);
        let options = FeatureOptions::new(7, 2, 6);
        let mut strategy = GpStrategy::from_json(TREE, &config, &options, &Limits::default()).unwrap();
        assert_eq!(strategy.feed(), Feed::TradesAndBook, "the tree reads ofi_l1_sum");
        let out = run(&Dsg::default(), &config, Some(&mut strategy)).unwrap();
        assert!(strategy.error().is_none());
        assert!(out.strategy.as_ref().is_some_and(|s| s.n_fills > 0), "the tree traded");
        let table = batch_features(&out, &config, &options);
        assert_eq!(strategy.signals().len(), table.len(), "one signal per bar");
        assert!(table.len() >= 29);
        let program = compile_for_sim(TREE, config.bar_s, &options, &Limits::default()).unwrap();
        let columns: Vec<&[f64]> = program.inputs().iter().map(|n| table.column(n).unwrap()).collect();
        let batch = apex_gp::batch::evaluate(&program, &columns).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(strategy.signals()), bits(&batch));
        assert!(batch.iter().filter(|&&s| s != 0.0).count() > 5, "the tree trades, so the parity is not all flat");
    }

    #[test]
    fn the_recorder_streams_every_column_of_the_batch_features() {
        let config = config("BTCUSDT", 4, 20.0);
        let options = FeatureOptions::new(3, 2, 5);
        let mut recorder = FeatureRecorder::new(&config, &options, true).unwrap();
        let out = run(&Dsg::default(), &config, Some(&mut recorder)).unwrap();
        assert_eq!(out.strategy.as_ref().unwrap().n_fills, 0, "the recorder is flat");
        let table = batch_features(&out, &config, &options);
        assert_eq!(recorder.names(), sim_feature_names(config.bar_s, &options));
        for (name, values) in &table.columns {
            let streamed = recorder.column(name).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            assert_eq!(bits(streamed), bits(values), "{name}");
        }
        for name in ["turnover", "n_trades", "buy_volume", "ofi_l5_sum", "spread_bps_mean", "vmd_2"] {
            assert!(table.column(name).unwrap().iter().any(|&v| v != 0.0 && v.is_finite()), "{name}");
        }
    }

    #[test]
    fn warmup_is_the_first_defined_row_of_each_feature() {
        let mut config = config("ETHUSDT", 2, 181.0);
        config.bar_s = 60;
        let options = FeatureOptions::new(4, 2, 8);
        let mut recorder = FeatureRecorder::new(&config, &options, true).unwrap();
        run(&Dsg::default(), &config, Some(&mut recorder)).unwrap();
        let rows = recorder.column("close").unwrap().len();
        for (name, bars) in sim_feature_warmup(config.bar_s, &options) {
            let first = recorder.column(&name).unwrap().iter().position(|v| !v.is_nan());
            assert_eq!(first, (bars < rows).then_some(bars), "{name}");
        }
    }

    #[test]
    fn unknown_features_fail_at_load_naming_the_feature() {
        let config = config("BTCUSDT", 0, 10.0);
        let options = FeatureOptions::default();
        let tree = r#"{"schema":"apex.gp_tree","version":1,"features":["tfi_1s"],"root":{"feature":"tfi_1s"}}"#;
        let err = GpStrategy::from_json(tree, &config, &options, &Limits::default()).unwrap_err().to_string();
        assert!(err.contains("tfi_1s") && err.contains("clv_5m"), "{err}");
        let vmd = Program::from_json(
            r#"{"schema":"apex.gp_tree","version":1,"features":["vmd_3"],"root":{"feature":"vmd_3"}}"#,
            &["vmd_3"],
            &Limits::default(),
        )
        .unwrap();
        let two_modes = FeatureOptions::new(30, 2, 64);
        assert!(
            matches!(GpStrategy::new(&vmd, &config, &two_modes), Err(SimError::Config(m)) if m.contains("\"vmd_3\""))
        );
        let names = sim_feature_names(60, &options);
        for name in ["rv_1h", "turnover", "n_trades", "buy_volume", "ofi_l1_sum", "spread_bps_mean", "vmd_3"] {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
        assert!(GpStrategy::new(&vmd, &config, &options).unwrap().feed() == Feed::Trades, "VMD needs no book");
        // Compiled against every simulator feature, a tree still makes the engine compute only what it reads.
        let clv = r#"{"schema":"apex.gp_tree","version":1,"features":["clv"],"root":{"feature":"clv"}}"#;
        let strategy = GpStrategy::from_json(clv, &config, &options, &Limits::default()).unwrap();
        assert_eq!(strategy.feed(), Feed::Trades, "no L2 stream for a tree without book features");
        assert!(!strategy.features.names().iter().any(|n| n.starts_with("vmd_")), "no VMD either");
    }
}
