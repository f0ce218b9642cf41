//! A slot's models as the engine runs them: the bundle (GP signal, IEL tactic), the MAML return model with its online
//! adaptation, and the mapping from the streaming engine's bar row and the execution observation to the bundle's row.

use std::path::Path;

use apex_features::bars::BarParams;
use apex_features::execution::{OBSERVATION_LEN, OBSERVATION_NAMES, Observation};
use apex_features::{FeatureOptions, SECOND};
use apex_infer::maml::MamlModel;
use apex_infer::{BarSpec, Bundle, Manifest};

use crate::NexusError;

/// Where a bundle feature's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Column of the feature engine's bar row.
    Bar(usize),
    /// Value of the execution observation.
    Observation(usize),
}

/// The tactic the IEL policy picks for one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tactic {
    /// A market order (IOC).
    Aggressive,
    /// A post-only limit order at the touch.
    PassiveTouch,
    /// A post-only limit order one tick inside the spread (at the touch when the spread is one tick).
    PassiveInside,
}

impl Tactic {
    /// "aggressive" or "passive" (the ledger's `tactic`), with the variant for the log.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Tactic::Aggressive => "aggressive",
            Tactic::PassiveTouch => "passive",
            Tactic::PassiveInside => "passive_inside",
        }
    }
}

/// The models of one slot.
pub struct SlotModels {
    bundle: Bundle,
    sources: Vec<Source>,
    row: Vec<f64>,
    maml: Option<(MamlModel, Vec<usize>)>,
    has_iel: bool,
    /// SHA-256 of the manifest (the bundle's identity in the ledger).
    pub sha256: String,
    /// "signal" plus "+maml", "+iel" when present: what the status table shows.
    pub label: String,
    /// The signal model's GP tree (apex.gp_tree JSON): the DNA a recycling request carries.
    pub gp_tree: Option<String>,
}

impl std::fmt::Debug for SlotModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotModels").field("label", &self.label).field("sha256", &self.sha256).finish()
    }
}

/// The bars the engine computes features on: its `engine.bar` and the feature options of the bundles it started with.
/// Every bundle it loads must have been made on such bars, as far as its features read them (see [`EngineBars::refuse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineBars {
    /// `engine.bar` in seconds.
    pub bar_seconds: u64,
    /// rv over `rv_bars` and VMD of `vmd_modes` over `vmd_window`: each set by the first starting bundle that reads it,
    /// else by the first that records its bars (a challenger made from the same features then fits), else the
    /// `features` defaults.
    pub options: FeatureOptions,
    /// Which bundle set `rv_bars` and the VMD options, for messages.
    pub rv_from: Option<String>,
    pub vmd_from: Option<String>,
    /// `engine.book_depth`: the levels of the book the engine keeps (a feature reading more means something else).
    pub book_depth: u32,
}

impl Default for EngineBars {
    /// One-minute bars (`engine.bar`'s default) with the `features` defaults.
    fn default() -> EngineBars {
        EngineBars {
            bar_seconds: 60,
            options: FeatureOptions::default(),
            rv_from: None,
            vmd_from: None,
            book_depth: 50,
        }
    }
}

/// `seconds` in nanoseconds, as the feature engine counts time.
fn nanos(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX).saturating_mul(SECOND)
}

/// Whether `features` read a realized volatility (`rv` or a higher timeframe's `rv_5m`).
fn reads_rv(features: &[String]) -> bool {
    features.iter().any(|f| f == "rv" || f.starts_with("rv_"))
}

/// Whether `features` read a VMD mode (`vmd_1` ...).
fn reads_vmd(features: &[String]) -> bool {
    features.iter().any(|f| f.starts_with("vmd_"))
}

