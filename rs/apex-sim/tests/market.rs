//! The simulated market with the default DSG: stylized facts of real crypto markets, prices that follow value within
//! seconds (no predictable returns), no book collapse, determinism, strategy accounting.

use std::sync::OnceLock;

use apex_book::{L2Book, Level, UpdateKind};
use apex_core::Scale;
use apex_sim::market::{SimOutput, run, run_us};
use apex_sim::strategy::{AlwaysFlat, BuyAndHold, MovingAverageCrossover};
use apex_sim::{Dsg, InstrumentSpec, SimConfig};

const HOURS: f64 = 6.0;
/// Seeds of the shared long runs: enough 6-hour markets that a mean lag-1 ACF of 1-minute returns has a standard
/// error near 0.025 (the market before makers priced off value showed 0.27).
const SEEDS: [u64; 4] = [11, 12, 13, 14];

fn config(seed: u64, hours: f64) -> SimConfig {
    let spec = InstrumentSpec::bybit_linear("BTCUSDT", "0.10", "0.001", "0.001").unwrap();
    let mut config = SimConfig::new(spec, 108_000.0, seed);
    config.horizon_s = hours * 3600.0;
    config
}

/// A run and its mid after each published book message: (ts_us, mid).
type Run = (SimOutput, Vec<(i64, f64)>);

/// The long seeded runs shared by the stylized-fact tests (simulated in parallel), each with its published mids.
fn runs() -> &'static [Run] {
    static RUNS: OnceLock<Vec<Run>> = OnceLock::new();
    RUNS.get_or_init(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = SEEDS
                .iter()
                .map(|&seed| {
                    scope.spawn(move || {
                        let out = run(&Dsg::default(), &config(seed, HOURS), None).unwrap();
                        let mids = published_mids(&out);
                        (out, mids)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    })
}

fn long_run() -> &'static SimOutput {
    &runs()[0].0
}

fn acf(x: &[f64], lag: usize) -> f64 {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let var: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
    let cov: f64 = (lag..n).map(|i| (x[i] - mean) * (x[i - lag] - mean)).sum();
    cov / var
}

fn one_minute_returns(out: &SimOutput) -> Vec<f64> {
    out.bars.windows(2).map(|w| (w[1].close / w[0].close).ln()).collect()
}

/// Mid after each published book message, replayed through the real L2 book: (ts_us, mid), checking integrity.
fn published_mids(out: &SimOutput) -> Vec<(i64, f64)> {
    let (price_scale, qty_scale) = (Scale::new(1).unwrap(), Scale::new(3).unwrap());
    let mut book = L2Book::new(price_scale, qty_scale);
    let mut mids = Vec::new();
    let b = &out.book;
    let mut start = 0;
    while start < b.len() {
        let mut end = start;
        while end < b.len() && b.update_id[end] == b.update_id[start] {
            end += 1;
        }
        let level =
            |i: usize| Level::new(price_scale.from_f64(b.price[i]).unwrap(), qty_scale.from_f64(b.size[i]).unwrap());
        let bids: Vec<Level> = (start..end).filter(|&i| b.side[i] > 0).map(level).collect();
        let asks: Vec<Level> = (start..end).filter(|&i| b.side[i] < 0).map(level).collect();
        let kind = if b.kind[start] == 0 { UpdateKind::Snapshot } else { UpdateKind::Delta };
        book.apply(kind, b.update_id[start] as u64, b.seq[start], b.ts[start], &bids, &asks)
            .unwrap_or_else(|e| panic!("published book message {} rejected: {e:?}", b.update_id[start]));
        if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
            assert!(ask.price > bid.price, "crossed or locked published book at update {}", b.update_id[start]);
            mids.push((run_us(out.epoch_ns, b.ts[start]), (bid.price + ask.price) as f64 / 20.0));
        }
        start = end;
    }
    mids
}

#[test]
fn spread_is_positive_and_the_published_book_is_consistent() {
    // `published_mids` replays every run's stream through the L2 book and asserts it is never crossed or locked.
    for (out, mids) in runs() {
        assert!(mids.len() > 100_000, "expected a dense L2 stream, got {} messages", mids.len());
        assert!(!out.truncated);
    }
}

#[test]
fn one_minute_returns_are_fat_tailed() {
    let r = one_minute_returns(long_run());
    let n = r.len() as f64;
    let mean = r.iter().sum::<f64>() / n;
    let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let kurtosis = r.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n / (var * var) - 3.0;
    assert!(kurtosis > 1.0, "excess kurtosis of 1-minute returns {kurtosis:.2}");
}

