//! The strategy slot trades the shared rule in the market: entries and signal exits right after bar closes, the
//! bracket as the position's take-profit and stop-loss triggered by trades in between, every fill read back.

use apex_core::Side;
use apex_rule::{Decision, RuleParams};
use apex_sim::market::{SimOutput, run};
use apex_sim::strategy::{Context, MovingAverageCrossover, Strategy};
use apex_sim::{Dsg, InstrumentSpec, SimConfig};

fn config(seed: u64, minutes: f64) -> SimConfig {
    let spec = InstrumentSpec::bybit_linear("BTCUSDT", "0.10", "0.001", "0.001").unwrap();
    let mut config = SimConfig::new(spec, 108_000.0, seed);
    config.horizon_s = minutes * 60.0;
    config.record_all_fills = false;
    config
}

/// Long for two bars, short for two (a reverse every other bar).
struct Alternating;

impl Strategy for Alternating {
    fn name(&self) -> String {
        "alternating".into()
    }
    fn target(&mut self, ctx: &Context<'_>) -> f64 {
        if ctx.bars.len() % 4 < 2 { 1.0 } else { -1.0 }
    }
}

fn slot_fills(out: &SimOutput) -> Vec<(i64, i8, f64)> {
    let f = &out.fills;
    (0..f.ts_us.len()).map(|i| (f.ts_us[i], f.side[i], f.size[i])).collect()
}

#[test]
fn decisions_are_traded_after_the_latency_and_brackets_trigger_in_between() {
    let mut config = config(21, 90.0);
    config.rule = RuleParams { stop_atr_mult: 0.5, stop_min_bps: 5.0, ..RuleParams::default() };
    let out = run(&Dsg::default(), &config, Some(&mut MovingAverageCrossover { fast: 3, slow: 8 })).unwrap();
    let report = out.strategy.as_ref().unwrap();
    let fills = slot_fills(&out);
    assert!(report.decisions.iter().filter(|(_, d)| d.entry().is_some()).count() >= 3, "{:?}", report.decisions);
    assert_eq!(report.n_fills, fills.len());
    // Orders of decisions arrive two latencies (20 ms each) after the bar close; stop orders whenever a trade
    // crosses a level.
    let (bar_us, sent_us) = (60_000_000, 40_000);
    let at_decision = fills.iter().filter(|f| f.0 % bar_us == sent_us).count();
    let bracket = fills.len() - at_decision;
    assert!(at_decision > 0 && bracket > 0, "decision fills {at_decision}, bracket fills {bracket}");
    // Every decision fill belongs to a decision of the bar that just closed.
    for fill in fills.iter().filter(|f| f.0 % bar_us == sent_us) {
        assert!(report.decisions.iter().any(|(ts, _)| *ts == fill.0 - sent_us), "fill {fill:?} has no decision");
    }
}

#[test]
fn the_slot_position_follows_the_decisions() {
    let out = run(&Dsg::default(), &config(5, 30.0), Some(&mut Alternating)).unwrap();
    let report = out.strategy.as_ref().unwrap();
    let fills = slot_fills(&out);
    // A reverse is a close and an entry the other way, both sent after the same close: right after they fill, the
    // position is the entry's.
    let mut reverses = 0;
    for (ts, decision) in &report.decisions {
        // The last close's orders would arrive after the horizon.
        let Decision::Reverse(entry) = decision else { continue };
        if ts + 40_000 > 30 * 60_000_000 {
            continue;
        }
        reverses += 1;
        let position: f64 = fills.iter().take_while(|f| f.0 <= ts + 40_000).map(|f| f64::from(f.1) * f.2).sum();
        let expected = if entry.side == Side::Buy { entry.qty } else { -entry.qty };
        assert!((position - expected).abs() < 1e-9, "after the reverse at {ts}: {position} vs {expected}");
    }
    assert!(reverses >= 5, "{:?}", report.decisions);
}

#[test]
fn a_flat_signal_sends_nothing() {
    let out = run(&Dsg::default(), &config(8, 20.0), Some(&mut apex_sim::strategy::AlwaysFlat)).unwrap();
    let report = out.strategy.unwrap();
    assert!(report.decisions.is_empty() && report.n_fills == 0 && report.pnl == 0.0);
}
