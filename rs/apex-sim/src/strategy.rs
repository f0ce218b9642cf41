//! The strategy slot: how an outside strategy trades inside the simulation, and the reference strategies used in tests.
//!
//! A strategy sees closed bars (after its market-data latency) and answers with a signal in [-1, 1]; the slot trades
//! it by the shared rule (`apex-rule`: direction from the sign, half-Kelly size, 3:1 ATR bracket as the position's
//! take-profit and stop-loss). GP trees and ONNX policies plug in here.
//! A strategy that computes its own features from the public streams asks for them with [`Strategy::feed`]: the
//! market then hands it every public trade and, if asked, every L2 message it publishes, in time order, before each
//! decision.

use crate::{EngineBook, L2Update};

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
    /// Sum of price * size over the bar's trades, in quote units.
    pub turnover: f64,
}

/// What a strategy knows when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Every bar closed so far that the strategy's latency lets it see, oldest first; the last is the newest.
    pub bars: &'a [Bar],
    /// The direction of the slot's current position: +1 long, -1 short, 0 flat.
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
    /// The signal in [-1, 1] the rule trades (its sign is the wanted direction, its size scales the risk; values
    /// outside are clipped, NaN means flat).
    fn target(&mut self, ctx: &Context<'_>) -> f64;
    /// What the strategy receives between decisions (bars only, by default).
    fn feed(&self) -> Feed {
        Feed::Bars
    }
    /// A public trade, in time order (only with a [`Feed`] that includes trades).
    fn on_trade(&mut self, _trade: &PublicTrade) {}
    /// A published L2 message, in time order with the trades (only with [`Feed::TradesAndBook`]).
    fn on_book(&mut self, _update: &L2Update) {}
    /// A message of the simulator's own publisher, with the top levels of each side after it: what a copy of the
    /// book rebuilt from every message would hold, so a strategy may read it instead of keeping that copy (and the
    /// market need not make the message). By default the message goes to [`Strategy::on_book`].
    fn on_engine_book(&mut self, book: &EngineBook<'_>) {
        self.on_book(&book.message());
    }
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

/// The built-in strategies: (name as written on the command line, what it does). The one list the CLI's `--help`,
/// its checks (`_core.sim_strategies()`, `_core.sim_strategy_check`) and [`parse`] read.
pub const BUILTINS: [(&str, &str); 4] = [
    ("always_flat", "never trades (alias: flat)"),
    ("buy_and_hold", "goes fully long at the first decision and holds"),
    ("ma_crossover", "long when the 5-bar mean of closes is above the 20-bar mean, short when below"),
    ("ma_crossover:FAST:SLOW", "the same with FAST and SLOW bar counts"),
];

/// Longest moving average of `ma_crossover:FAST:SLOW`, in bars.
pub const MA_MAX_BARS: usize = 100_000;

/// Why a strategy name is not a built-in strategy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategyError {
    #[error("unknown strategy '{name}'; one of {}", builtin_names())]
    Unknown { name: String },
    #[error("'{name}': write ma_crossover:FAST:SLOW with FAST and SLOW whole bar counts")]
    Syntax { name: String },
    #[error(
        "{name}: FAST ({fast}) must be at least 1 and smaller than SLOW ({slow}), at most {MA_MAX_BARS} bars (the fast \
         mean crosses the slow one)"
    )]
    Windows { name: String, fast: usize, slow: usize },
}

/// The built-in names, comma-separated (for messages and `--help`).
#[must_use]
pub fn builtin_names() -> String {
    BUILTINS.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")
}

/// The built-in strategy `name` names (see [`BUILTINS`]): `always_flat` (or `flat`), `buy_and_hold`, `ma_crossover`
/// (5/20) or `ma_crossover:FAST:SLOW` with 1 <= FAST < SLOW <= [`MA_MAX_BARS`] written in ASCII digits.
///
/// # Errors
/// [`StrategyError`] saying what is wrong with the name.
pub fn parse(name: &str) -> Result<Box<dyn Strategy>, StrategyError> {
    match name {
        "always_flat" | "flat" => return Ok(Box::new(AlwaysFlat)),
        "buy_and_hold" => return Ok(Box::new(BuyAndHold)),
        "ma_crossover" => return Ok(Box::new(MovingAverageCrossover::default())),
        _ => {}
    }
    let Some(rest) = name.strip_prefix("ma_crossover:") else {
        return Err(StrategyError::Unknown { name: name.to_owned() });
    };
    // Digits too many for a usize are a count out of range (usize::MAX), not a syntax error; the other count stays
    // what was written, so the message does not misquote it.
    let count = |text: &str| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().unwrap_or(usize::MAX))
    };
    let Some((fast, slow)) = rest.split_once(':').and_then(|(fast, slow)| Some((count(fast)?, count(slow)?))) else {
        return Err(StrategyError::Syntax { name: name.to_owned() });
    };
    if !(1 <= fast && fast < slow && slow <= MA_MAX_BARS) {
        return Err(StrategyError::Windows { name: name.to_owned(), fast, slow });
    }
    Ok(Box::new(MovingAverageCrossover { fast, slow }))
}

/// A reference strategy by name (see [`parse`]), `None` for a name that is not one.
#[must_use]
pub fn builtin(name: &str) -> Option<Box<dyn Strategy>> {
    parse(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(closes: &[f64]) -> Vec<Bar> {
        closes
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar { ts_us: i as i64, open: c, high: c, low: c, close: c, volume: 1.0, turnover: c })
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

    #[test]
    fn parse_says_what_is_wrong() {
        let err = |name: &str| parse(name).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(parse("flat").unwrap().name(), "always_flat");
        assert_eq!(
            err("moon"),
            "unknown strategy 'moon'; one of always_flat, buy_and_hold, ma_crossover, ma_crossover:FAST:SLOW"
        );
        for bad in ["ma_crossover:fast", "ma_crossover:5", "ma_crossover:+5:9", "ma_crossover:5:9:1", "ma_crossover::9"]
        {
            assert!(matches!(parse(bad), Err(StrategyError::Syntax { .. })), "{bad}");
        }
        assert!(err("ma_crossover:20:5").contains("FAST (20) must be at least 1 and smaller than SLOW (5)"));
        assert!(matches!(parse("ma_crossover:0:5"), Err(StrategyError::Windows { .. })));
        assert!(matches!(parse("ma_crossover:1:100001"), Err(StrategyError::Windows { .. })));
        assert!(matches!(parse("ma_crossover:1:99999999999999999999999"), Err(StrategyError::Windows { .. })));
        assert!(err("ma_crossover:99999999999999999999:1").contains(&format!("FAST ({}) must", usize::MAX)));
        assert!(err("ma_crossover:99999999999999999999:1").contains("than SLOW (1)"));
        assert_eq!(parse("ma_crossover:1:100000").unwrap().name(), "ma_crossover_1_100000");
    }
}
