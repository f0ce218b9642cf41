//! Hand-built scenarios with known answers: stop before target, fees, liquidation, no lookahead, fitness order.

mod naive;

use apex_backtest::{BacktestParams, Decision, Metrics, RuleParams, decisions, equity_curve, run};
use naive::OwnedBars;

/// Costless slippage, a fixed 1% stop and a fixed 2% risk, so a trade's numbers can be computed by hand.
fn plain_params() -> BacktestParams {
    BacktestParams { spread_bps: 0.0, impact: 0.0, rule: plain_rule(0.02), ..BacktestParams::default() }
}

fn plain_rule(fraction: f64) -> RuleParams {
    RuleParams {
        stop_atr_mult: 0.0,
        stop_min_bps: 100.0,
        min_fraction: fraction,
        max_fraction: fraction,
        ..RuleParams::default()
    }
}

fn one(bars: &OwnedBars, signal: &[f64], params: &BacktestParams) -> Metrics {
    run(&bars.view(), signal, params, 0..bars.open.len()).unwrap().remove(0)
}

#[test]
fn stop_is_taken_before_target_when_a_bar_touches_both() {
    // Long at bar 1's open 100 with risk 2% of $200: notional 400, qty 4, stop 99, target 103.
    let bars = naive::bars_from_ohlc(&[(100.0, 100.0, 100.0, 100.0), (100.0, 105.0, 95.0, 100.0)]);
    let params = plain_params();
    let metrics = one(&bars, &[1.0, 0.0], &params);
    assert_eq!((metrics.trades, metrics.wins), (1, 0));
    let fees = params.fee * (400.0 + 4.0 * 99.0);
    assert!((metrics.final_equity - (200.0 - 4.0 - fees)).abs() < 1e-9, "{metrics:?}");
    assert!((metrics.fees - fees).abs() < 1e-12);

    // Only the high reaches the target: the trade wins 3 x the risk.
    let bars = naive::bars_from_ohlc(&[(100.0, 100.0, 100.0, 100.0), (100.0, 105.0, 99.5, 100.0)]);
    let metrics = one(&bars, &[1.0, 0.0], &params);
    assert_eq!((metrics.trades, metrics.wins), (1, 1));
    let fees = params.fee * (400.0 + 4.0 * 103.0);
    assert!((metrics.final_equity - (200.0 + 12.0 - fees)).abs() < 1e-9, "{metrics:?}");
}

#[test]
fn a_round_trip_at_a_flat_price_costs_exactly_the_two_taker_fees() {
    let bars = naive::bars_from_ohlc(&[(100.0, 100.5, 99.5, 100.0); 4]);
    let params = plain_params();
    let metrics = one(&bars, &[1.0, 0.0, 0.0, 0.0], &params);
    assert_eq!(metrics.trades, 1);
    let fees = 2.0 * 0.00055 * 400.0;
    assert!((metrics.fees - fees).abs() < 1e-12 && (metrics.pnl + fees).abs() < 1e-9, "{metrics:?}");

    // Slippage: half of a 10 bps spread plus impact qty * price / depth, against the trader on both fills.
    // A 3% stop keeps the stop outside the slipped entry; notional = 0.02 * 200 / 0.03.
    let params = BacktestParams {
        spread_bps: 10.0,
        impact: 1.0,
        depth: 40_000.0,
        fee: 0.0,
        rule: RuleParams { stop_min_bps: 300.0, ..plain_rule(0.02) },
        ..plain_params()
    };
    let metrics = one(&bars, &[1.0, 0.0, 0.0, 0.0], &params);
    let notional = 0.02 * 200.0 / 0.03;
    let slip = 5.0 / 1e4 + notional / 40_000.0;
    let (buy, sell) = (100.0 * (1.0 + slip), 100.0 * (1.0 - slip));
    assert_eq!(metrics.trades, 1);
    assert!((metrics.pnl - notional / 100.0 * (sell - buy)).abs() < 1e-9, "{metrics:?}");
}

