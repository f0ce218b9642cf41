//! Criterion benchmark: what one challenger on the Pit Crew's bench costs the engine's loop per closed bar (its models
//! and rule decide on the bar's row, its legs are paper-filled at the touch, a minute of prints checks its resting
//! orders and bracket) next to the champion's own decision on the same bar (models and rule), the work the engine
//! already does for every slot. Prints the ratio.

use std::hint::black_box;
use std::time::Instant;

use apex_features::bars::{BarParams, column_names};
use apex_infer::{MANIFEST, Manifest};
use apex_nexus::models::{EngineBars, SlotModels};
use apex_nexus::pitcrew::{Challenger, Execution, Fees, Touch};
use apex_nexus::slot::SlotCore;
use apex_rule::{Bar, Instrument, RuleParams};
use criterion::{Criterion, criterion_group, criterion_main};

/// A mid-size tree over base-bar and book columns.
const TREE: &str = r#"{"schema":"apex.gp_tree","version":1,"features":["clv","ret","rv","ofi_l1_sum","n_trades"],
    "root":{"op":"if_then_else","args":[{"op":"gt","args":[{"op":"ts_zscore","args":[{"feature":"ofi_l1_sum"},
    {"window":20}]},{"op":"ema","args":[{"feature":"clv"},{"window":10}]}]},{"op":"tanh","args":[{"op":"div","args":
    [{"feature":"clv"},{"feature":"rv"}]}]},{"op":"neg","args":[{"op":"ts_mean","args":[{"op":"mul","args":
    [{"feature":"ret"},{"feature":"n_trades"}]},{"window":30}]}]}]}}"#;
const FEATURES: [&str; 5] = ["clv", "ret", "rv", "ofi_l1_sum", "n_trades"];
const LOTS: Instrument = Instrument { tick: 0.1, qty_step: 0.001, min_qty: 0.001, max_qty: 100.0, min_notional: 0.0 };
/// Prints per bar checked against the bench's resting orders and brackets.
const PRINTS: usize = 30;

/// The bench's bundle in a folder removed when the returned guard drops.
fn bundle() -> tempfile::TempDir {
    let temp = tempfile::Builder::new().prefix("apex-nexus-bench-pitcrew-").tempdir().unwrap();
    let dir = temp.path();
    std::fs::write(dir.join("signal.gp.json"), TREE).unwrap();
    let features: Vec<String> = FEATURES.iter().map(|s| (*s).to_owned()).collect();
    let manifest = Manifest::single_gp("BTCUSDT", "a", "bench", features, TREE);
    std::fs::write(dir.join(MANIFEST), manifest.to_json()).unwrap();
    temp
}

/// Bars of a random walk with their feature rows (the engine's column order).
fn bars(names: &[String], count: usize) -> Vec<(Bar, Vec<f64>)> {
    let mut rng = apex_core::XorShift64::new(0x9E37_79B9_7F4A_7C15_u64);
    let mut next = move || rng.uniform();
    let mut close = 100_000.0;
    (0..count)
        .map(|_| {
            let open = close;
            close *= 1.0 + (next() - 0.5) * 0.004;
            let bar = Bar { open, high: open.max(close) + 20.0, low: open.min(close) - 20.0, close };
            let row = names.iter().map(|_| next() * 2.0 - 1.0).collect();
            (bar, row)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let temp = bundle();
    let dir = temp.path().to_path_buf();
    let names = column_names(&BarParams::new(60_000_000_000), true);
    let series = bars(&names, 512);
    let fees = Fees::default();
    let load = || SlotModels::load("btc-a", &dir, "BTCUSDT", &names, &EngineBars::default()).unwrap();
    let mut models = load();
    let mut core = SlotCore::new("btc-a", 1_000.0, RuleParams::default(), LOTS).unwrap();
    let mut champion_bar = |i: usize| {
        let (bar, row) = &series[i % series.len()];
        let (signal, p_up) = models.on_bar(row, bar.close).unwrap();
        black_box(core.on_bar(bar, signal, p_up));
    };
    let mut challenger = Challenger::new("btc-a", load(), dir.clone(), 1_000.0, RuleParams::default(), LOTS).unwrap();
    let mut challenger_bar = |i: usize| {
        let (bar, row) = &series[i % series.len()];
        let touch = Touch::top(bar.close - 0.05, bar.close + 0.05);
        let (_, legs) = challenger.on_bar(row, bar, 1_000.0, 1_000.0).unwrap();
        for leg in legs {
            challenger.execute(leg, Execution::Aggressive, Some(touch), &fees);
        }
        for k in 0..PRINTS {
            let price = bar.low + (bar.high - bar.low) * k as f64 / PRINTS as f64;
            challenger.on_trade(price, Some(touch), &fees);
        }
        black_box(challenger.core().book().equity(bar.close));
    };
    let mut group = c.benchmark_group("pitcrew_bar");
    let mut i = 0;
    group.bench_function("champion_decision", |b| {
        b.iter(|| {
            i += 1;
            champion_bar(i);
        });
    });
    group.bench_function("challenger_bar_with_30_prints", |b| {
        b.iter(|| {
            i += 1;
            challenger_bar(i);
        });
    });
    group.finish();
    // Side by side in one timed loop each, for the ratio.
    let rounds = 20_000;
    let start = Instant::now();
    for k in 0..rounds {
        champion_bar(k);
    }
    let champion = start.elapsed().as_secs_f64() / rounds as f64;
    let start = Instant::now();
    for k in 0..rounds {
        challenger_bar(k);
    }
    let bench_bar = start.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "pitcrew: one challenger per bar {:.2} us (decision, paper fills, {PRINTS} prints) vs the champion's decision \
         {:.2} us: ratio {:.2}",
        bench_bar * 1e6,
        champion * 1e6,
        bench_bar / champion
    );
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
