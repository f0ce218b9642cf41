//! The Dominant Strategy Genome: every population parameter of the simulated market, named, bounded, with defaults.
//!
//! One table (`PARAMS`) is the single source of the names, bounds, defaults and docs: the typed struct, the flat
//! vector CMA-ES works on, the JSON document and its JSON Schema are all generated from it, so they cannot disagree.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// Name of the JSON document schema and its version.
pub const SCHEMA: &str = "apex.dsg";
pub const VERSION: u64 = 1;

/// Errors reading or building a DSG.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DsgError {
    #[error("DSG vector has {got} values, expected {expected} (one per parameter, in PARAMS order)")]
    VectorLength { got: usize, expected: usize },
    #[error("DSG parameter '{name}' = {value} is outside its bounds [{lo}, {hi}]")]
    OutOfBounds { name: &'static str, value: f64, lo: f64, hi: f64 },
    #[error("DSG parameter '{name}' is not a finite number")]
    NotFinite { name: String },
    #[error("unknown DSG parameter '{0}' (see the DSG JSON Schema for the names)")]
    UnknownParam(String),
    #[error("DSG document: {0}")]
    Document(String),
}

/// One named parameter: its bounds, default and meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub lo: f64,
    pub hi: f64,
    pub default: f64,
    /// Counts are searched as reals by CMA-ES and rounded by the simulator.
    pub integer: bool,
    pub doc: &'static str,
}

macro_rules! dsg {
    ($( $field:ident : $name:literal, $lo:expr, $hi:expr, $default:expr, $integer:expr, $doc:literal; )*) => {
        /// The typed DSG; field order is the flat-vector order.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Dsg { $( #[doc = $doc] pub $field: f64, )* }

        /// Names, bounds, defaults and docs of every DSG parameter, in flat-vector order.
        pub const PARAMS: &[ParamSpec] = &[
            $( ParamSpec { name: $name, lo: $lo, hi: $hi, default: $default, integer: $integer, doc: $doc }, )*
        ];

        impl Default for Dsg {
            fn default() -> Dsg { Dsg { $( $field: $default, )* } }
        }

        impl Dsg {
            /// The parameters as a flat vector in `PARAMS` order.
            pub fn to_vector(&self) -> Vec<f64> { vec![ $( self.$field, )* ] }

            fn from_slice_unchecked(v: &[f64]) -> Dsg {
                let mut values = v.iter().copied();
                Dsg { $( $field: values.next().unwrap_or($default), )* }
            }
        }
    };
}

