//! Bindings of `apex-pareto`: NSGA-II selection of a two-objective population, DEAP's result in O(n log n).

use apex_pareto::{MAX_ABS_VALUE, ParetoError, select};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::errors::{DataError, IntoPyErr, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("PARETO_MAX_ABS_VALUE", MAX_ABS_VALUE)?;
    add_functions!(m, pareto_select);
    Ok(())
}

impl IntoPyErr for ParetoError {
    fn into_py_err(self) -> PyErr {
        DataError::new_err(self.to_string())
    }
}

type Selected<'py> = (Bound<'py, PyArray1<usize>>, Bound<'py, PyArray1<usize>>, Bound<'py, PyArray1<f64>>);

/// `deap.tools.selNSGA2(population, k)` for `values` (n x 2, both objectives maximised; `objects[i]` labels the
/// individual of entry i, equal for one individual listed twice): the chosen indices in DEAP's order, the indices of
/// every entry of the fronts sorted, and their crowding distances.
#[pyfunction]
fn pareto_select<'py>(
    py: Python<'py>,
    values: PyReadonlyArray2<'py, f64>,
    objects: Vec<usize>,
    k: usize,
) -> PyResult<Selected<'py>> {
    let view = values.as_array();
    if view.ncols() != 2 {
        return Err(DataError::new_err(format!("values has {} columns, not 2 (one per objective)", view.ncols())));
    }
    let pairs: Vec<[f64; 2]> = view.rows().into_iter().map(|row| [row[0], row[1]]).collect();
    let selection = run_detached(py, || select(&pairs, &objects, k))?;
    Ok((selection.chosen.into_pyarray(py), selection.ranked.into_pyarray(py), selection.crowding.into_pyarray(py)))
}