impl EngineBars {
    /// `engine.bar` of `bar_seconds` and a book of `book_depth` levels, with the options of the first bundle (by
    /// `(name, manifest)`) that reads rv, and of the first that reads a VMD mode; a bundle that does not record its
    /// bars counts as made with the defaults. Options no bundle reads come from the first bundle recording its bars.
    #[must_use]
    pub fn of_bundles<'a>(
        bar_seconds: u64,
        book_depth: u32,
        bundles: impl IntoIterator<Item = (&'a str, &'a Manifest)>,
    ) -> EngineBars {
        let mut bars = EngineBars { bar_seconds, book_depth, ..EngineBars::default() };
        let (mut recorded, mut rv, mut vmd) = (None, None, None);
        for (name, manifest) in bundles {
            let made = manifest.bars.as_ref().map(|b| b.options);
            recorded = recorded.or(made.map(|options| (name, options)));
            let made = (name, made.unwrap_or_default());
            rv = rv.or(reads_rv(&manifest.features).then_some(made));
            vmd = vmd.or(reads_vmd(&manifest.features).then_some(made));
        }
        if let Some((name, options)) = rv.or(recorded) {
            bars.options.rv_bars = options.rv_bars;
            bars.rv_from = Some(name.to_owned());
        }
        if let Some((name, options)) = vmd.or(recorded) {
            bars.options.vmd_modes = options.vmd_modes;
            bars.options.vmd_window = options.vmd_window;
            bars.vmd_from = Some(name.to_owned());
        }
        bars
    }

    /// The bar parameters the engine computes for bundles reading `features`: these bars and options, with the
    /// standard higher timeframes, and VMD only when a feature is a `vmd_*` column.
    #[must_use]
    pub fn params(&self, features: &[String]) -> BarParams {
        let mut params = BarParams::with_options(nanos(self.bar_seconds), &self.options);
        if !reads_vmd(features) {
            params.vmd = None;
        }
        params
    }

    /// Why a bundle made on `made` (`None`: not recorded) and reading `features` cannot run on these bars: another
    /// bar length, or another rv window or VMD than it reads. `None` when it can.
    #[must_use]
    pub fn refuse(&self, made: Option<&BarSpec>, features: &[String]) -> Option<String> {
        let engine_bar = apex_features::duration_label(nanos(self.bar_seconds));
        let set_by = |from: &Option<String>| {
            from.as_ref().map_or_else(|| "the features default".to_owned(), |name| format!("set by {name}"))
        };
        let options = made.map(|b| b.options).unwrap_or_default();
        let what = made.map_or_else(
            || "made with the default feature options (it records none)".to_owned(),
            |b| format!("made on {}", b.describe()),
        );
        if let Some(made) = made.filter(|b| b.bar_seconds != self.bar_seconds) {
            let bar = apex_features::duration_label(nanos(made.bar_seconds));
            return Some(format!(
                "was {what}; engine.bar is {engine_bar}: set engine.bar = \"{bar}\" in the config, or give a bundle made \
                 on {engine_bar} bars"
            ));
        }
        let deepest = features.iter().filter_map(|f| apex_features::bars::book_levels_read(f).map(|n| (n, f))).max();
        if let Some((levels, feature)) = deepest.filter(|(n, _)| *n > self.book_depth as usize) {
            return Some(format!(
                "reads {feature} ({levels} book levels), but engine.book_depth is {}: set engine.book_depth = 50 in \
                 the config",
                self.book_depth
            ));
        }
        let remedy = "export every slot's bundle from features made with the same --rv-bars, --vmd-modes and \
                      --vmd-window";
        if reads_rv(features) && options.rv_bars != self.options.rv_bars {
            return Some(format!(
                "was {what}; it reads rv, which the engine computes over {} bars ({}): {remedy}",
                self.options.rv_bars,
                set_by(&self.rv_from)
            ));
        }
        if reads_vmd(features)
            && (options.vmd_modes, options.vmd_window) != (self.options.vmd_modes, self.options.vmd_window)
        {
            return Some(format!(
                "was {what}; it reads VMD modes, which the engine computes as {} modes over {} bars ({}): {remedy}",
                self.options.vmd_modes,
                self.options.vmd_window,
                set_by(&self.vmd_from)
            ));
        }
        None
    }
}

