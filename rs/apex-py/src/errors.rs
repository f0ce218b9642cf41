//! Python exceptions for every library error type, and the one helper every binding runs its work through.
//!
//! The classes form apexctl's one hierarchy (`apexctl.errors` re-exports them): `ApexError` > `UsageError` (a bad
//! option value), `InputError` > {`SchemaError`, `DataError` (malformed input data), `IoError`}, `ConfigError`
//! (`UsageError` and `DataError`: a setting the core refuses), `InternalError` (a panic). Each binding maps each
//! variant of its crate's error to one of them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

create_exception!(_core, ApexError, PyException, "Base class of every error apexctl raises on purpose.");
create_exception!(
    _core,
    UsageError,
    ApexError,
    "Options that do not make sense together, or a value outside what an option accepts."
);
create_exception!(
    _core,
    InputError,
    ApexError,
    "An input that cannot be read: missing, unreadable, corrupt, or malformed (the message names file and place)."
);
create_exception!(
    _core,
    SchemaError,
    InputError,
    "An artifact of the wrong kind, of an unknown or newer schema version, or with missing or mistyped columns."
);
create_exception!(
    _core,
    DataError,
    InputError,
    "Input data that cannot be used: malformed rows, NaN prices, bad codes."
);
create_exception!(_core, IoError, InputError, "A file the Rust core could not read or write (the message names it).");
create_exception!(_core, InternalError, ApexError, "A bug: a panic inside the Rust core. Please report it.");

/// `ConfigError(UsageError, DataError)`: made at import (an exception class with two bases cannot be declared with
/// `create_exception!`).
static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
const CONFIG_ERROR_DOC: &str = "A setting the Rust core refuses: a DSG parameter, a strategy name, an instrument \
    preset, a parameter outside its bounds. A UsageError; also a DataError, the class the core raised for it before.";

fn config_error_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    let ty = CONFIG_ERROR.get_or_try_init(py, || {
        let bases = PyTuple::new(py, [py.get_type::<UsageError>(), py.get_type::<DataError>()])?;
        let namespace = PyDict::new(py);
        namespace.set_item("__doc__", CONFIG_ERROR_DOC)?;
        namespace.set_item("__module__", "_core")?; // as `create_exception!` names the others
        let made = py.get_type::<PyType>().call1(("ConfigError", bases, namespace))?;
        Ok::<_, PyErr>(made.cast_into::<PyType>()?.unbind())
    })?;
    Ok(ty.bind(py))
}

/// A `ConfigError` with `message`: a setting the core refuses (see [`CONFIG_ERROR_DOC`]).
pub fn config_error(message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| match config_error_type(py) {
        Ok(ty) => PyErr::from_type(ty.clone(), message),
        Err(error) => error,
    })
}

/// How often the waiting thread runs Python's signal handlers while the work runs (so Ctrl-C is seen at once).
const SIGNAL_POLL: Duration = Duration::from_millis(50);
/// Stack of the thread the work runs on: a main thread's size, since the work used to run on the caller's thread.
const WORKER_STACK: usize = 8 << 20;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ApexError", py.get_type::<ApexError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("ConfigError", config_error_type(py)?)?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    add_functions!(m, cancel_request, cancel_clear, cancel_requested);
    Ok(())
}

/// Asks every running Rust computation to stop at its next checkpoint (what a SIGINT/SIGTERM handler calls);
/// returns whether it was already requested. Computations started afterwards stop at once until `cancel_clear`.
#[pyfunction]
fn cancel_request() -> bool {
    apex_cancel::request()
}

/// Withdraws a cancellation request, so Rust computations run normally again.
#[pyfunction]
fn cancel_clear() {
    apex_cancel::clear();
}

/// Whether cancellation is requested.
#[pyfunction]
fn cancel_requested() -> bool {
    apex_cancel::is_requested()
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
    /// A scale of too many decimals is a setting; every other variant is a value of the data.
    fn into_py_err(self) -> PyErr {
        match self {
            apex_core::ScaleError::BadDecimals { .. } => config_error(self.to_string()),
            _ => DataError::new_err(self.to_string()),
        }
    }
}

/// Runs `work` with the GIL released, turning a library error into its Python exception and a panic into
/// `InternalError`, so no Rust failure ever aborts the interpreter.
///
/// The work runs on a thread of its own while the calling thread runs Python's signal handlers every
/// [`SIGNAL_POLL`]: when one raises (Ctrl-C's KeyboardInterrupt, apexctl's SIGTERM handler), cancellation is
/// requested, the work stops at its next `apex_cancel::checkpoint`, and that exception is raised here.
pub fn run_detached<T, E, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    E: IntoPyErr + Send,
    F: FnOnce() -> Result<T, E> + Send,
{
    let (outcome, interrupt) = py.detach(|| watched(work)).map_err(InternalError::new_err)?;
    if let Some(interrupt) = interrupt {
        return Err(interrupt); // even if the work finished meanwhile: the interrupt must reach the caller
    }
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.into_py_err()),
        Err(payload) if apex_cancel::is_cancelled(payload.as_ref()) => {
            Err(PyKeyboardInterrupt::new_err("interrupted: cancellation was requested"))
        }
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

type Outcome<T, E> = std::thread::Result<Result<T, E>>;

/// Runs `work` on a scoped thread and polls for Python signals until it ends (called without the GIL); the error is
/// a thread that could not be started.
fn watched<T, E, F>(work: F) -> Result<(Outcome<T, E>, Option<PyErr>), String>
where
    T: Send,
    E: Send,
    F: FnOnce() -> Result<T, E> + Send,
{
    std::thread::scope(|scope| {
        let (done, finished) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new().name("apex-core".into()).stack_size(WORKER_STACK).spawn_scoped(
            scope,
            move || {
                let outcome = catch_unwind(AssertUnwindSafe(work));
                drop(done); // disconnecting wakes the watcher at once
                outcome
            },
        );
        let handle = spawned.map_err(|error| format!("cannot start a worker thread: {error}"))?;
        let mut interrupt = None;
        let mut requested_here = false;
        while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(SIGNAL_POLL) {
            if interrupt.is_none()
                && let Err(raised) = Python::attach(|py| py.check_signals())
            {
                requested_here = !apex_cancel::request();
                interrupt = Some(raised);
            }
        }
        let outcome = handle.join().unwrap_or_else(Err);
        if requested_here {
            apex_cancel::clear(); // a handler that requested it itself (apexctl's) keeps it requested
        }
        Ok((outcome, interrupt))
    })
}
