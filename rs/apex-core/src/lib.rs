//! Shared market types: sides, fixed-point scales for prices and quantities, exact decimal parsing.

mod scale;
mod side;

pub use scale::{Scale, ScaleError, decimals_in, infer_decimals};
pub use side::Side;
