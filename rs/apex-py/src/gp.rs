//! Bindings of `apex-gp`: batch evaluation of many JSON trees over NumPy columns, streaming parity runs, validation.

use std::borrow::Cow;

use apex_gp::batch::Subtrees;
use apex_gp::{GpError, Limits, Program, batch, json_schema, normalize, shape, stream_columns};
use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadwriteArray2, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::{DataError, IntoPyErr, run_detached};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_functions!(
        m,
        gp_evaluate,
        gp_evaluate_into,
        gp_stream,
        gp_sharing,
        gp_shapes,
        gp_shape_columns,
        gp_validate,
        gp_tree_schema
    );
    Ok(())
}

impl IntoPyErr for GpError {
    fn into_py_err(self) -> PyErr {
        DataError::new_err(self.to_string())
    }
}

/// Columns as given: a 2-D array (rows x features, copied column by column) or a list of 1-D arrays (borrowed).
enum Columns<'py> {
    Matrix(Vec<Vec<f64>>),
    Arrays(Vec<PyReadonlyArray1<'py, f64>>),
}

impl<'py> Columns<'py> {
    fn extract(columns: &Bound<'py, PyAny>) -> PyResult<Columns<'py>> {
        if let Ok(matrix) = columns.extract::<PyReadonlyArray2<'py, f64>>() {
            let view = matrix.as_array();
            return Ok(Columns::Matrix(view.columns().into_iter().map(|c| c.to_vec()).collect()));
        }
        columns.extract::<Vec<PyReadonlyArray1<'py, f64>>>().map(Columns::Arrays).map_err(|_| {
            DataError::new_err("columns must be a 2-D float64 array (rows x features) or a list of 1-D float64 arrays")
        })
    }

    fn slices(&self) -> Vec<Cow<'_, [f64]>> {
        match self {
            Columns::Matrix(columns) => columns.iter().map(|c| Cow::Borrowed(c.as_slice())).collect(),
            Columns::Arrays(arrays) => arrays
                .iter()
                .map(|a| a.as_slice().map_or_else(|_| Cow::Owned(a.as_array().to_vec()), Cow::Borrowed))
                .collect(),
        }
    }
}

/// Signals (trees x rows) of every JSON tree over the columns named `names`, evaluated in parallel; with `share`, the
/// subtrees the trees have in common are evaluated once (the signals are the same either way).
#[pyfunction]
#[pyo3(signature = (trees_json, names, columns, max_depth=17, max_nodes=4096, share=true))]
fn gp_evaluate<'py>(
    py: Python<'py>,
    trees_json: Vec<String>,
    names: Vec<String>,
    columns: &Bound<'py, PyAny>,
    max_depth: usize,
    max_nodes: usize,
    share: bool,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let columns = Columns::extract(columns)?;
    let owned = columns.slices();
    let slices: Vec<&[f64]> = owned.iter().map(AsRef::as_ref).collect();
    let rows = slices.first().map_or(0, |c| c.len());
    let limits = Limits { max_depth, max_nodes };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let trees: Vec<&str> = trees_json.iter().map(String::as_str).collect();
    let subtrees = if share { Subtrees::Shared } else { Subtrees::PerProgram };
    let flat = run_detached(py, || batch::evaluate_json_with(&trees, &names, &slices, &limits, subtrees))?;
    Ok(Array2::from_shape_vec((trees.len(), rows), flat).expect("trees x rows signals").into_pyarray(py))
}

/// `gp_evaluate` writing the signals into `out`, a C-contiguous float64 array of shape (trees, rows) whose every value
/// is overwritten: `numpy.empty` will do, and a caller evaluating batch after batch reuses one array.
#[pyfunction]
#[pyo3(signature = (trees_json, names, columns, out, max_depth=17, max_nodes=4096, share=true))]
#[allow(clippy::too_many_arguments)]
fn gp_evaluate_into<'py>(
    py: Python<'py>,
    trees_json: Vec<String>,
    names: Vec<String>,
    columns: &Bound<'py, PyAny>,
    mut out: PyReadwriteArray2<'py, f64>,
    max_depth: usize,
    max_nodes: usize,
    share: bool,
) -> PyResult<()> {
    let columns = Columns::extract(columns)?;
    let owned = columns.slices();
    let slices: Vec<&[f64]> = owned.iter().map(AsRef::as_ref).collect();
    let rows = slices.first().map_or(0, |c| c.len());
    if out.shape() != [trees_json.len(), rows] {
        return Err(DataError::new_err(format!(
            "out has shape {:?}, not ({}, {rows}) (trees, rows)",
            out.shape(),
            trees_json.len()
        )));
    }
    // as_slice_mut takes a Fortran-ordered array too, whose rows are not contiguous: only C order is written.
    let c_order = out.is_c_contiguous();
    let out = out.as_slice_mut().ok().filter(|_| c_order);
    let out = out.ok_or_else(|| DataError::new_err("out must be a C-contiguous float64 array"))?;
    let limits = Limits { max_depth, max_nodes };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let trees: Vec<&str> = trees_json.iter().map(String::as_str).collect();
    let subtrees = if share { Subtrees::Shared } else { Subtrees::PerProgram };
    run_detached(py, || batch::evaluate_json_into(&trees, &names, &slices, &limits, subtrees, out))
}

