//! The `apexctl._core` extension module: registers the exceptions and one submodule of functions per library crate.

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
    // Load NumPy's C API now: loaded lazily, its import could run (and fail in) a Ctrl-C handler while a result is
    // converted, and the numpy crate panics when that import fails.
    numpy::PyArray1::<f64>::zeros(m.py(), 0, false);
    errors::register(m)?;
    backtest::register(m)?;
    book::register(m)?;
    features::register(m)?;
    gp::register(m)?;
    infer::register(m)?;
    params::register(m)?;
    sim::register(m)?;
    sim_execution::register(m)?;
    sim_adversarial::register(m)?;
    features_vmd::register(m)?;
    bybit::register(m)?;
    Ok(())
}