#[test]
fn volatility_clusters_and_returns_are_not_predictable() {
    let r = one_minute_returns(long_run());
    let abs: Vec<f64> = r.iter().map(|v| v.abs()).collect();
    for lag in 1..=10 {
        assert!(acf(&abs, lag) > 0.0, "ACF of |r| at lag {lag} = {:.3}", acf(&abs, lag));
    }
    let bound = 3.0 / (r.len() as f64).sqrt();
    for lag in 1..=10 {
        assert!(acf(&r, lag).abs() < bound, "return ACF at lag {lag} = {:.3} (bound {bound:.3})", acf(&r, lag));
    }
}

#[test]
fn trade_signs_have_long_memory() {
    let signs: Vec<f64> = long_run().trades.side.iter().map(|&s| f64::from(s)).collect();
    for lag in [1, 5, 10, 50, 100] {
        assert!(acf(&signs, lag) > 0.0, "trade-sign ACF at lag {lag} = {:.4}", acf(&signs, lag));
    }
    // Metaorder splitting keeps the memory a thousand trades on, in every run.
    for (out, _) in runs() {
        let signs: Vec<f64> = out.trades.side.iter().map(|&s| f64::from(s)).collect();
        assert!(acf(&signs, 1000) > 0.0, "trade-sign ACF at lag 1000 = {:.4}", acf(&signs, 1000));
    }
    // Slower than exponential decay: an AR(1) with the lag-1 value would be ~0 by lag 50.
    let (a1, a50) = (acf(&signs, 1), acf(&signs, 50));
    assert!(a50 > a1.powi(50) * 10.0 && a50 > 0.01, "sign ACF decays too fast: lag1 {a1:.3}, lag50 {a50:.4}");
}

/// The value of the last sample at or before `ts` (None before the first).
fn at(series: &[(i64, f64)], ts: i64) -> Option<f64> {
    let i = series.partition_point(|m| m.0 <= ts);
    (i > 0).then(|| series[i - 1].1)
}

/// Log mid and log fair value on a 1-second grid over the whole run.
fn per_second(out: &SimOutput, mids: &[(i64, f64)]) -> (Vec<f64>, Vec<f64>) {
    let fv = &out.fair_value;
    let fair: Vec<(i64, f64)> = fv.ts_us.iter().copied().zip(fv.value.iter().copied()).collect();
    let seconds = (HOURS * 3600.0) as i64;
    (0..=seconds)
        .map(|s| {
            let ts = s * 1_000_000;
            (at(mids, ts).map_or(f64::NAN, f64::ln), at(&fair, ts).map_or(f64::NAN, f64::ln))
        })
        .unzip()
}

