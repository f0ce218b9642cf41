//! The per-strategy loop over one span, with the columns every strategy shares computed once per call.

use std::ops::Range;

use apex_core::Side;
use apex_rule::{Bar, Decision, Entry, TradeRule};

use crate::{BacktestError, BacktestParams, Bars, Metrics};

const SECONDS_PER_YEAR: f64 = 365.25 * 86_400.0;

/// Validated bars plus the per-bar columns that do not depend on the strategy.
pub(crate) struct Context<'a> {
    bars: &'a Bars<'a>,
    params: &'a BacktestParams,
    span: Range<usize>,
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
        if let Some((column, len)) = apex_core::short_column!(bars, rows; open, high, low, close, volume) {
            return Err(BacktestError::LengthMismatch { column, len, expected: rows });
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
        let half_spread =
            span.clone().map(|row| bars.spread_bps.map_or(params.spread_bps, |s| s[row]) / 2.0 / 1e4).collect();
        let depth = span.clone().map(|row| bars.depth.map_or(params.depth, |d| d[row])).collect();
        let bar_seconds =
            if n >= 2 { (bars.ts[span.end - 1] - bars.ts[span.start]) as f64 / 1e9 / (n - 1) as f64 } else { 0.0 };
        Ok(Self { bars, params, span, half_spread, depth, bar_seconds })
    }

    /// Price paid (`side` +1) or received (`side` -1) for `qty` at `price` in span bar `k`.
    fn fill_price(&self, price: f64, side: f64, qty: f64, k: usize) -> f64 {
        let slip = (self.half_spread[k] + self.params.impact * qty * price / self.depth[k]).min(crate::MAX_SLIPPAGE);
        price * (1.0 + side * slip)
    }

    /// Runs one strategy; `signal` holds one value per bar of the whole data, only the span's are read. `curve`
    /// receives the equity at each span bar's close, `decisions` the rule's decision at each span bar's close.
    pub(crate) fn simulate(
        &self,
        signal: &[f64],
        mut curve: Option<&mut Vec<f64>>,
        mut decisions: Option<&mut Vec<Decision>>,
    ) -> Metrics {
        let params = self.params;
        let bars = self.bars;
        let n = self.span.len();
        let target_equity = params.target_multiple * params.capital;
        let mut account = Account::new(params);
        let mut stats = CurveStats::new(params.capital);
        let mut ttt_bars = None;
        let mut ruin_bar = None;
        let mut pending = Decision::Hold;

        for k in 0..n {
            let row = self.span.start + k;
            if ruin_bar.is_some() {
                stats.push(0.0);
                if let Some(curve) = curve.as_deref_mut() {
                    curve.push(0.0);
                }
                if let Some(decisions) = decisions.as_deref_mut() {
                    decisions.push(Decision::Hold);
                }
                continue;
            }
            let (open, high, low, close) = (bars.open[row], bars.high[row], bars.low[row], bars.close[row]);

            // At the open: the previous close's decision, then the bracket (an open beyond a level exits there).
            if pending.closes() {
                account.exit(self, open, k);
            }
            if let Some(entry) = pending.entry() {
                account.enter(self, entry, open, k);
            }
            let beyond = |price: f64, level: f64, above: bool| if above { price >= level } else { price <= level };
            if let Some(position) = account.position {
                let long = position.direction > 0.0;
                if beyond(open, position.stop, !long) || beyond(open, position.take, long) {
                    account.exit(self, open, k);
                }
            }
            let mut ruined = account.equity_at(open) <= 0.0;
            if !ruined && let Some(position) = account.position {
                let long = position.direction > 0.0;
                let (adverse, favourable) = if long { (low, high) } else { (high, low) };
                if beyond(adverse, position.stop, !long) {
                    account.exit(self, position.stop, k);
                } else if beyond(favourable, position.take, long) {
                    account.exit(self, position.take, k);
                }
                ruined = account.equity_at(adverse) <= 0.0;
            }
            let mut equity = account.equity_at(close);
            if ruined || equity <= 0.0 {
                ruin_bar = Some(k);
                account.position = None;
                equity = 0.0;
                pending = Decision::Hold;
            } else {
                pending = account.rule.on_bar(&Bar { open, high, low, close }, signal[row], equity, None);
            }
            stats.push(equity);
            if let Some(curve) = curve.as_deref_mut() {
                curve.push(equity);
            }
            if let Some(decisions) = decisions.as_deref_mut() {
                decisions.push(pending);
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
        let (trades, wins) = account.rule.trades();
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
            trades,
            wins,
            win_rate: if trades == 0 { 0.0 } else { wins as f64 / trades as f64 },
            fees: account.fees,
        }
    }
}

/// The open position with the bracket levels its entry decision set.
#[derive(Debug, Clone, Copy)]
struct Position {
    direction: f64,
    qty: f64,
    entry: f64,
    stop: f64,
    take: f64,
}

/// Cash, the open position, and the rule the fills are reported to.
struct Account {
    fee: f64,
    cash: f64,
    position: Option<Position>,
    rule: TradeRule,
    fees: f64,
}

impl Account {
    fn new(params: &BacktestParams) -> Self {
        let rule = TradeRule::new(params.rule.clone(), params.instrument).expect("validated with the params");
        Self { fee: params.fee, cash: params.capital, position: None, rule, fees: 0.0 }
    }

    fn equity_at(&self, price: f64) -> f64 {
        self.position.map_or(self.cash, |p| self.cash + p.qty * (price - p.entry) * p.direction)
    }

    fn enter(&mut self, context: &Context<'_>, entry: &Entry, open: f64, k: usize) {
        let direction = f64::from(entry.side.sign());
        let qty = entry.qty;
        let price = context.fill_price(open, direction, qty, k);
        let fee = self.fee * qty * price;
        self.cash -= fee;
        self.fees += fee;
        self.position = Some(Position { direction, qty, entry: price, stop: entry.stop, take: entry.take });
        self.rule.on_fill(entry.side, qty, price, fee);
    }

    fn exit(&mut self, context: &Context<'_>, price: f64, k: usize) {
        let Some(position) = self.position.take() else { return };
        let fill = context.fill_price(price, -position.direction, position.qty, k);
        let fee = self.fee * position.qty * fill;
        self.cash += position.qty * (fill - position.entry) * position.direction - fee;
        self.fees += fee;
        let side = if position.direction > 0.0 { Side::Sell } else { Side::Buy };
        self.rule.on_fill(side, position.qty, fill, fee);
    }
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
