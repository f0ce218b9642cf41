//! Vectorized backtester: many signal columns over shared bars, each traded by the shared rule (`apex-rule`: half-Kelly,
//! 3:1 ATR bracket), with costs, ruin and TTT fitness.
//!
//! # Model (one strategy; each strategy is independent, so many run in parallel with identical results)
//!
//! - **The rule.** At the close of every span bar `t` the strategy's [`apex_rule::TradeRule`] is told the bar, the
//!   signal of `t` and the equity marked at the close, and decides (hold, exit, enter, or exit and enter the other
//!   way; see the `apex-rule` crate for direction, sizing and the bracket). The decision is acted on at the open of
//!   `t + 1`: the position is closed first, then the entry opened with the decision's quantity and bracket levels
//!   (set from the close of `t`). The last span bar's decision is never acted on. Every fill is reported back to
//!   the rule, which keeps the trade record its win rate comes from.
//! - **The bracket.** After the open's fills, if the open is at or beyond the stop or the take-profit the position
//!   exits at the open; else if the low (long) / high (short) touches the stop it exits at the stop level, else if
//!   the bar touches the take-profit it exits there; stop first when both are in one bar (conservative).
//! - **Costs.** Each fill pays `fee * qty * fill_price`. Fill price = `price * (1 ± slip)` against the trader,
//!   `slip = min(spread_bps / 2 / 1e4 + impact * qty * price / depth, MAX_SLIPPAGE)` (half spread plus impact linear
//!   in order notional over depth; per-bar columns when given, else the parameters). The cap keeps a fill price
//!   positive: an order many times the book's depth fills at half (sell) or 1.5 times (buy) the price, a ruinous
//!   cost rather than a negative price that would turn the loss into a gain.
//! - **Margin and ruin.** Initial margin is `notional / max_leverage`, which the rule's leverage cap keeps within
//!   equity. Equity = cash + open position marked at the close. The strategy is liquidated and stops for good
//!   (equity 0, `ruined`) when equity after the open's fills, at the bar's adverse extreme, or at the close is <= 0.
//! - **Metrics.** TTT is the first bar whose closing equity is >= `target_multiple * capital`: `ttt_bars` counts the
//!   span bars up to and including it, `ttt_seconds = (ts[bar] - ts[start]) / 1e9 + mean bar length`. Fitness ranks
//!   all strategies on one axis: reached target -> `2 + (n - ttt_bars) / n` in [2, 3); never reached ->
//!   `max_equity / target_equity` in [0.5, 1); ruined (even after reaching) -> `-1 + ruin_bar / n` in [-1, 0).
//!   Sharpe: mean / sample std of per-bar equity returns times `sqrt(bars per year)` (0 when undefined). A trade
//!   (entry to flat) wins when its return net of both fees is > 0. A position still open at the end of the span is
//!   marked, not closed, and not counted as a trade.

mod engine;
mod error;
mod params;

use std::borrow::Cow;
use std::ops::Range;

use rayon::prelude::*;

pub use apex_rule::{Decision, Instrument, RuleParams};
pub use error::BacktestError;
pub use params::BacktestParams;

/// The largest slippage a fill pays, as a fraction of the price (see the costs above).
pub const MAX_SLIPPAGE: f64 = 0.5;

/// Bars as borrowed columns of equal length; `ts` is the bar open in UTC nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Bars<'a> {
    pub ts: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    /// Validated but not used by the model yet (depth is a separate input).
    pub volume: &'a [f64],
    /// Per-bar spread in basis points; `None` uses [`BacktestParams::spread_bps`].
    pub spread_bps: Option<&'a [f64]>,
    /// Per-bar depth in quote currency; `None` uses [`BacktestParams::depth`].
    pub depth: Option<&'a [f64]>,
}

apex_core::row_count!(Bars<'_>);

/// [`Bars`]' columns, each held by value or borrowed on its own (a binding copies only the strided arrays, a test
/// builds vectors); [`BarColumns::view`] lends them as [`Bars`].
#[derive(Debug, Clone, Default)]
pub struct BarColumns<'a> {
    pub ts: Cow<'a, [i64]>,
    pub open: Cow<'a, [f64]>,
    pub high: Cow<'a, [f64]>,
    pub low: Cow<'a, [f64]>,
    pub close: Cow<'a, [f64]>,
    pub volume: Cow<'a, [f64]>,
    pub spread_bps: Option<Cow<'a, [f64]>>,
    pub depth: Option<Cow<'a, [f64]>>,
}