fn returns(log_prices: &[f64], step: usize) -> Vec<f64> {
    log_prices.iter().step_by(step).collect::<Vec<_>>().windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn returns_are_unpredictable_because_value_reaches_the_price_within_seconds() {
    let (mut close_1m, mut mid_1m, mut mid_10s, mut shock) = (0.0, 0.0, 0.0, 0.0);
    for (out, mids) in runs() {
        let (log_mid, log_fv) = per_second(out, mids);
        close_1m += acf(&one_minute_returns(out), 1);
        mid_1m += acf(&returns(&log_mid, 60), 1);
        mid_10s += acf(&returns(&log_mid, 10), 1);
        // Share of a fair-value shock in the mid 5 s later, counted from a minute before it (informed traders move
        // the price ahead of value): the pooled slope of the mid's move on the shock (value increments are
        // independent, so the other shocks only add noise).
        let (lead, after) = (60, 5);
        let (mut num, mut den) = (0.0, 0.0);
        for t in lead + 1..log_fv.len() - after {
            let jolt = log_fv[t] - log_fv[t - 1];
            let moved = log_mid[t + after] - log_mid[t - 1 - lead];
            if jolt.is_finite() && moved.is_finite() {
                num += jolt * moved;
                den += jolt * jolt;
            }
        }
        shock += num / den;
    }
    let n = runs().len() as f64;
    let (close_1m, mid_1m, mid_10s, shock) = (close_1m / n, mid_1m / n, mid_10s / n, shock / n);
    assert!(
        close_1m.abs() < 0.1 && mid_1m.abs() < 0.1,
        "lag-1 ACF of 1-min returns: closes {close_1m:.3}, mids {mid_1m:.3}"
    );
    assert!(mid_10s.abs() < 0.1, "lag-1 ACF of 10-s mid returns {mid_10s:.3}");
    assert!(shock >= 0.8, "only {:.0}% of a fair-value shock reaches the mid within 5 s", shock * 100.0);
}

#[test]
fn the_book_never_collapses_away_from_fair_value_jumps() {
    for (out, mids) in runs() {
        let (log_mid, _) = per_second(out, mids);
        let fv = &out.fair_value;
        let jump_minutes: Vec<i64> =
            fv.ts_us.iter().zip(&fv.jump).filter(|(_, j)| **j).map(|(ts, _)| ts / 60_000_000).collect();
        for (minute, r) in returns(&log_mid, 60).iter().enumerate() {
            let near_jump = jump_minutes.iter().any(|m| (m - minute as i64).abs() <= 1);
            assert!(
                near_jump || r.abs() * 1e4 <= 200.0,
                "1-minute move of {:.0} bps at minute {minute} with no fair-value jump near",
                r * 1e4
            );
        }
    }
}

#[test]
fn price_impact_is_concave_in_trade_size() {
    let out = long_run();
    let mids = &runs()[0].1;
    let mid_at = |ts: i64| at(mids, ts);
    // Trades of one market order share a timestamp and side: aggregate them into one order.
    let t = &out.trades;
    let mut orders: Vec<(i64, f64, f64)> = Vec::new();
    for i in 0..t.len() {
        let ts_us = run_us(out.epoch_ns, t.ts[i]);
        match orders.last_mut() {
            Some(last) if last.0 == ts_us && last.1 == f64::from(t.side[i]) => last.2 += t.size[i],
            _ => orders.push((ts_us, f64::from(t.side[i]), t.size[i])),
        }
    }
    let mut impacts: Vec<(f64, f64)> = orders
        .iter()
        .filter_map(|&(ts, side, size)| {
            let before = mid_at(ts - 1)?;
            let after = mid_at(ts + 1_000_000)?;
            Some((size, side * (after - before) / before * 1e4))
        })
        .collect();
    impacts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let buckets = 5;
    let per = impacts.len() / buckets;
    let means: Vec<(f64, f64)> = (0..buckets)
        .map(|k| {
            let slice = &impacts[k * per..(k + 1) * per];
            let n = slice.len() as f64;
            (slice.iter().map(|x| x.0).sum::<f64>() / n, slice.iter().map(|x| x.1).sum::<f64>() / n)
        })
        .collect();
    let (small, large) = (means[0], means[buckets - 1]);
    assert!(large.1 > small.1 && small.1 > 0.0, "impact should grow with size: {means:?}");
    // Concave: impact grows less than proportionally with size.
    assert!(large.1 / small.1 < large.0 / small.0, "impact not concave: {means:?}");
}

#[test]
fn same_seed_same_dsg_is_bit_identical_and_seeds_differ() {
    let mut a_strategy = MovingAverageCrossover::default();
    let mut b_strategy = MovingAverageCrossover::default();
    let a = run(&Dsg::default(), &config(3, 0.25), Some(&mut a_strategy)).unwrap();
    let b = run(&Dsg::default(), &config(3, 0.25), Some(&mut b_strategy)).unwrap();
    assert_eq!(a, b);
    let c = run(&Dsg::default(), &config(4, 0.25), None).unwrap();
    assert_ne!(a.trades, c.trades);
}

#[test]
fn always_flat_never_trades_and_buy_and_hold_tracks_the_market() {
    let flat = run(&Dsg::default(), &config(5, 0.5), Some(&mut AlwaysFlat)).unwrap();
    let report = flat.strategy.unwrap();
    assert_eq!((report.pnl, report.fees, report.n_fills), (0.0, 0.0, 0));
    let hold = run(&Dsg::default(), &config(5, 0.5), Some(&mut BuyAndHold)).unwrap();
    let report = hold.strategy.unwrap();
    assert!(report.n_fills >= 1 && report.fees > 0.0);
    assert!(!report.ruined);
    assert_eq!(report.equity.len(), 30, "one equity point per 1-minute decision");
}

#[test]
fn any_dsg_within_bounds_runs_without_panic_or_nan() {
    let (lo, hi) = Dsg::bounds();
    for corner in 0..4u64 {
        let values: Vec<f64> = lo
            .iter()
            .zip(&hi)
            .enumerate()
            .map(|(i, (l, h))| match (corner + i as u64) % 4 {
                0 => *l,
                1 => *h,
                2 => (l + h) / 2.0,
                _ => l + (h - l) * 0.1,
            })
            .collect();
        let dsg = Dsg::from_vector(&values).unwrap();
        let mut cfg = config(corner, 0.02);
        cfg.max_events = 2_000_000;
        let out = run(&dsg, &cfg, Some(&mut BuyAndHold)).unwrap();
        assert!(out.trades.price.iter().all(|p| p.is_finite() && *p > 0.0));
        assert!(out.strategy.unwrap().pnl.is_finite());
    }
}
