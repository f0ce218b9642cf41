//! A GP tree as the simulator's strategy: the simulator's closed bars become streaming bar features, the streaming GP
//! evaluator turns each feature row into a signal, and the newest signal is the target position.
//!
//! Features and evaluation are the same code evolution scores trees with (`apex_features::bars::bar_features` over
//! klines, `apex_gp::batch`), streamed, so a tree decides in the simulator exactly as it did on the same bars offline.
//! The simulator's bars carry no turnover, trade counts or book, so only the columns in [`sim_feature_names`] exist.

use apex_features::FeatureError;
use apex_features::SECOND;
use apex_features::bars::{BarParams, column_names};
use apex_features::bars_stream::{Kline, StreamingBarFeatures};
use apex_gp::{GpError, Limits, Program, StreamingEvaluator};

use crate::SimError;
use crate::strategy::{Bar, Context, Strategy};

/// Bar columns the simulator cannot compute: its bars have no turnover, and klines carry no trade counts.
pub const SIM_MISSING_COLUMNS: [&str; 3] = ["turnover", "n_trades", "buy_volume"];

/// The bar-feature parameters the simulator streams for bars of `bar_s` seconds and realized volatility over
/// `rv_window` returns (`features --rv-bars`, 30 by default): every standard interval above the bar as MTFA, as
/// [`BarParams::new`] and the `features` command choose them.
#[must_use]
pub fn sim_bar_params(bar_s: i64, rv_window: usize) -> BarParams {
    BarParams { rv_window, ..BarParams::new(bar_s.saturating_mul(SECOND)) }
}

/// The features a GP tree may use in the simulator with bars of `bar_s` seconds, in row order: the kline bar
/// features minus [`SIM_MISSING_COLUMNS`] (e.g. `open … rv`, then `close_5m … rv_1h` for 1-minute bars).
#[must_use]
pub fn sim_feature_names(bar_s: i64) -> Vec<String> {
    column_names(&sim_bar_params(bar_s, 1), false)
        .into_iter()
        .filter(|n| !SIM_MISSING_COLUMNS.contains(&n.as_str()))
        .collect()
}

