//! Instrument specification: tick and lot sizes in integer units, minimum quantity, market price band and fee rates.

use apex_core::{Scale, decimals_in};

use crate::SimError;

/// Decimals of fee rates: rates are integer units of 1e-8 so fees are exact in the engine's cash unit.
pub const FEE_RATE_DECIMALS: u32 = 8;
/// Decimals of the market price band: a band is an integer number of parts per million of the best price.
pub const BAND_DECIMALS: u32 = 6;

pub use apex_core::{BYBIT_VIP0_MAKER_FEE, BYBIT_VIP0_TAKER_FEE};
/// Default largest order quantity in quantity units; with [`MAX_PRICE_UNITS`] it keeps one trade's notional far
/// inside the engine's `i128` cash.
pub const DEFAULT_MAX_QTY_UNITS: i64 = 1_000_000_000_000;
/// Largest accepted limit price in price units (orders above are rejected as `InvalidPrice`).
pub const MAX_PRICE_UNITS: i64 = 1_000_000_000_000_000;
/// Default protective band of market orders around the best opposite price. Bybit sets it per symbol; 5 % is a
/// middle value for the large perpetuals, and it is a public field so callers override it.
pub const DEFAULT_MARKET_BAND: f64 = 0.05;
/// Largest limit order an API client may send, in lots (with `max_qty` it makes Bybit's `maxOrderQty`: 1000 BTC for
/// a 0.001 lot).
pub const MAX_LIMIT_ORDER_LOTS: i64 = 1_000_000;
/// Largest market order an API client may send, in lots (Bybit's `maxMktOrderQty`, a tenth of `maxOrderQty`).
pub const MAX_MARKET_ORDER_LOTS: i64 = 100_000;
/// Largest limit price an API client may send, in price units (Bybit's `maxPrice`). Far below [`MAX_PRICE_UNITS`],
/// the engine's own bound, so a client's price can never get near the engine's overflow guard.
pub const MAX_ORDER_PRICE_UNITS: i64 = MAX_PRICE_UNITS / 1_000;
/// Default `priceLimitRatioX` of Bybit's order price limits (see [`InstrumentSpec::price_limit_ratio_x`]): Bybit
/// limits BTC contracts to ±5 % (https://help.bybit.com/hc/en-us/articles/900004317123-Contract-Price-Limits).
pub const DEFAULT_PRICE_LIMIT_RATIO_X: f64 = 0.05;
/// Default `priceLimitRatioY`: the outer bound, which only binds when the index price strays from the mark.
pub const DEFAULT_PRICE_LIMIT_RATIO_Y: f64 = 0.10;

/// What the engine needs to know about one instrument. Prices are integer units of `price_scale`
/// (10^-decimals quote per base), quantities integer units of `qty_scale`; every order price must be a multiple of
/// `tick` and every quantity a multiple of `lot`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstrumentSpec {
    pub symbol: String,
    pub price_scale: Scale,
    pub qty_scale: Scale,
    /// Tick size in price units.
    pub tick: i64,
    /// Lot size (quantity step) in quantity units.
    pub lot: i64,
    /// Smallest accepted order quantity in quantity units (a multiple of `lot`).
    pub min_qty: i64,
    /// Largest accepted order quantity in quantity units (Bybit's `maxOrderQty`).
    pub max_qty: i64,
    /// Market orders are IOC limits at best opposite price × (1 ± `market_band`), rounded inwards to the tick.
    pub market_band: f64,
    /// Fee rate paid on the notional of maker fills (negative for a rebate).
    pub maker_fee: f64,
    /// Fee rate paid on the notional of taker fills.
    pub taker_fee: f64,
    /// Bybit's `priceLimitRatioX`: API limit orders may buy at most this fraction above the mark price and sell at
    /// most this fraction below it. Only the exchange's client orders are checked; the simulated agents are not.
    pub price_limit_ratio_x: f64,
    /// Bybit's `priceLimitRatioY` (at least `price_limit_ratio_x`): the bound around the mark when the index price
    /// lies further out.
    pub price_limit_ratio_y: f64,
}