#[test]
fn a_gap_through_the_stop_liquidates_and_the_strategy_stops() {
    // Full risk at 10x leverage: notional $2000; the next bar opens 20% lower, a $400 loss on $200.
    let mut rows = vec![(100.0, 100.0, 100.0, 100.0), (100.0, 100.2, 99.8, 100.0), (80.0, 81.0, 79.0, 80.0)];
    rows.extend([(80.0, 90.0, 70.0, 85.0); 5]);
    let bars = naive::bars_from_ohlc(&rows);
    let params = BacktestParams { rule: plain_rule(1.0), ..plain_params() };
    let metrics = one(&bars, &[1.0; 8], &params);
    assert!(metrics.ruined && metrics.ruin_bar == Some(2), "{metrics:?}");
    assert_eq!((metrics.final_equity, metrics.trades), (0.0, 1));
    assert!((-1.0..0.0).contains(&metrics.fitness));
    let curve = equity_curve(&bars.view(), &[1.0; 8], &params, 0..8).unwrap();
    assert!(curve[2..].iter().all(|e| *e == 0.0) && curve[1] > 0.0, "{curve:?}");
}

#[test]
fn a_signal_changes_nothing_before_the_next_bar() {
    let mut rows = Vec::new();
    let mut price = 100.0_f64;
    for i in 0..120 {
        let next = price * (1.0 + 0.01 * ((i * 37 % 11) as f64 - 5.0) / 5.0);
        rows.push((price, price.max(next) * 1.003, price.min(next) * 0.997, next));
        price = next;
    }
    let bars = naive::bars_from_ohlc(&rows);
    let signal: Vec<f64> = (0..120).map(|i| ((i as f64) * 0.61).sin()).collect();
    let params = BacktestParams::default();
    let base = equity_curve(&bars.view(), &signal, &params, 0..120).unwrap();
    for changed in [0, 30, 77, 118, 119] {
        let mut other = signal.clone();
        other[changed] = -other[changed].signum();
        let curve = equity_curve(&bars.view(), &other, &params, 0..120).unwrap();
        assert_eq!(base[..=changed], curve[..=changed], "bar {changed}");
        if changed < 119 {
            assert_ne!(base[changed + 1..], curve[changed + 1..], "changing bar {changed}'s signal must matter later");
        }
    }
    let last = run(&bars.view(), &[signal.clone(), signal.clone()].concat(), &params, 0..120).unwrap();
    let mut changed = signal.clone();
    changed[119] = 1.0 - changed[119];
    let after = run(&bars.view(), &changed, &params, 0..120).unwrap();
    assert_eq!(format!("{:?}", last[0]), format!("{:?}", after[0]));
}

#[test]
fn kelly_sizing_follows_the_trade_record() {
    // Every trade hits its 3% target. Before the first, p is the prior 0.3 (weight 10 trades); after k wins it is
    // (k + 3) / (k + 10), and the risk is half-Kelly with b = 3: f = 0.5 (4p - 1) / 3. Each trade multiplies equity
    // by 1 + 3 f (leverage cap lifted so it does not bind).
    let mut rows = vec![(100.0, 100.0, 100.0, 100.0)];
    for _ in 0..6 {
        rows.push((100.0, 103.5, 99.5, 100.0));
    }
    let bars = naive::bars_from_ohlc(&rows);
    let rule = RuleParams { min_fraction: 0.0, max_fraction: 1.0, max_leverage: 50.0, ..plain_rule(0.0) };
    let params = BacktestParams { fee: 0.0, rule, ..plain_params() };
    let curve = equity_curve(&bars.view(), &[1.0; 7], &params, 0..7).unwrap();
    let mut equity = 200.0;
    for (bar, observed) in curve.iter().enumerate().skip(1) {
        let wins = (bar - 1) as f64;
        let p = (wins + 3.0) / (wins + 10.0);
        equity += 3.0 * 0.5 * (4.0 * p - 1.0) / 3.0 * equity;
        assert!((observed - equity).abs() < 1e-9, "bar {bar}: {observed} vs {equity}");
    }
    let rule = decisions(&bars.view(), &[1.0; 7], &params, 0..7).unwrap();
    assert!(rule.iter().all(|d| matches!(d, Decision::Enter(_))), "flat after every take-profit: {rule:?}");
}

