//! Bindings of the `apex-sim` execution environment: a batch of IEL environments stepped with the GIL released.

use apex_core::Side;
use apex_sim::SimError;
use apex_sim::batch::preset_config;
use apex_sim::execution::{ACTION_NAMES, ExecBatch, ExecConfig, OBSERVATION_LEN, OBSERVATION_NAMES, Observation};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::run_detached;
use crate::params::merged;
use crate::sim::dsg_from;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ExecEnv>()
}

/// `n_envs` execution environments of one market (a DSG and an instrument preset) and one parent order, stepped in
/// parallel. Actions: 0 aggressive, 1 passive at the touch, 2 passive inside the spread, 3 wait.
#[pyclass(module = "apexctl._core")]
pub struct ExecEnv {
    batch: ExecBatch,
}

fn observations<'py>(py: Python<'py>, rows: &[Observation]) -> Bound<'py, PyArray2<f64>> {
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Array2::from_shape_vec((rows.len(), OBSERVATION_LEN), flat).expect("rows x observation length").into_pyarray(py)
}

#[pymethods]
impl ExecEnv {
    #[new]
    #[pyo3(signature = (symbol="BTCUSDT", n_envs=1, *, dsg_json=None, side="buy", parallel=true, **params))]
    fn new(
        py: Python<'_>,
        symbol: &str,
        n_envs: usize,
        dsg_json: Option<&str>,
        side: &str,
        parallel: bool,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ExecEnv> {
        let mut config = merged(ExecConfig::default(), params, "execution")?;
        let mut batch = run_detached(py, || {
            let dsg = dsg_from(dsg_json)?;
            config.side = match side {
                "buy" => Side::Buy,
                "sell" => Side::Sell,
                other => return Err(SimError::Config(format!("side must be 'buy' or 'sell', got '{other}'"))),
            };
            ExecBatch::new(&dsg, &preset_config(symbol, 0)?, &config, n_envs)
        })?;
        batch.parallel = parallel;
        Ok(ExecEnv { batch })
    }

    /// Starts an episode in every environment (one seed each); returns the observations `[n_envs, n_features]`.
    fn reset<'py>(&mut self, py: Python<'py>, seeds: Vec<u64>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let batch = &mut self.batch;
        let rows = run_detached(py, || batch.reset(&seeds))?;
        Ok(observations(py, &rows))
    }

    /// One decision per environment; returns (observations, rewards, dones, info) where info holds one array per
    /// episode total (shortfall_bps, executed_lots, remaining_lots, maker_lots, taker_lots, forced_lots,
    /// unfilled_lots, fees, arrival_mid).
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<bool>>, Bound<'py, PyDict>)>
    {
        let actions = actions.as_slice()?.to_vec();
        let batch = &mut self.batch;
        let results = run_detached(py, || batch.step(&actions))?;
        let rows: Vec<Observation> = results.iter().map(|r| r.observation).collect();
        let rewards = PyArray1::from_vec(py, results.iter().map(|r| r.reward).collect());
        let dones = PyArray1::from_vec(py, results.iter().map(|r| r.done).collect());
        let info = PyDict::new(py);
        let float = |f: fn(&apex_sim::execution::EpisodeInfo) -> f64| {
            PyArray1::from_vec(py, results.iter().map(|r| f(&r.info)).collect())
        };
        let int = |f: fn(&apex_sim::execution::EpisodeInfo) -> i64| {
            PyArray1::from_vec(py, results.iter().map(|r| f(&r.info)).collect())
        };
        info.set_item("shortfall_bps", float(|i| i.shortfall_bps))?;
        info.set_item("fees", float(|i| i.fees))?;
        info.set_item("arrival_mid", float(|i| i.arrival_mid))?;
        info.set_item("executed_lots", int(|i| i.executed_lots))?;
        info.set_item("remaining_lots", int(|i| i.remaining_lots))?;
        info.set_item("maker_lots", int(|i| i.maker_lots))?;
        info.set_item("taker_lots", int(|i| i.taker_lots))?;
        info.set_item("forced_lots", int(|i| i.forced_lots))?;
        info.set_item("unfilled_lots", int(|i| i.unfilled_lots))?;
        Ok((observations(py, &rows), rewards, dones, info))
    }

    /// Names of the observation columns, in order.
    #[getter]
    fn observation_names(&self) -> Vec<&'static str> {
        OBSERVATION_NAMES.to_vec()
    }

    /// Names of the actions, by index.
    #[getter]
    fn action_names(&self) -> Vec<&'static str> {
        ACTION_NAMES.to_vec()
    }

    /// Number of environments.
    #[getter]
    fn n_envs(&self) -> usize {
        self.batch.len()
    }

    /// Decisions per episode (every environment is done after this many steps).
    #[getter]
    fn steps(&self) -> usize {
        self.batch.config().steps()
    }
}