dsg! {
    fv_vol_bps: "fair_value.vol_bps_per_min", 0.5, 60.0, 8.0, false,
        "volatility of the latent fair value, basis points per sqrt(minute)";
    fv_jump_rate: "fair_value.jumps_per_hour", 0.0, 30.0, 2.0, false,
        "Poisson rate of fair-value jumps per hour";
    fv_jump_bps: "fair_value.jump_bps", 0.0, 300.0, 25.0, false,
        "standard deviation of a fair-value jump, basis points";
    fv_vol_of_vol: "fair_value.vol_of_vol", 0.0, 3.0, 0.8, false,
        "volatility of the log of the fair value's volatility (stochastic volatility: clustering)";
    fv_vol_halflife_min: "fair_value.vol_halflife_min", 0.5, 1440.0, 20.0, false,
        "half-life in minutes of volatility shocks";
    noise_agents: "noise.agents", 1.0, 400.0, 60.0, true,
        "number of zero-intelligence noise traders";
    noise_limit_rate: "noise.limit_rate", 0.01, 5.0, 0.5, false,
        "limit orders per agent per second";
    noise_market_rate: "noise.market_rate", 0.0, 2.0, 0.1, false,
        "market orders per agent per second";
    noise_cancel_rate: "noise.cancel_rate", 0.001, 10.0, 0.2, false,
        "cancellation hazard of each resting noise order per second (mean lifetime 1/rate)";
    noise_offset_bps: "noise.offset_bps", 0.01, 100.0, 4.0, false,
        "mean distance in basis points of a limit order behind the opposite best (exponential)";
    noise_size_lots: "noise.size_lots", 1.0, 1000.0, 8.0, false,
        "minimum order size in lots of the Pareto size law";
    noise_size_tail: "noise.size_tail", 1.05, 4.0, 1.6, false,
        "Pareto tail index of order sizes (smaller = heavier tail)";
    noise_latency_ms: "noise.latency_ms", 0.1, 1000.0, 60.0, false,
        "market-data and order-entry latency of noise traders, milliseconds each way";
    noise_clip_bps: "noise.reference_clip_bps", 0.5, 200.0, 10.0, false,
        "the opposite best a noise limit price is set from is clipped to within this many basis points of the last mid sample";
    noise_metaorders: "noise.metaorders", 0.0, 50.0, 2.0, true,
        "metaorders the noise market flow splits at once (0 = independent signs); fewer = stronger sign memory";
    noise_metaorder_tail: "noise.metaorder_tail", 1.05, 3.0, 1.3, false,
        "Pareto tail index of metaorder lengths in child orders: the sign ACF decays like lag^(1 - tail)";
    mm_agents: "market_maker.agents", 0.0, 40.0, 3.0, true,
        "number of Avellaneda-Stoikov market makers";
    mm_value_weight: "market_maker.value_weight", 0.0, 1.0, 1.0, false,
        "weight of the fair value (vs the book mid) in the price makers quote around";
    mm_value_noise_bps: "market_maker.value_noise_bps", 0.0, 50.0, 0.5, false,
        "error of a maker's fair-value estimate at each requote, basis points";
    mm_gamma: "market_maker.gamma", 0.0001, 1.0, 0.01, false,
        "risk aversion per basis point squared: inventory skew and spread widening";
    mm_kappa: "market_maker.kappa", 0.05, 50.0, 1.0, false,
        "order-arrival decay per basis point of distance: larger = tighter quotes";
    mm_horizon_s: "market_maker.horizon_s", 1.0, 3600.0, 60.0, false,
        "inventory horizon in seconds (the T - t of Avellaneda-Stoikov)";
    mm_quote_lots: "market_maker.quote_lots", 1.0, 2000.0, 25.0, false,
        "size of each quote in lots";
    mm_refresh_ms: "market_maker.refresh_ms", 10.0, 10000.0, 300.0, false,
        "mean time between requotes, milliseconds";
    mm_max_inventory: "market_maker.max_inventory_lots", 1.0, 100000.0, 50000.0, false,
        "inventory beyond which a maker only quotes the reducing side";
    mm_latency_ms: "market_maker.latency_ms", 0.05, 200.0, 2.0, false,
        "latency of market makers, milliseconds each way";
    mm_take_lots: "market_maker.take_lots", 0.0, 100000.0, 2000.0, false,
        "size of the IOC a maker sends at a quote it sees beyond value ± its half-spread (0 = never takes)";
    mm_vol_cap: "market_maker.vol_cap", 1.0, 20.0, 4.0, false,
        "cap of the volatility makers quote with, as a multiple of the fair value's";
    mom_agents: "momentum.agents", 0.0, 200.0, 12.0, true,
        "number of momentum (trend-following) traders";
    mom_rate: "momentum.rate", 0.001, 2.0, 0.05, false,
        "decisions per agent per second";
    mom_lookback_s: "momentum.lookback_s", 1.0, 3600.0, 60.0, false,
        "lookback of the trend signal, seconds";
    mom_threshold_bps: "momentum.threshold_bps", 0.0, 200.0, 4.0, false,
        "minimum trend in basis points to act";
    mom_size_lots: "momentum.size_lots", 1.0, 1000.0, 10.0, false,
        "minimum order size in lots (Pareto with the noise tail index)";
    mom_latency_ms: "momentum.latency_ms", 0.1, 1000.0, 25.0, false,
        "latency of momentum traders, milliseconds each way";
    fund_agents: "fundamentalist.agents", 0.0, 200.0, 20.0, true,
        "number of mean-reversion (fundamentalist) traders";
    fund_rate: "fundamentalist.rate", 0.001, 2.0, 0.2, false,
        "decisions per agent per second";
    fund_noise_bps: "fundamentalist.noise_bps", 0.0, 500.0, 15.0, false,
        "noise of a fundamentalist's private estimate of the fair value, basis points";
    fund_threshold_bps: "fundamentalist.threshold_bps", 0.0, 200.0, 6.0, false,
        "minimum mispricing in basis points to act";
    fund_size_lots: "fundamentalist.size_lots", 1.0, 1000.0, 10.0, false,
        "minimum order size in lots (Pareto with the noise tail index)";
    fund_latency_ms: "fundamentalist.latency_ms", 0.1, 1000.0, 40.0, false,
        "latency of fundamentalists, milliseconds each way";
    inf_agents: "informed.agents", 0.0, 50.0, 4.0, true,
        "number of informed traders";
    inf_rate: "informed.rate", 0.001, 2.0, 0.1, false,
        "decisions per agent per second";
    inf_lookahead_s: "informed.lookahead_s", 0.0, 1800.0, 30.0, false,
        "how far ahead informed traders see the latent fair value, seconds";
    inf_threshold_bps: "informed.threshold_bps", 0.0, 200.0, 5.0, false,
        "minimum expected move in basis points to act";
    inf_size_lots: "informed.size_lots", 1.0, 1000.0, 15.0, false,
        "minimum order size in lots (Pareto with the noise tail index)";
    inf_latency_ms: "informed.latency_ms", 0.05, 1000.0, 5.0, false,
        "latency of informed traders, milliseconds each way";
}

