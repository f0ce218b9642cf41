//! apex-gp: the GP strategy language shared by evolution, the simulator and the live engine.
//!
//! A strategy is a typed expression tree ([`Tree`]) over named feature columns that yields a target position signal in
//! [-1, 1] per row. Trees travel as versioned JSON (`{"schema": "apex.gp_tree", "version": 1, ...}`), are validated
//! completely when loaded ([`Tree::from_json`], [`Program::compile`]), and compile to flat postfix bytecode
//! ([`Program`]) run by two evaluators that give bit-identical results: [`batch`] (whole columns, many trees in
//! parallel: the subtrees the trees share evaluated once, block by block of rows with vectorized kernels) and
//! [`StreamingEvaluator`] (one row at a time with ring buffers).
//!
//! # Semantics (the contract the DEAP reference in `apexctl/forge/gp.py` implements too)
//! - Types: `Float` (a column of f64), `Bool` (stored as 0.0/1.0), `Window` (a compile-time integer 1..=1000).
//! - NaN propagates through arithmetic, `min`/`max` and every rolling op. Comparisons with NaN are false, so Bool
//!   values are never NaN.
//! - Protected operations: `div(a, b)` is `0.0` when `|b| < 1e-12` ([`PROTECT_EPS`]); `ts_zscore` is `0.0` when the
//!   window's standard deviation is `< 1e-12`. Zero means "flat", the safe position.
//! - Warm-up: rolling ops at row t use the available rows, `m = min(t + 1, k)`; `lag(x, k)` is NaN for t < k;
//!   `ema(x, k)` (alpha = 2/(k+1)) starts at the first non-NaN value, and a NaN input gives NaN without touching the
//!   state.
//! - Rolling sums add the window from oldest to newest starting at 0.0 (no running sums), so every evaluator and the
//!   NumPy reference perform the same float operations in the same order.
//! - `sign` of either zero is 0.0. The signal is `clip(value, -1, 1)`, with NaN mapped to 0.0 and -0.0 to 0.0.
//! - `tanh` is [`tanh`], this crate's own (the C library's differs between platforms): the same bits on every machine,
//!   within 2 ulp of glibc's.

pub mod batch;
mod block;
mod compile;
mod error;
mod kernels;
mod load;
pub mod naive;
mod plan;
pub mod shape;
mod stream;
mod tree;

pub use compile::{Inputs, Program};
pub use error::GpError;
pub use kernels::tanh;
pub use stream::{StreamingEvaluator, stream_columns};
pub use tree::{Limits, MAX_WINDOW, Node, Op, SCHEMA, Tree, Type, VERSION, WINDOWS, json_schema};

/// Divisors and standard deviations below this magnitude make `div` and `ts_zscore` return 0.0.
pub const PROTECT_EPS: f64 = 1e-12;

/// The final signal of a tree's value: clipped to [-1, 1], NaN mapped to 0.0 (flat), -0.0 made 0.0.
#[inline]
pub fn signal(value: f64) -> f64 {
    // Adding 0.0 turns -0.0 into 0.0, so which zero an op produced never shows in the signal.
    if value.is_nan() { 0.0 } else { value.clamp(-1.0, 1.0) + 0.0 }
}

/// Loads `text`, checks it against the feature `names` of the data, and returns the normalized document.
///
/// # Errors
/// Every load-time error of [`Tree::from_json`] and [`Program::compile`], with the node path.
pub fn normalize<S: AsRef<str>>(text: &str, names: &[S], limits: &Limits) -> Result<String, GpError> {
    let tree = Tree::from_json(text, limits)?;
    Program::compile(&tree, names)?;
    Ok(tree.to_json())
}
