//! Microstructure features computed once in Rust for the backtester, the simulator and the live engine.

pub mod vmd;
