//! The GP policy: a tree from `apex-gp` run by its streaming evaluator, one row at a time.

use apex_gp::{Limits, Program, StreamingEvaluator};

use crate::{InferError, Policy, check_row};

/// A GP tree as a [`Policy`]: one output, the tree's signal in [-1, 1] (`apex_gp::signal` of its value).
#[derive(Clone, Debug)]
pub struct GpPolicy {
    name: String,
    evaluator: StreamingEvaluator,
}

impl GpPolicy {
    /// Loads a GP tree document and compiles it for rows of `features` (in that order).
    ///
    /// # Errors
    /// `Gp` with every load-time error of [`Program::from_json`] (bad document, unknown feature, limits).
    pub fn from_json<S: AsRef<str>>(
        name: &str,
        text: &str,
        features: &[S],
        limits: &Limits,
    ) -> Result<GpPolicy, InferError> {
        let program = Program::from_json(text, features, limits)
            .map_err(|source| InferError::Gp { model: name.to_owned(), source })?;
        Ok(GpPolicy { name: name.to_owned(), evaluator: StreamingEvaluator::new(&program) })
    }

    /// The signal for one row without allocating: the hot path of the simulator and the live engine.
    ///
    /// # Errors
    /// `Shape` when the row has the wrong length.
    pub fn signal(&mut self, row: &[f64]) -> Result<f64, InferError> {
        check_row(&self.name, self.evaluator.program().inputs().len(), row)?;
        Ok(self.evaluator.push(row))
    }

    /// Number of nodes of the tree.
    pub fn node_count(&self) -> usize {
        self.evaluator.program().node_count()
    }
}

impl Policy for GpPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn features(&self) -> &[String] {
        self.evaluator.program().inputs()
    }

    fn outputs(&self) -> usize {
        1
    }

    fn decide(&mut self, row: &[f64]) -> Result<Vec<f64>, InferError> {
        Ok(vec![self.signal(row)?])
    }

    fn reset(&mut self) {
        self.evaluator.reset();
    }
}