/// How much the JSON trees share: {"programs", "tree_nodes", "distinct_operations"} (the operations one shared
/// evaluation computes per row, after folding constants and merging equal subtrees).
#[pyfunction]
#[pyo3(signature = (trees_json, names, max_depth=17, max_nodes=4096))]
fn gp_sharing(
    py: Python<'_>,
    trees_json: Vec<String>,
    names: Vec<String>,
    max_depth: usize,
    max_nodes: usize,
) -> PyResult<std::collections::BTreeMap<&'static str, usize>> {
    let limits = Limits { max_depth, max_nodes };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let trees: Vec<&str> = trees_json.iter().map(String::as_str).collect();
    let sharing = run_detached(py, || batch::sharing_json(&trees, &names, &limits))?;
    Ok([
        ("programs", sharing.programs),
        ("tree_nodes", sharing.tree_nodes),
        ("distinct_operations", sharing.distinct_operations),
    ]
    .into())
}

/// The shape of every JSON tree (trees x `gp_shape_columns(names)`): size, height, constants, window sum and
/// largest window, then how many times each primitive and each feature of `names` appears; loaded in parallel.
#[pyfunction]
#[pyo3(signature = (trees_json, names, max_depth=17, max_nodes=4096))]
fn gp_shapes<'py>(
    py: Python<'py>,
    trees_json: Vec<String>,
    names: Vec<String>,
    max_depth: usize,
    max_nodes: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let limits = Limits { max_depth, max_nodes };
    let flat = run_detached(py, || shape::shapes_json(&trees_json, &names, &limits))?;
    let width = shape::shape_width(names.len());
    Ok(Array2::from_shape_vec((trees_json.len(), width), flat).expect("trees x columns").into_pyarray(py))
}

/// The names of `gp_shapes`'s columns over the features `names`.
#[pyfunction]
fn gp_shape_columns(names: Vec<String>) -> Vec<String> {
    shape::shape_columns(&names)
}

/// The streaming evaluator's signal of one JSON tree, row by row over the columns (for parity checks).
#[pyfunction]
#[pyo3(signature = (tree_json, names, columns, max_depth=17, max_nodes=4096))]
fn gp_stream<'py>(
    py: Python<'py>,
    tree_json: &str,
    names: Vec<String>,
    columns: &Bound<'py, PyAny>,
    max_depth: usize,
    max_nodes: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let columns = Columns::extract(columns)?;
    let owned = columns.slices();
    let slices: Vec<&[f64]> = owned.iter().map(AsRef::as_ref).collect();
    let limits = Limits { max_depth, max_nodes };
    let signal = run_detached(py, || {
        Program::from_json(tree_json, &names, &limits).and_then(|program| stream_columns(&program, &slices))
    })?;
    Ok(signal.into_pyarray(py))
}

/// The normalized JSON of a tree checked against the feature `names`; DataError names the bad node's path.
#[pyfunction]
#[pyo3(signature = (tree_json, names, max_depth=17, max_nodes=4096))]
fn gp_validate(
    py: Python<'_>,
    tree_json: &str,
    names: Vec<String>,
    max_depth: usize,
    max_nodes: usize,
) -> PyResult<String> {
    let limits = Limits { max_depth, max_nodes };
    run_detached(py, || normalize(tree_json, &names, &limits))
}

/// The JSON Schema of the GP tree document (the committed copy is apexctl/schemas/gp_tree.schema.json).
#[pyfunction]
fn gp_tree_schema() -> String {
    serde_json::to_string_pretty(&json_schema()).expect("a JSON value serializes") + "\n"
}
