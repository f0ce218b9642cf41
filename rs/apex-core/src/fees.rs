//! Exchange fee rates, defined once: the simulator charges them, the backtester assumes them, the live engine's
//! paper fills use them.

/// Bybit linear perpetual VIP0 maker fee rate (0.02 % of notional).
pub const BYBIT_VIP0_MAKER_FEE: f64 = 0.0002;
/// Bybit linear perpetual VIP0 taker fee rate (0.055 % of notional).
pub const BYBIT_VIP0_TAKER_FEE: f64 = 0.00055;