/// For each of [`sim_feature_names`] (same order), the number of bars from the start of a simulation before the
/// feature is first defined (not NaN): 0 for OHLCV/CLV, 1 for `ret`, the rv window for `rv`, and for a higher
/// timeframe of `h` bars: `h - 1` (its first close), `2h - 1` for its `ret`, `(rv window + 1) h - 1` for its `rv`.
/// A tree reading a feature whose warm-up exceeds the simulated span sees only NaN there.
#[must_use]
pub fn sim_feature_warmup(bar_s: i64, rv_window: usize) -> Vec<(String, usize)> {
    let params = sim_bar_params(bar_s, rv_window);
    let windows = params.rv_window;
    sim_feature_names(bar_s)
        .into_iter()
        .map(|name| {
            let (base, suffix) = name.rsplit_once('_').unwrap_or((name.as_str(), ""));
            let higher = params.higher.iter().find(|&&h| apex_features::duration_label(h) == suffix);
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
pub fn compile_for_sim(text: &str, bar_s: i64, limits: &Limits) -> Result<Program, GpError> {
    Program::from_json(text, &sim_feature_names(bar_s), limits)
}

/// The [`sim_feature_names`] columns of `bars` (a simulation's closed bars), computed by the streaming features
/// the strategy uses: one row per bar (plus flat rows for missing bars, which a simulation never has).
///
/// # Errors
/// `Features` for `bar_s <= 0`, `rv_window == 0` or an unusable bar.
pub fn sim_feature_columns(bars: &[Bar], bar_s: i64, rv_window: usize) -> Result<Vec<Vec<f64>>, SimError> {
    let mut features = StreamingBarFeatures::new(sim_bar_params(bar_s, rv_window))?;
    let names = sim_feature_names(bar_s);
    let select: Vec<usize> =
        names.iter().map(|n| features.names().iter().position(|f| f == n).expect("a subset")).collect();
    let mut columns = vec![Vec::with_capacity(bars.len()); names.len()];
    for bar in bars {
        features.push(&kline_of(bar), |_, row| {
            for (column, &index) in columns.iter_mut().zip(&select) {
                column.push(row[index]);
            }
        })?;
    }
    Ok(columns)
}

/// A simulator bar as a kline (no turnover: the simulator does not track it; nanosecond time).
fn kline_of(bar: &Bar) -> Kline {
    Kline {
        ts: bar.ts_us.saturating_mul(1_000),
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
        volume: bar.volume,
        turnover: 0.0,
    }
}

/// A compiled GP tree driving the simulator's strategy slot.
#[derive(Debug, Clone)]
pub struct GpStrategy {
    name: String,
    evaluator: StreamingEvaluator,
    features: StreamingBarFeatures,
    /// For each program input, its index in the full feature row.
    select: Vec<usize>,
    input: Vec<f64>,
    /// Bars of the context already turned into rows.
    seen: usize,
    signals: Vec<f64>,
    error: Option<FeatureError>,
}

impl GpStrategy {
    /// A strategy running `program` on bars of `bar_s` seconds, rv over `rv_window` returns.
    ///
    /// # Errors
    /// `Config` when the program reads an input that is not in [`sim_feature_names`]; `Features` for `bar_s <= 0`
    /// or `rv_window == 0`.
    pub fn new(program: &Program, bar_s: i64, rv_window: usize) -> Result<GpStrategy, SimError> {
        let features = StreamingBarFeatures::new(sim_bar_params(bar_s, rv_window))?;
        let available = sim_feature_names(bar_s);
        let select = program
            .inputs()
            .iter()
            .map(|input| {
                let known = available.contains(input);
                features.names().iter().position(|n| n == input).filter(|_| known).ok_or_else(|| {
                    SimError::Config(format!(
                        "GP program input {input:?} is not a simulator feature (the simulator has: {})",
                        available.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<usize>, SimError>>()?;
        Ok(GpStrategy {
            name: "gp".to_owned(),
            evaluator: StreamingEvaluator::new(program),
            input: vec![0.0; select.len()],
            select,
            features,
            seen: 0,
            signals: Vec::new(),
            error: None,
        })
    }

    /// Loads and compiles a JSON tree (see [`compile_for_sim`]) and makes the strategy.
    ///
    /// # Errors
    /// As [`compile_for_sim`] and [`GpStrategy::new`].
    pub fn from_json(text: &str, bar_s: i64, rv_window: usize, limits: &Limits) -> Result<GpStrategy, SimError> {
        GpStrategy::new(&compile_for_sim(text, bar_s, limits)?, bar_s, rv_window)
    }

    /// The signal of every feature row so far, one per bar the strategy has seen (the parity record).
    pub fn signals(&self) -> &[f64] {
        &self.signals
    }

    /// The bar the strategy stopped on, if the simulator handed it an unusable bar; it stays flat from then on.
    pub fn error(&self) -> Option<&FeatureError> {
        self.error.as_ref()
    }
}

impl Strategy for GpStrategy {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn target(&mut self, ctx: &Context<'_>) -> f64 {
        let Self { evaluator, features, select, input, seen, signals, error, .. } = self;
        if error.is_some() {
            return 0.0;
        }
        for bar in ctx.bars.get(*seen..).unwrap_or_default() {
            let pushed = features.push(&kline_of(bar), |_, row| {
                for (value, &index) in input.iter_mut().zip(select.iter()) {
                    *value = row[index];
                }
                signals.push(evaluator.push(input));
            });
            if let Err(failure) = pushed {
                *error = Some(failure);
                return 0.0;
            }
        }
        *seen = ctx.bars.len();
        signals.last().copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use apex_features::bars::{BarSource, KlineColumns, bar_features};

    use super::*;
    use crate::batch::preset;
    use crate::dsg::Dsg;
    use crate::market::{SimConfig, run};

    const TREE: &str = r#"{"schema":"apex.gp_tree","version":1,"features":["clv","clv_5m","ret","rv"],"root":
        {"op":"if_then_else","args":[{"op":"gt","args":[{"op":"ts_zscore","args":[{"feature":"ret"},{"window":5}]},
        {"op":"ema","args":[{"feature":"clv_5m"},{"window":3}]}]},{"op":"tanh","args":[{"op":"div","args":
        [{"feature":"clv"},{"feature":"rv"}]}]},{"op":"neg","args":[{"op":"lag","args":[{"feature":"clv"},
        {"window":2}]}]}]}}"#;

    #[test]
    fn signals_in_the_simulator_equal_batch_evaluation_of_its_bars() {
        let (spec, start) = preset("SOLUSDT").unwrap();
        let mut config = SimConfig::new(spec, start, 11);
        config.horizon_s = 1800.0;
        config.record_market = false;
        let mut strategy = GpStrategy::from_json(TREE, config.bar_s, 7, &Limits::default()).unwrap();
        let out = run(&Dsg::default(), &config, Some(&mut strategy)).unwrap();
        assert!(strategy.error().is_none());
        let bars = &out.bars;
        assert_eq!(strategy.signals().len(), bars.len(), "one signal per bar the strategy saw");
        assert!(bars.len() >= 29);

        let col = |f: fn(&crate::strategy::Bar) -> f64| bars.iter().map(f).collect::<Vec<f64>>();
        let ts: Vec<i64> = bars.iter().map(|b| b.ts_us * 1_000).collect();
        let (open, high, low, close, volume) =
            (col(|b| b.open), col(|b| b.high), col(|b| b.low), col(|b| b.close), col(|b| b.volume));
        let zeros = vec![0.0; bars.len()];
        let symbol = vec![0_u32; bars.len()];
        let klines = KlineColumns {
            ts: &ts,
            symbol: &symbol,
            open: &open,
            high: &high,
            low: &low,
            close: &close,
            volume: &volume,
            turnover: &zeros,
            interval: config.bar_s * SECOND,
        };
        let table = bar_features(&BarSource::Klines(klines), None, &sim_bar_params(config.bar_s, 7)).unwrap();
        let names = sim_feature_names(config.bar_s);
        let columns: Vec<&[f64]> = names.iter().map(|n| table.column(n).unwrap()).collect();
        let program = compile_for_sim(TREE, config.bar_s, &Limits::default()).unwrap();
        let batch = apex_gp::batch::evaluate(&program, &columns).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(strategy.signals()), bits(&batch));
        assert!(batch.iter().any(|&s| s != 0.0), "the tree trades, so the parity is not trivially all flat");
    }

    #[test]
    fn warmup_is_the_first_defined_row_of_each_feature() {
        let bar_s = 300;
        let params = sim_bar_params(bar_s, 30);
        let mut stream = StreamingBarFeatures::new(params).unwrap();
        let names = stream.names().to_vec();
        let mut first_defined = vec![None; names.len()];
        for i in 0..400_i64 {
            let close = 100.0 + (i % 7) as f64;
            let kline = Kline {
                ts: i * bar_s * SECOND,
                open: close,
                high: close + 1.0,
                low: close - 1.0,
                close,
                volume: 1.0,
                turnover: 0.0,
            };
            let row_index = i as usize;
            stream
                .push(&kline, |_, row| {
                    for (first, value) in first_defined.iter_mut().zip(row) {
                        if first.is_none() && !value.is_nan() {
                            *first = Some(row_index);
                        }
                    }
                })
                .unwrap();
        }
        let warmup = sim_feature_warmup(bar_s, 30);
        assert_eq!(warmup.len(), sim_feature_names(bar_s).len());
        for (name, bars) in warmup {
            let column = names.iter().position(|n| *n == name).unwrap();
            assert_eq!(first_defined[column], Some(bars), "{name}");
        }
    }

    #[test]
    fn unknown_features_fail_at_load_naming_the_feature() {
        let tree = r#"{"schema":"apex.gp_tree","version":1,"features":["ofi_l1_sum"],"root":{"feature":"ofi_l1_sum"}}"#;
        let err = GpStrategy::from_json(tree, 60, 30, &Limits::default()).unwrap_err().to_string();
        assert!(err.contains("ofi_l1_sum") && err.contains("clv_5m"), "{err}");
        let turnover = Program::from_json(
            r#"{"schema":"apex.gp_tree","version":1,"features":["turnover"],"root":{"feature":"turnover"}}"#,
            &["turnover"],
            &Limits::default(),
        )
        .unwrap();
        assert!(matches!(GpStrategy::new(&turnover, 60, 30), Err(SimError::Config(m)) if m.contains("\"turnover\"")));
        assert!(sim_feature_names(60).iter().any(|n| n == "rv_1h"));
        assert!(!sim_feature_names(60).iter().any(|n| SIM_MISSING_COLUMNS.contains(&n.as_str())));
    }
}
