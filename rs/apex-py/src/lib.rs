//! The `apexctl._core` extension module: registers the exceptions and one submodule of functions per library crate.

/// Adds `#[pyfunction]`s to the module under their own names, so each binding file's `register` is just the list
/// of what it exports.
macro_rules! add_functions {
    ($m:expr, $($function:ident),+ $(,)?) => {
        $($m.add_function(pyo3::wrap_pyfunction!($function, $m)?)?;)+
    };
}

/// Sets each named field of a Rust value as the dict item of the same name: the keys Python reads are the fields'
/// names, written once.
macro_rules! set_fields {
    ($dict:expr, $value:expr; $($field:ident),+ $(,)?) => {
        $($dict.set_item(stringify!($field), $value.$field)?;)+
    };
}

mod backtest;
mod book;
mod bybit;
mod columns;
mod errors;
mod features;
mod features_vmd;
mod gp;
mod infer;
mod params;
mod pareto;
mod sim;
mod sim_adversarial;
mod sim_execution;

use pyo3::prelude::*;

// Rust's allocations in the extension (not Python's objects) go to mimalloc: the simulator and the feature engines
// allocate and free small buffers at a high rate, where it is faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LAUNCHER_ENV", apex_core::process::LAUNCHER_ENV)?;
    // Load NumPy's C API now: loaded lazily, its import could run (and fail in) a Ctrl-C handler while a result is
    // converted, and the numpy crate panics when that import fails.
    numpy::PyArray1::<f64>::zeros(m.py(), 0, false);
    for register in [
        errors::register,
        backtest::register,
        book::register,
        features::register,
        gp::register,
        infer::register,
        params::register,
        pareto::register,
        sim::register,
        sim_execution::register,
        sim_adversarial::register,
        features_vmd::register,
        bybit::register,
    ] {
        register(m)?;
    }
    Ok(())
}
