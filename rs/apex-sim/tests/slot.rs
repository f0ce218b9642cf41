//! The strategy slot trades the shared rule in the market: entries and signal exits right after bar closes, the
//! bracket as the position's take-profit and stop-loss triggered by trades in between, every fill read back.

use apex_book::{L2Book, UpdateKind};
use apex_core::{Scale, Side};
use apex_rule::{Decision, RuleParams};
use apex_sim::market::{SimOutput, run};
use apex_sim::strategy::{Context, Feed, MovingAverageCrossover, Strategy};
use apex_sim::{Dsg, InstrumentSpec, L2Update, SimConfig};

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

/// Keeps every L2 message the market hands it (through the default `on_engine_book`), and never trades.
#[derive(Default)]
struct MessageLog(Vec<L2Update>);

impl Strategy for MessageLog {
    fn name(&self) -> String {
        "message-log".into()
    }
    fn feed(&self) -> Feed {
        Feed::TradesAndBook
    }
    fn on_book(&mut self, update: &L2Update) {
        self.0.push(update.clone());
    }
    fn target(&mut self, _ctx: &Context<'_>) -> f64 {
        0.0
    }
}

#[test]
fn a_message_reader_gets_the_recorded_messages_whether_or_not_the_market_records() {
    let mut recorded_config = config(9, 3.0);
    recorded_config.record_market = true;
    let mut unrecorded_config = recorded_config.clone();
    unrecorded_config.record_market = false;
    let (mut recorded, mut unrecorded) = (MessageLog::default(), MessageLog::default());
    let out = run(&Dsg::default(), &recorded_config, Some(&mut recorded)).unwrap();
    run(&Dsg::default(), &unrecorded_config, Some(&mut unrecorded)).unwrap();
    assert!(recorded.0.len() > 100, "only {} messages", recorded.0.len());
    assert_eq!(recorded.0, unrecorded.0, "made only for the reader, the messages are the recorded ones");
    // A book rebuilt from the messages takes every one of them and is never crossed.
    let mut mirror = L2Book::new(Scale::new(1).unwrap(), Scale::new(3).unwrap());
    for u in &recorded.0 {
        if let Err(refused) = mirror.apply(u.kind, u.update_id, u.seq as i64, u.ts_us, &u.bids, &u.asks) {
            panic!("message {} refused: {refused}", u.update_id);
        }
    }
    assert_eq!(recorded.0[0].kind, UpdateKind::Snapshot);
    // The book table holds the same messages, one row per level (one empty row for an empty message).
    let rows: Vec<(i64, i8)> = recorded
        .0
        .iter()
        .flat_map(|u| {
            let id = u.update_id as i64;
            let sides = u.bids.iter().map(|_| 1).chain(u.asks.iter().map(|_| -1));
            let sides: Vec<i8> = if u.bids.is_empty() && u.asks.is_empty() { vec![0] } else { sides.collect() };
            sides.into_iter().map(move |side| (id, side))
        })
        .collect();
    let table: Vec<(i64, i8)> = out.book.update_id.iter().copied().zip(out.book.side.iter().copied()).collect();
    assert_eq!(table, rows);
}
