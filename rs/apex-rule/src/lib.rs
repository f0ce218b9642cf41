//! apex-rule: the one trading rule, shared by the backtester, the simulator's strategy slot and the live engine.
//!
//! [`TradeRule`] is a streaming object: each closed bar it is told the bar, the strategy's signal and the slot's
//! equity, and answers with a [`Decision`] (hold, exit, enter, or exit and enter the other way); each fill of the
//! slot's orders is reported back to it. The three drivers only differ in how fills happen (bar prices in the
//! backtest, the matching engine in the simulator, the exchange live), so one tree traded by all three follows the
//! same rule.
//!
//! # The rule
//!
//! - **Direction.** The signal is clipped to [-1, 1] (NaN reads as 0). The rule wants `sign(s)` when
//!   `|s| >= entry_threshold`, else flat. A position is held while the wanted direction stays the same (it is not
//!   resized); it is closed when the wanted direction changes, and a new one is opened in the same step when the new
//!   direction is not flat. The decision of bar `t` is acted on right after `t` closes (the backtest: at the open of
//!   `t + 1`).
//! - **Stop and target (the 3:1 bracket).** The stop distance is
//!   `d = max(stop_atr_mult * ATR, stop_min_bps * close / 1e4)`, with ATR the mean true range of the up to
//!   `atr_window` bars up to and including `t` (the first bar's true range is high - low). The levels are set from
//!   the reference price, the close of `t`: stop `close -/+ d`, take-profit `close +/- b * d` with `b = reward_risk`
//!   (3), rounded to the tick. A driver brackets the position with them (the exchange's TP/SL live and in the
//!   simulator; bar highs and lows in the backtest).
//! - **Size (half-Kelly).** With win probability `p` and payoff `b`, the Kelly risk fraction is
//!   `f* = (p * b - (1 - p)) / b`, and the rule risks `f = clamp(kelly_scale * f*, min_fraction, max_fraction)`
//!   (`kelly_scale` = 0.5: `f = 0.5 * (p * b - (1 - p)) / b`) of equity, times `|s|`. `f` is the share of equity
//!   lost if the stop is hit, so the quantity is `f * |s| * equity / d`, capped by `max_leverage * equity / close`
//!   and the instrument's largest order, rounded down to its step; below its smallest order (or notional) there is
//!   no entry.
//! - **Where `p` comes from.** By default, the strategy's own record: over its last `kelly_window` closed trades
//!   (a trade wins when its return net of both fees is > 0), `p = (wins + p0 * n0) / (trades + n0)` with the prior
//!   `p0 = prior_win_rate`, `n0 = prior_trades`. A caller with a model of the trade's outcome (the live engine's MAML
//!   return model: the probability that the price moves the trade's way) passes it instead.
//! - **The record.** The rule keeps the slot's position from the fills it is told of (average entry, fees, realized
//!   PnL); when the position returns to zero the trade closes and its net return enters the record.

mod error;
mod params;
mod rule;

pub use error::RuleError;
pub use params::{Instrument, RuleParams};
pub use rule::{Bar, Decision, Entry, TradeRule, kelly_fraction};