impl Dsg {
    /// Builds a DSG from a flat vector, rejecting wrong length, non-finite values and values out of bounds.
    ///
    /// # Errors
    /// `VectorLength`, `NotFinite` or `OutOfBounds`.
    pub fn from_vector(values: &[f64]) -> Result<Dsg, DsgError> {
        if values.len() != PARAMS.len() {
            return Err(DsgError::VectorLength { got: values.len(), expected: PARAMS.len() });
        }
        for (spec, &value) in PARAMS.iter().zip(values) {
            check(spec, value)?;
        }
        Ok(Dsg::from_slice_unchecked(values))
    }

    /// Builds a DSG from any vector of the right length by clipping each value into its bounds (NaN becomes the
    /// default), so an optimizer's proposal is always a valid market.
    ///
    /// # Errors
    /// `VectorLength` only.
    pub fn from_vector_clipped(values: &[f64]) -> Result<Dsg, DsgError> {
        if values.len() != PARAMS.len() {
            return Err(DsgError::VectorLength { got: values.len(), expected: PARAMS.len() });
        }
        let clipped: Vec<f64> = PARAMS
            .iter()
            .zip(values)
            .map(|(spec, &v)| if v.is_nan() { spec.default } else { v.clamp(spec.lo, spec.hi) })
            .collect();
        Ok(Dsg::from_slice_unchecked(&clipped))
    }

    /// Lower and upper bounds in flat-vector order.
    pub fn bounds() -> (Vec<f64>, Vec<f64>) {
        (PARAMS.iter().map(|p| p.lo).collect(), PARAMS.iter().map(|p| p.hi).collect())
    }

    /// The JSON document: `{"schema": "apex.dsg", "version": 1, "params": {name: value, ...}}`.
    pub fn to_json(&self) -> Value {
        let params: Map<String, Value> =
            PARAMS.iter().zip(self.to_vector()).map(|(spec, v)| (spec.name.to_owned(), json!(v))).collect();
        json!({"schema": SCHEMA, "version": VERSION, "params": params})
    }

    /// Reads the JSON document; missing parameters take their defaults, unknown names and out-of-bounds values are
    /// errors (a typo must not silently fall back to a default).
    ///
    /// # Errors
    /// `Document` for a wrong schema/version/shape, `UnknownParam`, `NotFinite`, `OutOfBounds`.
    pub fn from_json(doc: &Value) -> Result<Dsg, DsgError> {
        if doc.get("schema").and_then(Value::as_str) != Some(SCHEMA) {
            // The value as JSON text (`"apex.causal"`), never Rust's debug form of it (`Some("apex.causal")`).
            let found = doc.get("schema").map_or_else(|| "no \"schema\" field".to_owned(), Value::to_string);
            return Err(DsgError::Document(format!("expected \"schema\": \"{SCHEMA}\", found {found}")));
        }
        match doc.get("version") {
            Some(version) if version.as_u64() == Some(VERSION) => {}
            Some(version) => {
                return Err(DsgError::Document(format!(
                    "version {version} is not supported (this apexctl reads version {VERSION})"
                )));
            }
            None => {
                return Err(DsgError::Document(format!("no \"version\" field (this apexctl reads version {VERSION})")));
            }
        }
        let params = doc
            .get("params")
            .and_then(Value::as_object)
            .ok_or_else(|| DsgError::Document("\"params\" must be an object of name: number".to_owned()))?;
        let given: BTreeMap<&str, &Value> = params.iter().map(|(k, v)| (k.as_str(), v)).collect();
        if let Some(unknown) = given.keys().find(|name| !PARAMS.iter().any(|p| p.name == **name)) {
            return Err(DsgError::UnknownParam((*unknown).to_owned()));
        }
        let mut values = Vec::with_capacity(PARAMS.len());
        for spec in PARAMS {
            let value = match given.get(spec.name) {
                None => spec.default,
                Some(v) => v.as_f64().ok_or_else(|| DsgError::NotFinite { name: spec.name.to_owned() })?,
            };
            values.push(value);
        }
        Dsg::from_vector(&values)
    }