#[test]
fn fitness_orders_fast_slow_close_far_ruined() {
    // A market rising 0.5% a bar: longs hit their 3% target about every sixth bar.
    let mut rows = Vec::new();
    let mut price = 100.0_f64;
    for _ in 0..200 {
        let next = price * 1.005;
        rows.push((price, next * 1.001, price * 0.999, next));
        price = next;
    }
    let bars = naive::bars_from_ohlc(&rows);
    let params = BacktestParams { rule: plain_rule(0.25), ..plain_params() };
    let always = vec![1.0; 200];
    let late: Vec<f64> = (0..200).map(|i| if i < 100 { 0.0 } else { 1.0 }).collect();
    let close: Vec<f64> = (0..200).map(|i| if i < 192 { 0.0 } else { 1.0 }).collect();
    let flat = vec![0.0; 200];
    let signals = [always, late, close, flat].concat();
    let metrics = run(&bars.view(), &signals, &params, 0..200).unwrap();
    assert!(metrics[0].reached && metrics[1].reached, "{metrics:?}");
    assert!(metrics[0].ttt_bars < metrics[1].ttt_bars);
    // One-minute bars: the target bar ends ttt_bars minutes after the span opens.
    assert!((metrics[0].ttt_seconds - 60.0 * metrics[0].ttt_bars.unwrap() as f64).abs() < 1e-9);
    assert!(!metrics[2].reached && metrics[2].max_equity > 250.0, "{:?}", metrics[2]);
    assert!(!metrics[3].reached && metrics[3].fitness == 0.5);

    let gap =
        naive::bars_from_ohlc(&[(100.0, 100.0, 100.0, 100.0), (100.0, 100.2, 99.8, 100.0), (80.0, 80.0, 80.0, 80.0)]);
    let ruin_params = BacktestParams { rule: plain_rule(1.0), ..plain_params() };
    let ruined = one(&gap, &[1.0; 3], &ruin_params);
    assert!(ruined.ruined);

    let fitness: Vec<f64> = metrics.iter().map(|m| m.fitness).chain([ruined.fitness]).collect();
    assert!(fitness.windows(2).all(|pair| pair[0] > pair[1]), "{fitness:?}");
}

#[test]
fn bad_inputs_are_rejected_with_the_column_named() {
    let mut bars = naive::bars_from_ohlc(&[(100.0, 101.0, 99.0, 100.0); 5]);
    let params = BacktestParams::default();
    bars.close.to_mut()[3] = f64::NAN;
    let error = run(&bars.view(), &[0.0; 5], &params, 0..5).unwrap_err().to_string();
    assert!(error.contains("`close` row 3"), "{error}");
    // Rows outside the span are not read.
    assert!(run(&bars.view(), &[0.0; 5], &params, 0..3).is_ok());
    bars.close.to_mut()[3] = 100.0;
    assert!(run(&bars.view(), &[0.0; 7], &params, 0..5).unwrap_err().to_string().contains("multiple"));
    assert!(run(&bars.view(), &[0.0; 5], &params, 2..2).is_err());
    bars.volume.to_mut().pop();
    assert!(run(&bars.view(), &[0.0; 5], &params, 0..5).unwrap_err().to_string().contains("`volume`"));
    let bad = BacktestParams { target_multiple: 1.0, ..params };
    let bars = naive::bars_from_ohlc(&[(100.0, 101.0, 99.0, 100.0); 5]);
    assert!(run(&bars.view(), &[0.0; 5], &bad, 0..5).unwrap_err().to_string().contains("target_multiple"));
}