impl BarColumns<'_> {
    /// The columns as the backtester reads them.
    #[must_use]
    pub fn view(&self) -> Bars<'_> {
        Bars {
            ts: &self.ts,
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            volume: &self.volume,
            spread_bps: self.spread_bps.as_deref(),
            depth: self.depth.as_deref(),
        }
    }
}

/// The scores of one strategy over one span.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Ranking scalar (higher is better), see the crate documentation.
    pub fitness: f64,
    /// Whether equity reached the target at some bar close.
    pub reached: bool,
    /// Span bars up to and including the first bar closing at or above the target.
    pub ttt_bars: Option<usize>,
    /// Seconds from the span's first bar open to the end of the target bar; NaN when never reached.
    pub ttt_seconds: f64,
    /// Whether the strategy was liquidated.
    pub ruined: bool,
    /// Span bar index of the liquidation.
    pub ruin_bar: Option<usize>,
    /// Equity at the last bar close.
    pub final_equity: f64,
    /// `final_equity - capital`.
    pub pnl: f64,
    /// Highest bar-close equity, starting capital included.
    pub max_equity: f64,
    /// Annualized Sharpe ratio of per-bar equity returns.
    pub sharpe: f64,
    /// Largest peak-to-trough fall of bar-close equity, as a fraction of the peak.
    pub max_drawdown: f64,
    /// Closed trades.
    pub trades: usize,
    /// Closed trades with a positive net return.
    pub wins: usize,
    /// `wins / trades` (0 without trades).
    pub win_rate: f64,
    /// Total fees paid.
    pub fees: f64,
}

/// Backtests every strategy of `signals` (row-major, strategies x `bars.len()`) over the rows `span`, in parallel.
///
/// Results are identical for any number of rayon threads: strategies never share state.
///
/// # Errors
/// Bad shapes, non-finite or non-positive prices, bars whose high/low do not contain open/close, timestamps that do
/// not increase, an empty or out-of-range span, or parameters out of range (see [`BacktestError`]).
pub fn run(
    bars: &Bars<'_>,
    signals: &[f64],
    params: &BacktestParams,
    span: Range<usize>,
) -> Result<Vec<Metrics>, BacktestError> {
    let context = engine::Context::new(bars, params, span)?;
    let rows = bars.len();
    if !signals.len().is_multiple_of(rows) {
        return Err(BacktestError::SignalShape { len: signals.len(), rows });
    }
    Ok(signals
        .par_chunks(rows)
        .map(|signal| {
            apex_cancel::checkpoint(); // an interrupted caller stops between strategies
            context.simulate(signal, None, None)
        })
        .collect())
}

/// Equity at each bar close of `span` for one strategy (`signal` has one value per bar), for reports.
///
/// # Errors
/// As [`run`], with [`BacktestError::LengthMismatch`] when `signal` is not one value per bar.
pub fn equity_curve(
    bars: &Bars<'_>,
    signal: &[f64],
    params: &BacktestParams,
    span: Range<usize>,
) -> Result<Vec<f64>, BacktestError> {
    let context = engine::Context::new(bars, params, span.clone())?;
    if signal.len() != bars.len() {
        return Err(BacktestError::LengthMismatch { column: "signal", len: signal.len(), expected: bars.len() });
    }
    let mut curve = Vec::with_capacity(span.len());
    context.simulate(signal, Some(&mut curve), None);
    Ok(curve)
}

/// The rule's decision at each bar close of `span` for one strategy (acted on at the next bar's open), for reports
/// and for comparing the backtest's decisions with the simulator's and the live engine's.
///
/// # Errors
/// As [`equity_curve`].
pub fn decisions(
    bars: &Bars<'_>,
    signal: &[f64],
    params: &BacktestParams,
    span: Range<usize>,
) -> Result<Vec<Decision>, BacktestError> {
    let context = engine::Context::new(bars, params, span.clone())?;
    if signal.len() != bars.len() {
        return Err(BacktestError::LengthMismatch { column: "signal", len: signal.len(), expected: bars.len() });
    }
    let mut decisions = Vec::with_capacity(span.len());
    context.simulate(signal, None, Some(&mut decisions));
    Ok(decisions)
}