impl SlotModels {
    /// Loads and verifies the bundle in `dir` for slot `slot` on a feature engine whose rows are `engine_names`,
    /// computed on `bars`.
    ///
    /// # Errors
    /// [`NexusError::Bundle`]: a missing or tampered bundle, models made on other bars ([`EngineBars::refuse`]), a
    /// feature neither the engine nor the observation gives, no `signal` GP model, a MAML model that cannot be adapted.
    pub fn load(
        slot: &str,
        dir: &Path,
        symbol: &str,
        engine_names: &[String],
        bars: &EngineBars,
    ) -> Result<SlotModels, NexusError> {
        let fail = |message: String| NexusError::Bundle { slot: slot.into(), path: dir.to_owned(), message };
        let mut known: Vec<String> = engine_names.to_vec();
        known.extend(OBSERVATION_NAMES.iter().map(|s| (*s).to_owned()));
        let mut bundle = Bundle::load(dir, None).map_err(|e| fail(e.to_string().replace('\n', " ")))?;
        if let Some(why) = bars.refuse(bundle.manifest().bars.as_ref(), bundle.features()) {
            return Err(fail(why));
        }
        if let Some(missing) = bundle.features().iter().find(|f| !known.contains(f)) {
            return Err(fail(format!("needs feature {missing:?}, which the engine does not compute")));
        }
        if bundle.manifest().symbol != symbol {
            return Err(fail(format!("trades {}, the slot trades {symbol}", bundle.manifest().symbol)));
        }
        bundle.model_mut("signal").map_err(|e| fail(e.to_string()))?;
        let sources = bundle
            .features()
            .iter()
            .map(|name| match engine_names.iter().position(|n| n == name) {
                Some(i) => Source::Bar(i),
                None => Source::Observation(OBSERVATION_NAMES.iter().position(|n| n == name).unwrap_or(0)),
            })
            .collect::<Vec<_>>();
        let maml = match bundle.models().iter().find(|m| m.entry().name == "maml") {
            Some(model) => {
                let entry = model.entry().clone();
                let model = MamlModel::from_entry(dir, &entry).map_err(|e| fail(e.to_string()))?;
                let columns =
                    entry.features.iter().map(|f| bundle.features().iter().position(|n| n == f).unwrap_or(0)).collect();
                Some((model, columns))
            }
            None => None,
        };
        let has_iel = bundle.models().iter().any(|m| m.entry().name == "iel");
        let manifest = std::fs::read(dir.join(apex_infer::MANIFEST)).map_err(|e| fail(e.to_string()))?;
        let mut label = "signal".to_owned();
        if maml.is_some() {
            label.push_str("+maml");
        }
        if has_iel {
            label.push_str("+iel");
        }
        let row = vec![f64::NAN; sources.len()];
        let gp_tree = bundle
            .models()
            .iter()
            .find(|m| m.entry().name == "signal" && m.entry().kind == apex_infer::ModelKind::Gp)
            .and_then(|m| std::fs::read_to_string(dir.join(&m.entry().file)).ok());
        let sha256 = apex_infer::sha256_hex(&manifest);
        Ok(SlotModels { bundle, sources, row, maml, has_iel, sha256, label, gp_tree })
    }

    /// Runs apex-infer's sample rows through every model of the bundle (shapes, finite decisions); the models are
    /// reset afterwards, so a checked bundle starts as a fresh one.
    ///
    /// # Errors
    /// [`NexusError::Bundle`] naming the model and row that failed.
    pub fn check(&mut self, slot: &str) -> Result<(), NexusError> {
        let dir = self.bundle.dir().to_owned();
        self.bundle.check().map(|_| ()).map_err(|e| NexusError::Bundle {
            slot: slot.into(),
            path: dir,
            message: e.to_string().replace('\n', " "),
        })
    }

    fn fill_row(&mut self, bar: &[f64], observation: Option<&Observation>) {
        for (value, source) in self.row.iter_mut().zip(&self.sources) {
            *value = match source {
                Source::Bar(i) => bar.get(*i).copied().unwrap_or(f64::NAN),
                Source::Observation(i) => observation.map_or(f64::NAN, |o| o[*i]),
            };
        }
    }

    /// One closed bar: the GP signal (NaN becomes 0: no view) and the MAML model's probability that the return over
    /// its horizon is positive, after adapting on the latest labelled bars (`None` without a MAML model or while an
    /// input is missing).
    ///
    /// # Errors
    /// [`NexusError::Runtime`] when a model fails to run.
    pub fn on_bar(&mut self, bar: &[f64], close: f64) -> Result<(f64, Option<f64>), NexusError> {
        self.fill_row(bar, None);
        let run = |e: apex_infer::InferError| NexusError::Runtime(format!("model: {e}"));
        let signal = self.bundle.model_mut("signal").map_err(run)?.decide(&self.row).map_err(run)?[0];
        let signal = if signal.is_finite() { signal } else { 0.0 };
        let p_up = match &mut self.maml {
            Some((model, columns)) => {
                let input: Vec<f64> = columns.iter().map(|&c| self.row[c]).collect();
                model.push(&input, close).map(|[logit, _]| 1.0 / (1.0 + (-logit).exp()))
            }
            None => None,
        };
        Ok((signal, p_up))
    }