    /// Reads the JSON document from text.
    ///
    /// # Errors
    /// `Document` for text that is not JSON, otherwise as [`Dsg::from_json`].
    pub fn from_json_str(text: &str) -> Result<Dsg, DsgError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| DsgError::Document(format!("not valid JSON: {e}")))?;
        Dsg::from_json(&doc)
    }

    /// The DSG of an optional JSON document: `None` is the default DSG (what every binding taking a DSG reads).
    ///
    /// # Errors
    /// As [`Dsg::from_json_str`].
    pub fn from_json_or_default(text: Option<&str>) -> Result<Dsg, DsgError> {
        text.map_or_else(|| Ok(Dsg::default()), Dsg::from_json_str)
    }

    /// JSON Schema (draft 2020-12) of the document, generated from `PARAMS`.
    pub fn json_schema() -> Value {
        let properties: Map<String, Value> = PARAMS
            .iter()
            .map(|p| {
                let doc = if p.integer { format!("{} (rounded to a whole number)", p.doc) } else { p.doc.to_owned() };
                (
                    p.name.to_owned(),
                    json!({"type": "number", "minimum": p.lo, "maximum": p.hi, "default": p.default, "description": doc}),
                )
            })
            .collect();
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://apexctl.dev/schemas/dsg.schema.json",
            "title": "Dominant Strategy Genome",
            "description": "Parameters of the agent populations of the apex-sim market; missing parameters take their defaults.",
            "type": "object",
            "required": ["schema", "version", "params"],
            "additionalProperties": false,
            "properties": {
                "schema": {"const": SCHEMA},
                "version": {"const": VERSION},
                "params": {"type": "object", "additionalProperties": false, "properties": properties},
            },
        })
    }

    /// A count parameter as a whole number of agents.
    pub fn count(value: f64) -> usize {
        // Bounds are checked on construction, so the value is finite and non-negative.
        value.round().max(0.0) as usize
    }
}

fn check(spec: &ParamSpec, value: f64) -> Result<(), DsgError> {
    if !value.is_finite() {
        return Err(DsgError::NotFinite { name: spec.name.to_owned() });
    }
    if value < spec.lo || value > spec.hi {
        return Err(DsgError::OutOfBounds { name: spec.name, value, lo: spec.lo, hi: spec.hi });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_inside_bounds_and_names_unique() {
        let mut names = std::collections::BTreeSet::new();
        for p in PARAMS {
            assert!(p.lo <= p.default && p.default <= p.hi, "{}", p.name);
            assert!(names.insert(p.name), "duplicate {}", p.name);
        }
        assert_eq!(Dsg::default().to_vector().len(), PARAMS.len());
    }

    #[test]
    fn vector_and_json_round_trip() {
        let mut v = Dsg::default().to_vector();
        v[PARAMS.iter().position(|p| p.name == "noise.agents").unwrap()] = 17.0;
        let dsg = Dsg::from_vector(&v).unwrap();
        assert_eq!(Dsg::from_json(&dsg.to_json()).unwrap(), dsg);
    }

    #[test]
    fn bad_documents_are_named_errors() {
        let unknown = json!({"schema": SCHEMA, "version": 1, "params": {"noise.agentz": 3}});
        assert_eq!(Dsg::from_json(&unknown), Err(DsgError::UnknownParam("noise.agentz".into())));
        let out = json!({"schema": SCHEMA, "version": 1, "params": {"noise.agents": 1e9}});
        assert!(matches!(Dsg::from_json(&out), Err(DsgError::OutOfBounds { name: "noise.agents", .. })));
        let newer = json!({"schema": SCHEMA, "version": 2, "params": {}});
        assert!(matches!(Dsg::from_json(&newer), Err(DsgError::Document(_))));
        assert!(matches!(Dsg::from_vector(&[1.0]), Err(DsgError::VectorLength { got: 1, .. })));
        // Messages quote the document's JSON, never Rust's debug form (`Some("apex.causal")`, `None`).
        let message = |doc: Value| Dsg::from_json(&doc).unwrap_err().to_string();
        assert!(message(json!({"schema": "apex.causal"})).ends_with("found \"apex.causal\""));
        assert!(message(json!({"version": 1})).ends_with("found no \"schema\" field"));
        assert!(message(newer).contains(": version 2 is not supported"));
        assert!(message(json!({"schema": SCHEMA, "version": "1"})).contains("version \"1\" is not supported"));
        assert!(message(json!({"schema": SCHEMA})).contains("no \"version\" field"));
    }

    #[test]
    fn clipping_makes_any_vector_valid() {
        let wild: Vec<f64> = (0..PARAMS.len()).map(|i| if i % 2 == 0 { -1e12 } else { f64::NAN }).collect();
        let dsg = Dsg::from_vector_clipped(&wild).unwrap();
        assert!(Dsg::from_vector(&dsg.to_vector()).is_ok());
    }
}
