//! Criterion benchmark placeholder.
fn main() {}