impl InstrumentSpec {
    /// A spec from Bybit-style decimal strings (`tickSize`, `qtyStep`, `minOrderQty`), with the VIP0 linear fees
    /// and the default market band. The scales have exactly as many decimals as the tick and lot need.
    ///
    /// # Errors
    /// `BadDecimal` for a string that is not a decimal, `NotPositive` for a zero or negative size, `OffStep` when
    /// `min_qty` is not a multiple of the lot.
    pub fn bybit_linear(
        symbol: &str,
        tick_size: &str,
        qty_step: &str,
        min_qty: &str,
    ) -> Result<InstrumentSpec, SimError> {
        let parse = |field: &'static str, text: &str, scale: Scale| {
            let units = scale.parse(text).map_err(|source| SimError::BadDecimal {
                symbol: symbol.to_owned(),
                field,
                text: text.to_owned(),
                source,
            })?;
            if units <= 0 {
                return Err(SimError::NotPositive { symbol: symbol.to_owned(), field, value: text.to_owned() });
            }
            Ok(units)
        };
        let scale_for = |field: &'static str, text: &str| {
            Scale::new(decimals_in(text)).map_err(|source| SimError::BadDecimal {
                symbol: symbol.to_owned(),
                field,
                text: text.to_owned(),
                source,
            })
        };
        let price_scale = scale_for("tick_size", tick_size)?;
        let qty_scale = scale_for("qty_step", qty_step)?;
        let spec = InstrumentSpec {
            symbol: symbol.to_owned(),
            price_scale,
            qty_scale,
            tick: parse("tick_size", tick_size, price_scale)?,
            lot: parse("qty_step", qty_step, qty_scale)?,
            min_qty: parse("min_qty", min_qty, qty_scale)?,
            max_qty: DEFAULT_MAX_QTY_UNITS,
            market_band: DEFAULT_MARKET_BAND,
            maker_fee: BYBIT_VIP0_MAKER_FEE,
            taker_fee: BYBIT_VIP0_TAKER_FEE,
            price_limit_ratio_x: DEFAULT_PRICE_LIMIT_RATIO_X,
            price_limit_ratio_y: DEFAULT_PRICE_LIMIT_RATIO_Y,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field and converts the fractional ones to the integers the engine computes with.
    ///
    /// # Errors
    /// The first field found invalid.
    pub fn validate(&self) -> Result<ExactRates, SimError> {
        let symbol = || self.symbol.clone();
        for (field, value) in
            [("tick", self.tick), ("lot", self.lot), ("min_qty", self.min_qty), ("max_qty", self.max_qty)]
        {
            if value <= 0 {
                return Err(SimError::NotPositive { symbol: symbol(), field, value: value.to_string() });
            }
        }
        if self.min_qty % self.lot != 0 {
            return Err(SimError::OffStep { symbol: symbol(), field: "min_qty", value: self.min_qty, step: self.lot });
        }
        if self.max_qty < self.min_qty || self.max_qty > DEFAULT_MAX_QTY_UNITS {
            return Err(SimError::MaxQty { symbol: symbol(), value: self.max_qty });
        }
        if self.tick > MAX_PRICE_UNITS {
            return Err(SimError::OffStep { symbol: symbol(), field: "tick", value: self.tick, step: MAX_PRICE_UNITS });
        }
        let fee = |field: &'static str, value: f64| {
            let units = Scale::new(FEE_RATE_DECIMALS).expect("8 decimals is a valid scale").from_f64(value);
            match units {
                Ok(units) if value.abs() < 0.01 => Ok(units),
                _ => Err(SimError::BadFeeRate { symbol: symbol(), field, value }),
            }
        };
        let ppm = |value: f64| match Scale::new(BAND_DECIMALS).expect("6 decimals is a valid scale").from_f64(value) {
            Ok(ppm) if ppm > 0 && ppm < 1_000_000 => Some(ppm),
            _ => None,
        };
        let Some(band_ppm) = ppm(self.market_band) else {
            return Err(SimError::BadBand { symbol: symbol(), value: self.market_band });
        };
        let (Some(price_limit_x_ppm), Some(price_limit_y_ppm)) =
            (ppm(self.price_limit_ratio_x), ppm(self.price_limit_ratio_y))
        else {
            return Err(SimError::Config(format!(
                "instrument {}: price limit ratios x = {} and y = {} must be fractions in (0, 1) with at most 6 \
                 decimals",
                self.symbol, self.price_limit_ratio_x, self.price_limit_ratio_y
            )));
        };
        if price_limit_x_ppm > price_limit_y_ppm {
            return Err(SimError::Config(format!(
                "instrument {}: price limit ratio x = {} must not exceed y = {}",
                self.symbol, self.price_limit_ratio_x, self.price_limit_ratio_y
            )));
        }
        Ok(ExactRates {
            maker_fee_e8: fee("maker_fee", self.maker_fee)?,
            taker_fee_e8: fee("taker_fee", self.taker_fee)?,
            band_ppm,
            price_limit_x_ppm,
            price_limit_y_ppm,
        })
    }

    /// Decimals of the engine's cash unit: a price unit times a quantity unit times a fee-rate unit.
    #[must_use]
    pub fn cash_decimals(&self) -> u32 {
        self.price_scale.decimals() + self.qty_scale.decimals() + FEE_RATE_DECIMALS
    }

    /// Cash units (see [`crate::Account`]) to quote currency.
    #[must_use]
    pub fn cash_to_f64(&self, cash: i128) -> f64 {
        cash as f64 / 10f64.powi(self.cash_decimals() as i32)
    }

    /// Price units to a float price.
    #[must_use]
    pub fn price_to_f64(&self, price: i64) -> f64 {
        self.price_scale.to_f64(price)
    }

    /// Quantity units to a float quantity.
    #[must_use]
    pub fn qty_to_f64(&self, qty: i64) -> f64 {
        self.qty_scale.to_f64(qty)
    }

    /// Largest limit order quantity an API client may send (Bybit's `maxOrderQty`), in quantity units.
    #[must_use]
    pub fn max_limit_order_qty(&self) -> i64 {
        self.max_qty.min(MAX_LIMIT_ORDER_LOTS.saturating_mul(self.lot))
    }

    /// Largest market order quantity an API client may send (Bybit's `maxMktOrderQty`), in quantity units.
    #[must_use]
    pub fn max_market_order_qty(&self) -> i64 {
        self.max_qty.min(MAX_MARKET_ORDER_LOTS.saturating_mul(self.lot))
    }
}

