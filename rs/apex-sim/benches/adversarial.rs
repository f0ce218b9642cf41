//! Criterion benchmark: the adversarial fitness of a few GP trees x seeds x 15 simulated minutes, each seed's market
//! shared by the trees for as long as they send the same orders (`adversarial_fitness`) against every trading pair in
//! a market of its own from time 0 (`Markets::Independent`, the evaluation before), results checked equal
//! first.
//! `APEX_MARKET_PROFILE=<hours>` instead runs one market with a book-reading tree once (a profiler's target) and
//! prints its events per second.

use std::hint::black_box;

use apex_gp::Limits;
use apex_sim::adversarial::{Markets, adversarial_fitness};
use apex_sim::batch::preset;
use apex_sim::dsg::Dsg;
use apex_sim::gp_strategy::{FeatureOptions, GpStrategy};
use apex_sim::market::{SimConfig, run};
use criterion::{Criterion, Throughput};

// The allocator the extension (`apex-py`) ships with, so the profile is of what `evolve --dsg` runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tree(root: &str, features: &str) -> String {
    format!(r#"{{"schema":"apex.gp_tree","version":1,"features":[{features}],"root":{root}}}"#)
}

/// Trees on trades only, on the book, on rv (trading after its warm-up) and on VMD, and one that never trades.
fn trees() -> Vec<String> {
    vec![
        tree(r#"{"op":"sign","args":[{"feature":"clv"}]}"#, r#""clv""#),
        tree(
            r#"{"op":"tanh","args":[{"op":"sub","args":[{"feature":"clv"},{"op":"mul","args":[{"feature":"ofi_l1_sum"},{"feature":"spread_bps_mean"}]}]}]}"#,
            r#""clv","ofi_l1_sum","spread_bps_mean""#,
        ),
        tree(r#"{"op":"neg","args":[{"op":"sign","args":[{"feature":"rv"}]}]}"#, r#""rv""#),
        tree(r#"{"op":"sign","args":[{"feature":"vmd_1"}]}"#, r#""vmd_1""#),
        tree(r#"{"op":"sign","args":[{"feature":"rv_1h"}]}"#, r#""rv_1h""#),
    ]
}

fn config(hours: f64) -> SimConfig {
    let (spec, start) = preset("BTCUSDT").unwrap();
    let mut config = SimConfig::new(spec, start, 3);
    config.horizon_s = hours * 3600.0;
    config.record_market = false;
    config
}

fn main() {
    let options = FeatureOptions::new(5, 2, 8);
    let limits = Limits::default();
    if let Ok(hours) = std::env::var("APEX_MARKET_PROFILE") {
        let config = config(hours.parse().expect("APEX_MARKET_PROFILE is a number of hours"));
        let start = std::time::Instant::now();
        let mut strategy = GpStrategy::from_json(&trees()[1], &config, &options, &limits).unwrap();
        let out = run(&Dsg::default(), &config, Some(&mut strategy)).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        println!("{} events in {seconds:.3} s ({:.2} M events/s)", out.events, out.events as f64 / seconds / 1e6);
        return;
    }
    let (config, dsg, trees, seeds) = (config(0.25), Dsg::default(), trees(), [1, 2]);
    let shared = adversarial_fitness(&trees, &dsg, &seeds, &config, &options, &limits, Markets::Shared).unwrap();
    let independent =
        adversarial_fitness(&trees, &dsg, &seeds, &config, &options, &limits, Markets::Independent).unwrap();
    assert_eq!((&shared.pnl, &shared.trades), (&independent.pnl, &independent.trades), "the two evaluations agree");
    let mut criterion = Criterion::default().sample_size(10).configure_from_args();
    let mut group = criterion.benchmark_group("adversarial_fitness");
    group.throughput(Throughput::Elements((trees.len() * seeds.len()) as u64));
    group.bench_function("shared_markets", |b| {
        b.iter(|| {
            black_box(adversarial_fitness(&trees, &dsg, &seeds, &config, &options, &limits, Markets::Shared).unwrap())
        });
    });
    group.bench_function("independent_markets", |b| {
        b.iter(|| {
            black_box(
                adversarial_fitness(&trees, &dsg, &seeds, &config, &options, &limits, Markets::Independent).unwrap(),
            )
        });
    });
    group.finish();
    criterion.final_summary();
}
