//! The naive reference backtester: one strategy, one plain loop over the bars, the whole record kept, metrics after.
#![allow(dead_code, clippy::too_many_arguments, clippy::too_many_lines)]

use apex_backtest::{BacktestParams, BarColumns};

/// Bars as owned columns, the way a test builds them.
pub type OwnedBars = BarColumns<'static>;

/// Bars from (open, high, low, close) tuples, one minute apart, volume 1.
pub fn bars_from_ohlc(rows: &[(f64, f64, f64, f64)]) -> OwnedBars {
    BarColumns {
        ts: (0..rows.len() as i64).map(|i| i * 60_000_000_000).collect(),
        open: rows.iter().map(|r| r.0).collect(),
        high: rows.iter().map(|r| r.1).collect(),
        low: rows.iter().map(|r| r.2).collect(),
        close: rows.iter().map(|r| r.3).collect(),
        volume: vec![1.0; rows.len()].into(),
        spread_bps: None,
        depth: None,
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
    stop: f64,
    take: f64,
}

/// A decision made at a bar close: direction of the new position (0: none), its size and levels, and whether the
/// position is closed first.
#[derive(Clone, Copy)]
struct Pending {
    close_first: bool,
    dir: f64,
    qty: f64,
    stop: f64,
    take: f64,
}

const NONE: Pending = Pending { close_first: false, dir: 0.0, qty: 0.0, stop: 0.0, take: 0.0 };

pub fn naive_backtest(bars: &OwnedBars, signal: &[f64], p: &BacktestParams, start: usize, end: usize) -> NaiveResult {
    let r = &p.rule;
    let n = end - start;
    let mut cash = p.capital;
    let mut position: Option<Open> = None;
    // Every fill as (signed qty, price, fee): the trade record is rebuilt from all of them at every decision.
    let mut fills: Vec<(f64, f64, f64)> = Vec::new();
    let mut equity: Vec<f64> = Vec::new();
    let mut fees = 0.0;
    let mut ruin_bar = None;
    let mut pending = NONE;

    for i in start..end {
        if ruin_bar.is_some() {
            equity.push(0.0);
            continue;
        }
        let spread = bars.spread_bps.as_ref().map_or(p.spread_bps, |s| s[i]);
        let depth = bars.depth.as_ref().map_or(p.depth, |d| d[i]);
        let fill = |price: f64, side: f64, qty: f64| {
            let slip = (spread / 2.0 / 1e4 + p.impact * qty * price / depth).min(apex_backtest::MAX_SLIPPAGE);
            price * (1.0 + side * slip)
        };
        let exit = |pos: Open, price: f64, cash: &mut f64, fees: &mut f64, fills: &mut Vec<(f64, f64, f64)>| {
            let px = fill(price, -pos.dir, pos.qty);
            let fee = p.fee * pos.qty * px;
            *cash += pos.qty * (px - pos.entry) * pos.dir - fee;
            *fees += fee;
            fills.push((-pos.dir * pos.qty, px, fee));
        };
        let value = |pos: &Option<Open>, cash: f64, price: f64| match pos {
            Some(x) => cash + x.qty * (price - x.entry) * x.dir,
            None => cash,
        };
        let (o, h, l, c) = (bars.open[i], bars.high[i], bars.low[i], bars.close[i]);
        if pending.close_first
            && let Some(pos) = position.take()
        {
            exit(pos, o, &mut cash, &mut fees, &mut fills);
        }
        if pending.dir != 0.0 {
            let px = fill(o, pending.dir, pending.qty);
            let fee = p.fee * pending.qty * px;
            cash -= fee;
            fees += fee;
            fills.push((pending.dir * pending.qty, px, fee));
            position =
                Some(Open { dir: pending.dir, qty: pending.qty, entry: px, stop: pending.stop, take: pending.take });
        }
        if let Some(pos) = position.take() {
            let gapped = if pos.dir > 0.0 { o <= pos.stop || o >= pos.take } else { o >= pos.stop || o <= pos.take };
            if gapped {
                exit(pos, o, &mut cash, &mut fees, &mut fills);
            } else {
                position = Some(pos);
            }
        }
        let mut ruined = value(&position, cash, o) <= 0.0;
        if !ruined && let Some(pos) = position.take() {
            let long = pos.dir > 0.0;
            let adverse = if long { l } else { h };
            let price = if (long && l <= pos.stop) || (!long && h >= pos.stop) {
                Some(pos.stop)
            } else if (long && h >= pos.take) || (!long && l <= pos.take) {
                Some(pos.take)
            } else {
                None
            };
            match price {
                Some(price) => exit(pos, price, &mut cash, &mut fees, &mut fills),
                None => position = Some(pos),
            }
            ruined = value(&position, cash, adverse) <= 0.0;
        }
        let mut e = value(&position, cash, c);
        if ruined || e <= 0.0 {
            ruin_bar = Some(i - start);
            position = None;
            e = 0.0;
        }
        equity.push(e);
        pending = NONE;
        if ruin_bar.is_some() {
            continue;
        }

        // The decision at this close, from the whole history.
        let mut s = signal[i];
        if s.is_nan() {
            s = 0.0;
        }
        s = s.clamp(-1.0, 1.0);
        let want = if s != 0.0 && s.abs() >= r.entry_threshold { s.signum() } else { 0.0 };
        let held = position.as_ref().map_or(0.0, |x| x.dir);
        if want == held {
            continue;
        }
        pending.close_first = held != 0.0;
        if want == 0.0 {
            continue;
        }
        let first = if i + 1 - start > r.atr_window { i + 1 - r.atr_window } else { start };
        let mut sum = 0.0;
        for j in first..=i {
            let mut tr = bars.high[j] - bars.low[j];
            if j > start {
                let pc = bars.close[j - 1];
                tr = tr.max((bars.high[j] - pc).abs()).max((bars.low[j] - pc).abs());
            }
            sum += tr;
        }
        let atr = sum / (i + 1 - first) as f64;
        let stop = (r.stop_atr_mult * atr).max(r.stop_min_bps * c / 1e4);
        let returns = trade_returns(&fills);
        let recent = &returns[returns.len().saturating_sub(r.kelly_window)..];
        let wins = recent.iter().filter(|x| **x > 0.0).count() as f64;
        let win_p = (wins + r.prior_win_rate * r.prior_trades) / (recent.len() as f64 + r.prior_trades);
        let b = r.reward_risk;
        let f = (r.kelly_scale * (win_p * b - (1.0 - win_p)) / b).clamp(r.min_fraction, r.max_fraction);
        let qty = (s.abs() * f * e / stop).min(r.max_leverage * e / c);
        if qty > 0.0 && c - want * stop > 0.0 {
            pending = Pending {
                close_first: pending.close_first,
                dir: want,
                qty,
                stop: c - want * stop,
                take: c + want * b * stop,
            };
        }
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
        trade_returns: trade_returns(&fills),
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

/// Net return of every closed trade (entry to flat) over its entry notional, from the fills in order. Every fill of
/// this backtest opens or closes a whole position, so a closing fill ends the trade the previous fill opened.
fn trade_returns(fills: &[(f64, f64, f64)]) -> Vec<f64> {
    let mut returns = Vec::new();
    let mut open: Option<(f64, f64, f64)> = None;
    for &(qty, price, fee) in fills {
        match open.take() {
            None => open = Some((qty, price, fee)),
            Some((q, entry, entry_fee)) => {
                let gross = q.abs() * (price - entry) * q.signum();
                // As apex-rule books it: a trade whose entry value is not positive (a sale whose impact took the fill
                // price below zero) returns 0, it does not win.
                let basis = q.abs() * entry;
                returns.push(if basis > 0.0 { (gross - entry_fee - fee) / basis } else { 0.0 });
            }
        }
    }
    returns
}