/// The fractional fields of a spec as exact integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactRates {
    /// Maker fee rate in units of 1e-8.
    pub maker_fee_e8: i64,
    /// Taker fee rate in units of 1e-8.
    pub taker_fee_e8: i64,
    /// Market band in parts per million.
    pub band_ppm: i64,
    /// `price_limit_ratio_x` in parts per million.
    pub price_limit_x_ppm: i64,
    /// `price_limit_ratio_y` in parts per million.
    pub price_limit_y_ppm: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bybit_strings_give_units_and_default_fees() {
        let spec = InstrumentSpec::bybit_linear("BTCUSDT", "0.10", "0.001", "0.001").unwrap();
        assert_eq!((spec.price_scale.decimals(), spec.tick), (1, 1));
        assert_eq!((spec.qty_scale.decimals(), spec.lot, spec.min_qty), (3, 1, 1));
        let rates = spec.validate().unwrap();
        assert_eq!((rates.maker_fee_e8, rates.taker_fee_e8, rates.band_ppm), (20_000, 55_000, 50_000));
        assert_eq!(spec.cash_decimals(), 12);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(matches!(
            InstrumentSpec::bybit_linear("X", "0", "1", "1"),
            Err(SimError::NotPositive { field: "tick_size", .. })
        ));
        assert!(matches!(InstrumentSpec::bybit_linear("X", "abc", "1", "1"), Err(SimError::BadDecimal { .. })));
        assert!(matches!(InstrumentSpec::bybit_linear("X", "0.5", "0.02", "0.03"), Err(SimError::OffStep { .. })));
        let mut spec = InstrumentSpec::bybit_linear("X", "0.5", "1", "1").unwrap();
        spec.taker_fee = 0.000_000_001;
        assert!(matches!(spec.validate(), Err(SimError::BadFeeRate { .. })));
        spec.taker_fee = f64::NAN;
        assert!(matches!(spec.validate(), Err(SimError::BadFeeRate { .. })));
        spec.taker_fee = 0.001;
        spec.max_qty = 0;
        assert!(matches!(spec.validate(), Err(SimError::NotPositive { field: "max_qty", .. })));
        spec.max_qty = DEFAULT_MAX_QTY_UNITS + 1;
        assert!(matches!(spec.validate(), Err(SimError::MaxQty { .. })));
        spec.max_qty = DEFAULT_MAX_QTY_UNITS;
        spec.market_band = 1.5;
        assert!(matches!(spec.validate(), Err(SimError::BadBand { .. })));
    }

    #[test]
    fn api_order_limits_match_what_the_venue_advertises() {
        let mut spec = InstrumentSpec::bybit_linear("BTCUSDT", "0.10", "0.001", "0.001").unwrap();
        // maxOrderQty 1000 BTC, maxMktOrderQty 100 BTC, maxPrice 1e11 USDT.
        assert_eq!((spec.max_limit_order_qty(), spec.max_market_order_qty()), (1_000_000, 100_000));
        assert_eq!(spec.price_scale.format(MAX_ORDER_PRICE_UNITS), "100000000000.0");
        let rates = spec.validate().unwrap();
        assert_eq!((rates.price_limit_x_ppm, rates.price_limit_y_ppm), (50_000, 100_000));
        spec.price_limit_ratio_x = 0.0;
        assert!(matches!(spec.validate(), Err(SimError::Config(_))));
        spec.price_limit_ratio_x = 0.2;
        assert!(matches!(spec.validate(), Err(SimError::Config(_))), "x above y");
    }
}
