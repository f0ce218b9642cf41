//! Python exceptions for every library error type, and the one helper every binding runs its work through.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(_core, ApexError, PyException, "Base class of every error apexctl raises on purpose.");
create_exception!(
    _core,
    DataError,
    ApexError,
    "Input data that cannot be used: malformed rows, NaN prices, bad codes."
);
create_exception!(_core, InternalError, ApexError, "A bug: a panic inside the Rust core. Please report it.");

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ApexError", py.get_type::<ApexError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// Maps a library error to its Python exception.
pub trait IntoPyErr {
    fn into_py_err(self) -> PyErr;
}

impl IntoPyErr for apex_book::ColumnError {
    fn into_py_err(self) -> PyErr {
        DataError::new_err(self.to_string())
    }
}

impl IntoPyErr for apex_core::ScaleError {
    fn into_py_err(self) -> PyErr {
        DataError::new_err(self.to_string())
    }
}

/// Runs `work` with the GIL released, turning a library error into its Python exception and a panic into
/// `InternalError`, so no Rust failure ever aborts the interpreter.
pub fn run_detached<T, E, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    E: IntoPyErr + Send,
    F: FnOnce() -> Result<T, E> + Send,
{
    match py.detach(|| catch_unwind(AssertUnwindSafe(work))) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.into_py_err()),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(InternalError::new_err(format!("internal error in the Rust core: {message}")))
        }
    }
}