    /// The tactic for an order given the execution observation: the IEL policy's most likely action ("wait" rests
    /// at the touch: the engine makes one decision per order), aggressive without an IEL model.
    ///
    /// # Errors
    /// [`NexusError::Runtime`] when the policy fails to run.
    pub fn tactic(&mut self, bar: &[f64], observation: &Observation) -> Result<Tactic, NexusError> {
        if !self.has_iel {
            return Ok(Tactic::Aggressive);
        }
        debug_assert_eq!(observation.len(), OBSERVATION_LEN);
        self.fill_row(bar, Some(observation));
        let run = |e: apex_infer::InferError| NexusError::Runtime(format!("iel: {e}"));
        let logits = self.bundle.model_mut("iel").map_err(run)?.decide(&self.row).map_err(run)?;
        let best = logits
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        Ok(match best {
            0 => Tactic::Aggressive,
            2 => Tactic::PassiveInside,
            _ => Tactic::PassiveTouch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(features: &[&str], bars: Option<(u64, FeatureOptions)>) -> Manifest {
        let mut manifest = Manifest::new("BTCUSDT", "a", "test");
        manifest.features = features.iter().map(|f| (*f).to_owned()).collect();
        manifest.bars = bars.map(|(bar_seconds, options)| BarSpec { bar_seconds, options });
        manifest
    }

    fn names(features: &[&str]) -> Vec<String> {
        features.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn the_first_bundle_reading_rv_or_vmd_sets_those_options() {
        let clv = manifest(&["clv"], Some((60, FeatureOptions::new(7, 5, 20))));
        let rv = manifest(&["rv_5m"], Some((60, FeatureOptions::new(10, 0, 64))));
        let vmd = manifest(&["vmd_2"], Some((60, FeatureOptions::new(99, 4, 32))));
        let unrecorded = manifest(&["rv", "vmd_1"], None);
        let bars = EngineBars::of_bundles(60, 50, [("a", &clv), ("b", &rv), ("c", &vmd), ("d", &unrecorded)]);
        assert_eq!(bars.options, FeatureOptions::new(10, 4, 32));
        assert_eq!((bars.rv_from.as_deref(), bars.vmd_from.as_deref()), (Some("b"), Some("c")));
        // What no bundle reads comes from the first that records its bars: a challenger from the same table fits.
        let recorded = EngineBars::of_bundles(60, 50, [("a", &clv), ("b", &rv)]);
        assert_eq!(recorded.options, FeatureOptions::new(10, 5, 20));
        assert_eq!(recorded.vmd_from.as_deref(), Some("a"));
        let defaults = EngineBars::of_bundles(300, 50, [("d", &unrecorded)]);
        assert_eq!((defaults.bar_seconds, defaults.options), (300, FeatureOptions::default()));
        let params = bars.params(&names(&["clv"]));
        assert_eq!((params.interval, params.rv_window, params.vmd), (60 * SECOND, 10, None));
        assert_eq!(bars.params(&names(&["vmd_1"])).vmd.map(|v| (v.modes, v.window)), Some((4, 32)));
    }

    #[test]
    fn a_bundle_is_refused_only_for_what_its_features_read() {
        let bars = EngineBars {
            bar_seconds: 60,
            options: FeatureOptions::new(10, 3, 64),
            rv_from: Some("slot a's bundle".into()),
            vmd_from: None,
            book_depth: 50,
        };
        let made = |bar_seconds, rv, modes| BarSpec { bar_seconds, options: FeatureOptions::new(rv, modes, 64) };
        assert_eq!(bars.refuse(Some(&made(60, 10, 3)), &names(&["rv", "vmd_1"])), None);
        assert_eq!(bars.refuse(Some(&made(60, 30, 0)), &names(&["clv"])), None, "reads neither rv nor VMD");
        let why = bars.refuse(Some(&made(300, 10, 3)), &names(&["clv"])).unwrap();
        assert!(
            why.starts_with(
                "was made on 5m bars (rv_bars 10, vmd_modes 3, vmd_window 64); engine.bar is 1m: set \
                             engine.bar = \"5m\" in the config"
            ),
            "{why}"
        );
        let why = bars.refuse(Some(&made(60, 30, 3)), &names(&["rv_1h"])).unwrap();
        assert!(why.contains("it reads rv, which the engine computes over 10 bars (set by slot a's bundle)"), "{why}");
        let why = bars.refuse(None, &names(&["rv"])).unwrap();
        assert!(why.starts_with("was made with the default feature options (it records none)"), "{why}");
        let why = bars.refuse(Some(&made(60, 10, 2)), &names(&["vmd_1"])).unwrap();
        assert!(why.contains("as 3 modes over 64 bars (the features default)"), "{why}");
        assert_eq!(bars.refuse(None, &names(&["clv", "vmd_1"])), None, "an unrecorded bundle is made on defaults");
        let shallow = EngineBars { book_depth: 1, ..bars.clone() };
        assert_eq!(shallow.refuse(None, &names(&["ofi_l1_sum", "spread_bps_mean"])), None);
        let why = shallow.refuse(None, &names(&["ofi_l1_sum", "pressure_5_last"])).unwrap();
        assert!(why.starts_with("reads pressure_5_last (5 book levels), but engine.book_depth is 1"), "{why}");
    }
}
