//! The strategy slot: how an outside strategy trades inside the simulation, and the reference strategies used in tests.
//!
//! A strategy sees closed bars (after its market-data latency) and answers with a target position as a fraction of
//! its capacity in [-1, 1]; the driver turns the change of target into orders. GP trees and ONNX policies plug in here.
//! A strategy that computes its own features from the public streams asks for them with [`Strategy::feed`]: the
//! market then hands it every public trade and, if asked, every L2 message it publishes, in time order, before each
//! decision.

use crate::L2Update;

/// One closed bar as a strategy sees it (prices in quote units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Bar open time, microseconds since the simulation epoch.
    pub ts_us: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// What a strategy knows when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Every bar closed so far that the strategy's latency lets it see, oldest first; the last is the newest.
    pub bars: &'a [Bar],
    /// The strategy's current position as a fraction of its capacity (what its last target became after rounding).
    pub position: f64,
    /// Equity in quote units (capital + realized and unrealized PnL - fees).
    pub equity: f64,
}

/// One public trade as the trade stream shows it (time in microseconds since the simulation epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublicTrade {
    pub ts_us: i64,
    /// +1 buy taker, -1 sell taker.
    pub side: i8,
    pub price: f64,
    pub size: f64,
}

/// The public market data a strategy receives besides the bars of its decision context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feed {
    #[default]
    Bars,
    Trades,
    /// Trades and the L2 stream (`orderbook.{depth}` at the market's cadence, recorded or not).
    TradesAndBook,
}

/// A trading strategy driven by bars. The same trait is implemented by the GP interpreter and ONNX policies.
pub trait Strategy: Send {
    /// Short name for reports.
    fn name(&self) -> String;
    /// The target position in [-1, 1] (fraction of capacity; values outside are clipped, NaN means flat).
    fn target(&mut self, ctx: &Context<'_>) -> f64;
    /// What the strategy receives between decisions (bars only, by default).
    fn feed(&self) -> Feed {
        Feed::Bars
    }
    /// A public trade, in time order (only with a [`Feed`] that includes trades).
    fn on_trade(&mut self, _trade: &PublicTrade) {}
    /// A published L2 message, in time order with the trades (only with [`Feed::TradesAndBook`]).
    fn on_book(&mut self, _update: &L2Update) {}
}

/// Never trades: the baseline whose PnL must be exactly zero.
#[derive(Debug, Clone, Default)]
pub struct AlwaysFlat;

impl Strategy for AlwaysFlat {
    fn name(&self) -> String {
        "always_flat".to_owned()
    }
    fn target(&mut self, _ctx: &Context<'_>) -> f64 {
        0.0
    }
}

/// Goes fully long at the first decision and holds.
#[derive(Debug, Clone, Default)]
pub struct BuyAndHold;

impl Strategy for BuyAndHold {
    fn name(&self) -> String {
        "buy_and_hold".to_owned()
    }
    fn target(&mut self, _ctx: &Context<'_>) -> f64 {
        1.0
    }
}

/// Long when the fast simple moving average of closes is above the slow one, short when below.
#[derive(Debug, Clone)]
pub struct MovingAverageCrossover {
    pub fast: usize,
    pub slow: usize,
}

impl Default for MovingAverageCrossover {
    fn default() -> Self {
        MovingAverageCrossover { fast: 5, slow: 20 }
    }
}

impl Strategy for MovingAverageCrossover {
    fn name(&self) -> String {
        format!("ma_crossover_{}_{}", self.fast, self.slow)
    }
    fn target(&mut self, ctx: &Context<'_>) -> f64 {
        let n = ctx.bars.len();
        if self.fast == 0 || self.slow <= self.fast || n < self.slow {
            return 0.0;
        }
        let mean = |k: usize| ctx.bars[n - k..].iter().map(|b| b.close).sum::<f64>() / k as f64;
        let (fast, slow) = (mean(self.fast), mean(self.slow));
        if fast > slow {
            1.0
        } else if fast < slow {
            -1.0
        } else {
            0.0
        }
    }
}

/// The names `builtin` accepts, for error messages and `--help`.
pub const NAMES: &str = "strategies: always_flat, buy_and_hold, ma_crossover, ma_crossover:FAST:SLOW";

/// A reference strategy by name, for the CLI and the Python batch call.
///
/// Names: `always_flat`, `buy_and_hold`, `ma_crossover` (5/20) or `ma_crossover:FAST:SLOW`.
pub fn builtin(name: &str) -> Option<Box<dyn Strategy>> {
    match name {
        "always_flat" | "flat" => Some(Box::new(AlwaysFlat)),
        "buy_and_hold" => Some(Box::new(BuyAndHold)),
        "ma_crossover" => Some(Box::new(MovingAverageCrossover::default())),
        other => {
            let rest = other.strip_prefix("ma_crossover:")?;
            let (fast, slow) = rest.split_once(':')?;
            let (fast, slow) = (fast.parse().ok()?, slow.parse().ok()?);
            (fast > 0 && slow > fast).then(|| Box::new(MovingAverageCrossover { fast, slow }) as Box<dyn Strategy>)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(closes: &[f64]) -> Vec<Bar> {
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar { ts_us: i as i64, open: c, high: c, low: c, close: c, volume: 1.0 })
            .collect()
    }

    #[test]
    fn crossover_follows_the_trend() {
        let mut s = MovingAverageCrossover { fast: 2, slow: 4 };
        let up = bars(&[1.0, 2.0, 3.0, 4.0]);
        let down = bars(&[4.0, 3.0, 2.0, 1.0]);
        let ctx = |b| Context { bars: b, position: 0.0, equity: 200.0 };
        assert_eq!(s.target(&ctx(&up)), 1.0);
        assert_eq!(s.target(&ctx(&down)), -1.0);
        assert_eq!(s.target(&ctx(&up[..3])), 0.0, "not enough bars yet");
    }

    #[test]
    fn builtin_names_parse() {
        assert_eq!(builtin("ma_crossover:3:9").unwrap().name(), "ma_crossover_3_9");
        assert!(builtin("ma_crossover:9:3").is_none());
        assert!(builtin("nope").is_none());
    }
}
