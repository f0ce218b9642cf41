//! The naive reference backtester: one strategy, one plain loop over the bars, the whole record kept, metrics after.
#![allow(dead_code, clippy::too_many_arguments, clippy::too_many_lines)]

use apex_backtest::BacktestParams;

/// Bars as owned columns, the way a test builds them.
#[derive(Debug, Clone)]
pub struct OwnedBars {
    pub ts: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    pub spread_bps: Option<Vec<f64>>,
    pub depth: Option<Vec<f64>>,
}

impl OwnedBars {
    pub fn view(&self) -> apex_backtest::Bars<'_> {
        apex_backtest::Bars {
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

    /// Bars from (open, high, low, close) tuples, one minute apart.
    pub fn from_ohlc(rows: &[(f64, f64, f64, f64)]) -> Self {
        Self {
            ts: (0..rows.len() as i64).map(|i| i * 60_000_000_000).collect(),
            open: rows.iter().map(|r| r.0).collect(),
            high: rows.iter().map(|r| r.1).collect(),
            low: rows.iter().map(|r| r.2).collect(),
            close: rows.iter().map(|r| r.3).collect(),
            volume: vec![1.0; rows.len()],
            spread_bps: None,
            depth: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NaiveResult {
    pub equity: Vec<f64>,
    pub trade_returns: Vec<f64>,
    pub fees: f64,
    pub ruin_bar: Option<usize>,
    pub ttt_bars: Option<usize>,
    pub ttt_seconds: f64,
    pub fitness: f64,
    pub final_equity: f64,
    pub max_equity: f64,
    pub sharpe: f64,
    pub max_drawdown: f64,
}

struct Open {
    dir: f64,
    qty: f64,
    entry: f64,
    entry_fee: f64,
    stop: f64,
    take: f64,
}

pub fn naive_backtest(bars: &OwnedBars, signal: &[f64], p: &BacktestParams, start: usize, end: usize) -> NaiveResult {
    let n = end - start;
    let mut cash = p.capital;
    let mut position: Option<Open> = None;
    let mut trade_returns: Vec<f64> = Vec::new();
    let mut equity: Vec<f64> = Vec::new();
    let mut fees = 0.0;
    let mut ruin_bar = None;

    for i in start..end {
        if ruin_bar.is_some() {
            equity.push(0.0);
            continue;
        }
        let spread = bars.spread_bps.as_ref().map_or(p.spread_bps, |s| s[i]);
        let depth = bars.depth.as_ref().map_or(p.depth, |d| d[i]);
        let fill = |price: f64, side: f64, qty: f64| {
            let slip = spread / 2.0 / 1e4 + p.impact * qty * price / depth;
            price * (1.0 + side * slip)
        };
        let mut want = 0.0;
        let mut strength = 0.0;
        if i > start {
            let mut s = signal[i - 1];
            if s.is_nan() {
                s = 0.0;
            }
            s = s.clamp(-1.0, 1.0);
            if s != 0.0 && s.abs() >= p.entry_threshold {
                want = s.signum();
                strength = s.abs();
            }
        }
        let close_trade = |pos: Open, price: f64, cash: &mut f64, fees: &mut f64, trade_returns: &mut Vec<f64>| {
            let exit = fill(price, -pos.dir, pos.qty);
            let fee = p.fee * pos.qty * exit;
            let gross = pos.qty * (exit - pos.entry) * pos.dir;
            *cash += gross - fee;
            *fees += fee;
            trade_returns.push((gross - pos.entry_fee - fee) / (pos.qty * pos.entry));
        };
        let o = bars.open[i];
        if let Some(pos) = position.take() {
            let gap_stop = if pos.dir > 0.0 { o <= pos.stop } else { o >= pos.stop };
            let gap_take = if pos.dir > 0.0 { o >= pos.take } else { o <= pos.take };
            if gap_stop || gap_take || want != pos.dir {
                close_trade(pos, o, &mut cash, &mut fees, &mut trade_returns);
            } else {
                position = Some(pos);
            }
        }
        let value = |pos: &Option<Open>, cash: f64, price: f64| match pos {
            Some(x) => cash + x.qty * (price - x.entry) * x.dir,
            None => cash,
        };
        let mut ruined = value(&position, cash, o) <= 0.0;
        if !ruined && position.is_none() && want != 0.0 {
            // Average true range of the bars before this one, inside the span.
            let first = if i - start > p.atr_window { i - p.atr_window } else { start };
            let mut sum = 0.0;
            for j in first..i {
                let mut tr = bars.high[j] - bars.low[j];
                if j > start {
                    let pc = bars.close[j - 1];
                    tr = tr.max((bars.high[j] - pc).abs()).max((bars.low[j] - pc).abs());
                }
                sum += tr;
            }
            let atr = if i > first { sum / (i - first) as f64 } else { 0.0 };
            let stop = (p.stop_atr_mult * atr).max(p.stop_min_bps * o / 1e4);
            // Kelly from the last trades.
            let f = if trade_returns.len() < p.kelly_min_trades {
                p.prior_fraction
            } else {
                let recent = &trade_returns[trade_returns.len().saturating_sub(p.kelly_window)..];
                let wins: Vec<f64> = recent.iter().copied().filter(|r| *r > 0.0).collect();
                let mut loss_sum = 0.0;
                for r in recent {
                    if *r <= 0.0 {
                        loss_sum -= r;
                    }
                }
                let nw = wins.len();
                let nl = recent.len() - nw;
                let mut win_sum = 0.0;
                for w in &wins {
                    win_sum += w;
                }
                let w = nw as f64 / recent.len() as f64;
                let kelly = if nw == 0 {
                    f64::NEG_INFINITY
                } else if nl == 0 || loss_sum <= 0.0 {
                    w
                } else {
                    w - (1.0 - w) / ((win_sum / nw as f64) / (loss_sum / nl as f64))
                };
                (p.kelly_scale * kelly).clamp(p.min_fraction, p.max_fraction)
            };
            let notional = (strength * f * cash * o / stop).min(p.max_leverage * cash);
            if notional > 0.0 {
                let qty = notional / o;
                let entry = fill(o, want, qty);
                let fee = p.fee * qty * entry;
                cash -= fee;
                fees += fee;
                position = Some(Open {
                    dir: want,
                    qty,
                    entry,
                    entry_fee: fee,
                    stop: entry - want * stop,
                    take: entry + want * p.reward_risk * stop,
                });
            }
            ruined = value(&position, cash, o) <= 0.0;
        }
        if !ruined && let Some(pos) = position.take() {
            let (h, l) = (bars.high[i], bars.low[i]);
            let long = pos.dir > 0.0;
            let adverse = if long { l } else { h };
            let stopped = if long { l <= pos.stop } else { h >= pos.stop };
            let took = if long { h >= pos.take } else { l <= pos.take };
            if stopped {
                let price = pos.stop;
                close_trade(pos, price, &mut cash, &mut fees, &mut trade_returns);
            } else if took {
                let price = pos.take;
                close_trade(pos, price, &mut cash, &mut fees, &mut trade_returns);
            } else {
                position = Some(pos);
            }
            ruined = value(&position, cash, adverse) <= 0.0;
        }
        let mut e = value(&position, cash, bars.close[i]);
        if ruined || e <= 0.0 {
            ruin_bar = Some(i - start);
            position = None;
            e = 0.0;
        }
        equity.push(e);
    }

    let target = p.target_multiple * p.capital;
    let ttt_bars = equity.iter().position(|e| *e >= target).map(|k| k + 1);
    let max_equity = equity.iter().copied().fold(p.capital, f64::max);
    let mut peak = p.capital;
    let mut max_drawdown: f64 = 0.0;
    for e in &equity {
        peak = peak.max(*e);
        max_drawdown = max_drawdown.max((peak - e) / peak);
    }
    let mut returns = Vec::new();
    let mut previous = p.capital;
    for e in &equity {
        returns.push(if previous > 0.0 { e / previous - 1.0 } else { 0.0 });
        previous = *e;
    }
    let bar_seconds = if n >= 2 { (bars.ts[end - 1] - bars.ts[start]) as f64 / 1e9 / (n - 1) as f64 } else { 0.0 };
    let sharpe = if returns.len() >= 2 {
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (returns.len() - 1) as f64;
        let per_year = if bar_seconds > 0.0 { 365.25 * 86400.0 / bar_seconds } else { 1.0 };
        if var.sqrt() > 0.0 { mean / var.sqrt() * per_year.sqrt() } else { 0.0 }
    } else {
        0.0
    };
    let fitness = if let Some(bar) = ruin_bar {
        -1.0 + bar as f64 / n as f64
    } else if let Some(t) = ttt_bars {
        2.0 + (n - t) as f64 / n as f64
    } else {
        max_equity / target
    };
    let ttt_seconds =
        ttt_bars.map_or(f64::NAN, |t| (bars.ts[start + t - 1] - bars.ts[start]) as f64 / 1e9 + bar_seconds);
    NaiveResult {
        final_equity: *equity.last().unwrap(),
        equity,
        trade_returns,
        fees,
        ruin_bar,
        ttt_bars,
        ttt_seconds,
        fitness,
        max_equity,
        sharpe,
        max_drawdown,
    }
}
