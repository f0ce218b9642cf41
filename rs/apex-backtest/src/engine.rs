//! The per-strategy loop over one span, with the columns every strategy shares computed once per call.

use std::collections::VecDeque;
use std::ops::Range;

use crate::{BacktestError, BacktestParams, Bars, Metrics};

const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;

/// Validated bars plus the per-bar columns that do not depend on the strategy.
pub(crate) struct Context<'a> {
    bars: &'a Bars<'a>,
    params: &'a BacktestParams,
    span: Range<usize>,
    /// Stop distance for an entry at each span bar (index relative to the span start).
    stop_distance: Vec<f64>,
    /// Half spread as a fraction, per span bar.
    half_spread: Vec<f64>,
    /// Depth in quote currency, per span bar.
    depth: Vec<f64>,
    bar_seconds: f64,
}

fn check_length(column: &'static str, len: usize, expected: usize) -> Result<(), BacktestError> {
    if len == expected { Ok(()) } else { Err(BacktestError::LengthMismatch { column, len, expected }) }
}

fn check_values(
    column: &'static str,
    values: &[f64],
    span: &Range<usize>,
    ok: fn(f64) -> bool,
    why: &'static str,
) -> Result<(), BacktestError> {
    match values[span.clone()].iter().position(|&value| !(value.is_finite() && ok(value))) {
        Some(offset) => {
            let row = span.start + offset;
            Err(BacktestError::BadValue { column, row, value: values[row], why })
        }
        None => Ok(()),
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        bars: &'a Bars<'a>,
        params: &'a BacktestParams,
        span: Range<usize>,
    ) -> Result<Self, BacktestError> {
        params.validate()?;
        let rows = bars.len();
        for (column, len) in [
            ("open", bars.open.len()),
            ("high", bars.high.len()),
            ("low", bars.low.len()),
            ("close", bars.close.len()),
            ("volume", bars.volume.len()),
        ] {
            check_length(column, len, rows)?;
        }
        if let Some(spread) = bars.spread_bps {
            check_length("spread_bps", spread.len(), rows)?;
        }
        if let Some(depth) = bars.depth {
            check_length("depth", depth.len(), rows)?;
        }
        if span.start >= span.end || span.end > rows {
            return Err(BacktestError::BadSpan { start: span.start, end: span.end, rows });
        }
        let positive = |value: f64| value > 0.0;
        for (column, values) in [("open", bars.open), ("high", bars.high), ("low", bars.low), ("close", bars.close)] {
            check_values(column, values, &span, positive, "prices must be finite and positive")?;
        }
        check_values("volume", bars.volume, &span, |v| v >= 0.0, "volume must be finite and >= 0")?;
        if let Some(spread) = bars.spread_bps {
            check_values("spread_bps", spread, &span, |v| v >= 0.0, "spread must be finite and >= 0")?;
        }
        if let Some(depth) = bars.depth {
            check_values("depth", depth, &span, positive, "depth must be finite and positive")?;
        }
        for row in span.clone() {
            let (high, low) = (bars.high[row], bars.low[row]);
            let body = [bars.open[row], bars.close[row]];
            if high < low || body.iter().any(|&price| price > high || price < low) {
                return Err(BacktestError::BadBar { row, high, low });
            }
            if row > span.start && bars.ts[row] <= bars.ts[row - 1] {
                return Err(BacktestError::NotIncreasing { row });
            }
        }

        let n = span.len();
        let true_range: Vec<f64> = span
            .clone()
            .map(|row| {
                let range = bars.high[row] - bars.low[row];
                if row == span.start {
                    range
                } else {
                    let previous = bars.close[row - 1];
                    range.max((bars.high[row] - previous).abs()).max((bars.low[row] - previous).abs())
                }
            })
            .collect();
        let stop_distance = (0..n)
            .map(|k| {
                let first = k.saturating_sub(params.atr_window);
                let window = &true_range[first..k];
                let atr = if window.is_empty() { 0.0 } else { window.iter().sum::<f64>() / window.len() as f64 };
                let open = bars.open[span.start + k];
                (params.stop_atr_mult * atr).max(params.stop_min_bps * open / 1e4)
            })
            .collect();
        let half_spread =
            span.clone().map(|row| bars.spread_bps.map_or(params.spread_bps, |s| s[row]) / 2.0 / 1e4).collect();
        let depth = span.clone().map(|row| bars.depth.map_or(params.depth, |d| d[row])).collect();
        let bar_seconds =
            if n >= 2 { (bars.ts[span.end - 1] - bars.ts[span.start]) as f64 / 1e9 / (n - 1) as f64 } else { 0.0 };
        Ok(Self { bars, params, span, stop_distance, half_spread, depth, bar_seconds })
    }

    /// Direction a signal value asks for: +1, -1 or 0 (flat).
    fn direction(&self, signal: f64) -> f64 {
        let signal = if signal.is_nan() { 0.0 } else { signal.clamp(-1.0, 1.0) };
        if signal.abs() >= self.params.entry_threshold && signal != 0.0 { signal.signum() } else { 0.0 }
    }

    /// Price paid (`side` +1) or received (`side` -1) for `qty` at `price` in span bar `k`.
    fn fill_price(&self, price: f64, side: f64, qty: f64, k: usize) -> f64 {
        let slip = self.half_spread[k] + self.params.impact * qty * price / self.depth[k];
        price * (1.0 + side * slip)
    }

    /// Runs one strategy; `signal` holds one value per bar of the whole data, only the span's are read.
    pub(crate) fn simulate(&self, signal: &[f64], mut curve: Option<&mut Vec<f64>>) -> Metrics {
        let params = self.params;
        let bars = self.bars;
        let n = self.span.len();
        let target_equity = params.target_multiple * params.capital;
        let mut account = Account::new(params);
        let mut stats = CurveStats::new(params.capital);
        let mut ttt_bars = None;
        let mut ruin_bar = None;

        for k in 0..n {
            let row = self.span.start + k;
            if ruin_bar.is_some() {
                stats.push(0.0);
                if let Some(curve) = curve.as_deref_mut() {
                    curve.push(0.0);
                }
                continue;
            }
            let wanted = if k == 0 { 0.0 } else { self.direction(signal[row - 1]) };
            let strength = if k == 0 { 0.0 } else { signal[row - 1].clamp(-1.0, 1.0).abs() };
            let open = bars.open[row];

            if let Some(position) = account.position {
                let long = position.direction > 0.0;
                let gapped_stop = if long { open <= position.stop } else { open >= position.stop };
                let gapped_take = if long { open >= position.take } else { open <= position.take };
                if gapped_stop || gapped_take || wanted != position.direction {
                    account.exit(self, open, k);
                }
            }
            let mut ruined = account.equity_at(open) <= 0.0;
            if !ruined && account.position.is_none() && wanted != 0.0 {
                account.enter(self, wanted, strength, k);
                ruined = account.equity_at(open) <= 0.0;
            }
            if !ruined && let Some(position) = account.position {
                let (high, low) = (bars.high[row], bars.low[row]);
                let long = position.direction > 0.0;
                if if long { low <= position.stop } else { high >= position.stop } {
                    account.exit(self, position.stop, k);
                } else if if long { high >= position.take } else { low <= position.take } {
                    account.exit(self, position.take, k);
                }
                ruined = account.equity_at(if long { low } else { high }) <= 0.0;
            }
            let mut equity = account.equity_at(bars.close[row]);
            if ruined || equity <= 0.0 {
                ruin_bar = Some(k);
                account.position = None;
                equity = 0.0;
            }
            stats.push(equity);
            if let Some(curve) = curve.as_deref_mut() {
                curve.push(equity);
            }
            if ttt_bars.is_none() && equity >= target_equity {
                ttt_bars = Some(k + 1);
            }
        }

        let n_f = n as f64;
        let fitness = match (ruin_bar, ttt_bars) {
            (Some(bar), _) => -1.0 + bar as f64 / n_f,
            (None, Some(bars_taken)) => 2.0 + (n - bars_taken) as f64 / n_f,
            (None, None) => stats.max_equity / target_equity,
        };
        let ttt_seconds = ttt_bars.map_or(f64::NAN, |bars_taken| {
            (bars.ts[self.span.start + bars_taken - 1] - bars.ts[self.span.start]) as f64 / 1e9 + self.bar_seconds
        });
        let periods_per_year = if self.bar_seconds > 0.0 { SECONDS_PER_YEAR / self.bar_seconds } else { 1.0 };
        Metrics {
            fitness,
            reached: ttt_bars.is_some(),
            ttt_bars,
            ttt_seconds,
            ruined: ruin_bar.is_some(),
            ruin_bar,
            final_equity: stats.last,
            pnl: stats.last - params.capital,
            max_equity: stats.max_equity,
            sharpe: stats.sharpe(periods_per_year),
            max_drawdown: stats.max_drawdown,
            trades: account.trades,
            wins: account.wins,
            win_rate: if account.trades == 0 { 0.0 } else { account.wins as f64 / account.trades as f64 },
            fees: account.fees,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Position {
    direction: f64,
    qty: f64,
    entry: f64,
    entry_fee: f64,
    stop: f64,
    take: f64,
}

/// Cash, the open position and the closed-trade record the Kelly estimate reads.
struct Account<'p> {
    params: &'p BacktestParams,
    cash: f64,
    position: Option<Position>,
    recent_returns: VecDeque<f64>,
    trades: usize,
    wins: usize,
    fees: f64,
}

impl<'p> Account<'p> {
    fn new(params: &'p BacktestParams) -> Self {
        Self {
            params,
            cash: params.capital,
            position: None,
            recent_returns: VecDeque::with_capacity(params.kelly_window),
            trades: 0,
            wins: 0,
            fees: 0.0,
        }
    }

    fn equity_at(&self, price: f64) -> f64 {
        self.position.map_or(self.cash, |p| self.cash + p.qty * (price - p.entry) * p.direction)
    }

    /// Risk fraction: scaled Kelly from the recent closed trades, or the prior before enough of them.
    fn risk_fraction(&self) -> f64 {
        let params = self.params;
        let count = self.recent_returns.len();
        if count < params.kelly_min_trades {
            return params.prior_fraction;
        }
        let (mut win_sum, mut win_count, mut loss_sum) = (0.0, 0usize, 0.0);
        for &trade_return in &self.recent_returns {
            if trade_return > 0.0 {
                win_sum += trade_return;
                win_count += 1;
            } else {
                loss_sum -= trade_return;
            }
        }
        let loss_count = count - win_count;
        kelly_fraction(win_count, win_sum, loss_count, loss_sum, params)
    }

    fn enter(&mut self, context: &Context<'_>, direction: f64, strength: f64, k: usize) {
        let open = context.bars.open[context.span.start + k];
        let stop_distance = context.stop_distance[k];
        let equity = self.cash;
        let notional =
            (strength * self.risk_fraction() * equity * open / stop_distance).min(self.params.max_leverage * equity);
        if notional <= 0.0 {
            return;
        }
        let qty = notional / open;
        let entry = context.fill_price(open, direction, qty, k);
        let fee = self.params.fee * qty * entry;
        self.cash -= fee;
        self.fees += fee;
        self.position = Some(Position {
            direction,
            qty,
            entry,
            entry_fee: fee,
            stop: entry - direction * stop_distance,
            take: entry + direction * self.params.reward_risk * stop_distance,
        });
    }

    fn exit(&mut self, context: &Context<'_>, price: f64, k: usize) {
        let Some(position) = self.position.take() else { return };
        let fill = context.fill_price(price, -position.direction, position.qty, k);
        let fee = self.params.fee * position.qty * fill;
        let gross = position.qty * (fill - position.entry) * position.direction;
        self.cash += gross - fee;
        self.fees += fee;
        let trade_return = (gross - position.entry_fee - fee) / (position.qty * position.entry);
        if self.recent_returns.len() == self.params.kelly_window {
            self.recent_returns.pop_front();
        }
        self.recent_returns.push_back(trade_return);
        self.trades += 1;
        if trade_return > 0.0 {
            self.wins += 1;
        }
    }
}

/// `clamp(kelly_scale * (W - (1 - W) / R), min_fraction, max_fraction)` from window sums of wins and |losses|.
pub(crate) fn kelly_fraction(
    win_count: usize,
    win_sum: f64,
    loss_count: usize,
    loss_sum: f64,
    params: &BacktestParams,
) -> f64 {
    let trades = (win_count + loss_count) as f64;
    let win_rate = win_count as f64 / trades;
    let kelly = if win_count == 0 {
        f64::NEG_INFINITY
    } else if loss_count == 0 || loss_sum <= 0.0 {
        win_rate
    } else {
        let payoff = (win_sum / win_count as f64) / (loss_sum / loss_count as f64);
        win_rate - (1.0 - win_rate) / payoff
    };
    (params.kelly_scale * kelly).clamp(params.min_fraction, params.max_fraction)
}

/// Running statistics of the bar-close equity curve.
struct CurveStats {
    previous: f64,
    last: f64,
    max_equity: f64,
    peak: f64,
    max_drawdown: f64,
    count: usize,
    mean: f64,
    m2: f64,
}

impl CurveStats {
    fn new(capital: f64) -> Self {
        Self {
            previous: capital,
            last: capital,
            max_equity: capital,
            peak: capital,
            max_drawdown: 0.0,
            count: 0,
            mean: 0.0,
            m2: 0.0,
        }
    }

    fn push(&mut self, equity: f64) {
        let bar_return = if self.previous > 0.0 { equity / self.previous - 1.0 } else { 0.0 };
        self.count += 1;
        let delta = bar_return - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (bar_return - self.mean);
        self.previous = equity;
        self.last = equity;
        self.max_equity = self.max_equity.max(equity);
        self.peak = self.peak.max(equity);
        self.max_drawdown = self.max_drawdown.max((self.peak - equity) / self.peak);
    }

    fn sharpe(&self, periods_per_year: f64) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let std = (self.m2 / (self.count - 1) as f64).sqrt();
        if std > 0.0 { self.mean / std * periods_per_year.sqrt() } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kelly_from_a_known_history() {
        let params = BacktestParams::default();
        // 12 wins of +3%, 8 losses of -1%: W = 0.6, R = 3, f* = 0.6 - 0.4 / 3 = 0.4667, half = 0.2333.
        let fraction = kelly_fraction(12, 12.0 * 0.03, 8, 8.0 * 0.01, &params);
        assert!((fraction - 0.5 * (0.6 - 0.4 / 3.0)).abs() < 1e-12, "{fraction}");
        // A losing record floors at min_fraction, a perfect one caps at max_fraction.
        assert_eq!(kelly_fraction(0, 0.0, 20, 0.2, &params), params.min_fraction);
        assert_eq!(kelly_fraction(20, 0.2, 0, 0.0, &params), params.max_fraction);
        // W = 0.5, R = 1: no edge, f* = 0, floor.
        assert_eq!(kelly_fraction(10, 0.1, 10, 0.1, &params), params.min_fraction);
    }
}
