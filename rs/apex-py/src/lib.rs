//! The `apexctl._core` extension module: registers the exceptions and one submodule of functions per library crate.

mod backtest;
mod book;
mod bybit;
mod dual;
mod errors;
mod features;
mod gp;
mod sim;
mod vmd;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    backtest::register(m)?;
    book::register(m)?;
    features::register(m)?;
    gp::register(m)?;
    sim::register(m)?;
    dual::register(m)?;
    vmd::register(m)?;
    bybit::register(m)?;
    Ok(())
}
