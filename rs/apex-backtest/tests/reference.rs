//! The fast backtester equals the naive reference loop on random bars, signals, spans and parameters.

mod naive;

use apex_backtest::{BacktestParams, Metrics, RuleParams, run};
use naive::{NaiveResult, OwnedBars, naive_backtest};
use proptest::prelude::*;

/// Random-walk bars from per-bar (gap, return, upper wick, lower wick), with optional spread/depth columns.
fn bars_strategy() -> impl Strategy<Value = OwnedBars> {
    (
        prop::collection::vec((-0.03f64..0.03, -0.03f64..0.03, 0.0f64..0.02, 0.0f64..0.02, 0.0f64..5.0), 2..120),
        any::<bool>(),
    )
        .prop_map(|(moves, per_bar_costs)| {
            let mut close = 100.0;
            let mut rows = Vec::new();
            for &(gap, ret, up, down, _) in &moves {
                let open: f64 = close * (1.0 + gap);
                close = open * (1.0 + ret);
                rows.push((open, open.max(close) * (1.0 + up), open.min(close) * (1.0 - down), close));
            }
            let mut bars = naive::bars_from_ohlc(&rows);
            if per_bar_costs {
                bars.spread_bps = Some(moves.iter().map(|m| m.4).collect());
                bars.depth = Some(moves.iter().map(|m| 1_000.0 + 1e4 * m.4).collect());
            }
            bars
        })
}

fn params_strategy() -> impl Strategy<Value = BacktestParams> {
    (
        0.0f64..0.002,
        0.0f64..3.0,
        0.0f64..0.5,
        0.0f64..3.0,
        1usize..20,
        5.0f64..300.0,
        (0.0f64..1.0, 0.5f64..20.0),
        0.0f64..0.2,
        1.0f64..60.0,
    )
        .prop_map(|(fee, impact, threshold, atr_mult, atr_window, min_bps, prior, min_fraction, leverage)| {
            BacktestParams {
                fee,
                impact,
                target_multiple: 1.3,
                rule: RuleParams {
                    entry_threshold: threshold,
                    stop_atr_mult: atr_mult,
                    atr_window,
                    stop_min_bps: min_bps,
                    kelly_window: 6,
                    prior_win_rate: prior.0,
                    prior_trades: prior.1,
                    min_fraction,
                    max_fraction: 0.5,
                    max_leverage: leverage,
                    ..RuleParams::default()
                },
                ..BacktestParams::default()
            }
        })
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_same(fast: &Metrics, slow: &NaiveResult, capital: f64) {
    let wins = slow.trade_returns.iter().filter(|r| **r > 0.0).count();
    assert_eq!(fast.trades, slow.trade_returns.len(), "trades");
    assert_eq!(fast.wins, wins, "wins");
    assert_eq!(fast.ruin_bar, slow.ruin_bar, "ruin bar");
    assert_eq!(fast.ttt_bars, slow.ttt_bars, "ttt bars");
    for (name, a, b) in [
        ("fitness", fast.fitness, slow.fitness),
        ("final_equity", fast.final_equity, slow.final_equity),
        ("pnl", fast.pnl, slow.final_equity - capital),
        ("max_equity", fast.max_equity, slow.max_equity),
        ("sharpe", fast.sharpe, slow.sharpe),
        ("max_drawdown", fast.max_drawdown, slow.max_drawdown),
        ("fees", fast.fees, slow.fees),
        ("ttt_seconds", fast.ttt_seconds, slow.ttt_seconds),
    ] {
        assert!(close(a, b), "{name}: fast {a} vs naive {b}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn fast_equals_naive(
        bars in bars_strategy(),
        params in params_strategy(),
        raw_signals in prop::collection::vec(prop_oneof![8 => -1.5f64..1.5, 1 => Just(f64::NAN), 1 => Just(0.0)], 360),
        strategies in 1usize..4,
        span_seed in (0.0f64..1.0, 0.0f64..1.0),
    ) {
        let rows = bars.open.len();
        let start = ((rows - 1) as f64 * span_seed.0) as usize;
        let end = start + 1 + (((rows - start - 1) as f64) * span_seed.1).round() as usize;
        let signals: Vec<f64> = (0..strategies * rows).map(|i| raw_signals[i % raw_signals.len()]).collect();
        let fast = run(&bars.view(), &signals, &params, start..end).unwrap();
        prop_assert_eq!(fast.len(), strategies);
        for (s, metrics) in fast.iter().enumerate() {
            let slow = naive_backtest(&bars, &signals[s * rows..(s + 1) * rows], &params, start, end);
            assert_same(metrics, &slow, params.capital);
            let curve = apex_backtest::equity_curve(&bars.view(), &signals[s * rows..(s + 1) * rows], &params, start..end).unwrap();
            prop_assert_eq!(curve.len(), slow.equity.len());
            for (a, b) in curve.iter().zip(&slow.equity) {
                prop_assert!(close(*a, *b), "equity {} vs {}", a, b);
            }
        }
    }
}

/// The same inputs give bit-identical results on one thread and on the default pool.
#[test]
fn deterministic_across_thread_counts() {
    let mut rows = Vec::new();
    let mut price = 100.0_f64;
    for i in 0..500 {
        let next = price * (1.0 + 0.004 * ((i * 7919 % 13) as f64 - 6.0) / 6.0);
        rows.push((price, price.max(next) * 1.002, price.min(next) * 0.998, next));
        price = next;
    }
    let bars = naive::bars_from_ohlc(&rows);
    let signals: Vec<f64> = (0..300 * 500).map(|i| ((i as f64) * 0.37).sin()).collect();
    let params = BacktestParams::default();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let single = pool.install(|| run(&bars.view(), &signals, &params, 0..500).unwrap());
    let default = run(&bars.view(), &signals, &params, 0..500).unwrap();
    assert_eq!(format!("{single:?}"), format!("{default:?}"));
    assert!(single.iter().any(|m| m.trades > 0), "the fixture must trade");
}
