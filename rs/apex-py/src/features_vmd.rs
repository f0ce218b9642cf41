//! Bindings of `apex_features::vmd`: whole-signal and rolling variational mode decomposition of NumPy arrays.

use apex_features::vmd::{VmdError, VmdParams, rolling_vmd, vmd as decompose};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::columns::values;
use crate::errors::{DataError, IntoPyErr, config_error, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(m, vmd, vmd_rolling);
    Ok(())
}

impl IntoPyErr for VmdError {
    fn into_py_err(self) -> PyErr {
        match self {
            VmdError::NonFinite { .. } => DataError::new_err(self.to_string()),
            VmdError::NoModes
            | VmdError::TooShort { .. }
            | VmdError::BadAlpha(_)
            | VmdError::BadTau(_)
            | VmdError::BadTol(_)
            | VmdError::NoIterations => config_error(self.to_string()),
        }
    }
}

/// Modes (K x N, ascending centre frequency) of the whole `signal`.
#[pyfunction]
#[pyo3(signature = (signal, modes=3, alpha=2000.0, tau=0.0, tol=1e-7, max_iter=500))]
fn vmd<'py>(
    py: Python<'py>,
    signal: PyReadonlyArray1<'py, f64>,
    modes: usize,
    alpha: f64,
    tau: f64,
    tol: f64,
    max_iter: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let signal = values(&signal);
    let params = VmdParams { modes, alpha, tau, tol, max_iter, ..VmdParams::default() };
    let result = run_detached(py, || decompose(&signal, &params))?;
    let shape = (result.modes.len(), signal.len());
    let flat = result.modes.concat();
    Ok(Array2::from_shape_vec(shape, flat).expect("K modes of the signal's length").into_pyarray(py))
}

/// Rolling VMD (N x K): row i is the last value of each mode of the `window` values ending at i, NaN before.
#[pyfunction]
#[pyo3(signature = (series, modes=3, window=64, alpha=2000.0, tau=0.0, tol=1e-7, max_iter=500))]
#[allow(clippy::too_many_arguments)]
fn vmd_rolling<'py>(
    py: Python<'py>,
    series: PyReadonlyArray1<'py, f64>,
    modes: usize,
    window: usize,
    alpha: f64,
    tau: f64,
    tol: f64,
    max_iter: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let series = values(&series);
    let params = VmdParams { modes, window, alpha, tau, tol, max_iter };
    let columns = run_detached(py, || rolling_vmd(&series, &params))?;
    let rows = Array2::from_shape_fn((series.len(), modes), |(i, k)| columns[k][i]);
    Ok(rows.into_pyarray(py))
}
