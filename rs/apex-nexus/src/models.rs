//! A slot's models as the engine runs them: the bundle (GP signal, IEL tactic), the MAML return model with its online
//! adaptation, and the mapping from the streaming engine's bar row and the execution observation to the bundle's row.

use std::path::Path;

use apex_features::bars::BarParams;
use apex_features::execution::{OBSERVATION_LEN, OBSERVATION_NAMES, Observation};
use apex_infer::Bundle;
use apex_infer::maml::MamlModel;

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

/// The bar parameters the engine computes for a bundle: `bar` with the standard higher timeframes, and VMD only when
/// the bundle reads a `vmd_*` column.
#[must_use]
pub fn bar_params(bar_ns: i64, features: &[String]) -> BarParams {
    let mut params = BarParams::new(bar_ns);
    if !features.iter().any(|f| f.starts_with("vmd_")) {
        params.vmd = None;
    }
    params
}

impl SlotModels {
    /// Loads and verifies the bundle in `dir` for slot `slot` on a feature engine whose rows are `engine_names`.
    ///
    /// # Errors
    /// [`NexusError::Bundle`]: a missing or tampered bundle, a feature neither the engine nor the observation gives,
    /// no `signal` GP model, a MAML model that cannot be adapted.
    pub fn load(slot: &str, dir: &Path, symbol: &str, engine_names: &[String]) -> Result<SlotModels, NexusError> {
        let fail = |message: String| NexusError::Bundle { slot: slot.into(), path: dir.to_owned(), message };
        let mut known: Vec<String> = engine_names.to_vec();
        known.extend(OBSERVATION_NAMES.iter().map(|s| (*s).to_owned()));
        let mut bundle = Bundle::load(dir, None).map_err(|e| fail(e.to_string().replace('\n', " ")))?;
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
