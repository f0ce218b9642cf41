//! Criterion benchmark: the GP strategy's decisions over 6 hours of a market's public streams (trades and L2 messages
//! into the streaming feature engine, one streaming GP evaluation per closed bar) against recomputing the batch
//! features of everything so far and batch-evaluating the tree at every decision (the naive way to the same signal).

use std::hint::black_box;

use apex_book::{BookColumns, Level, UpdateKind};
use apex_core::{BookRows, MessageHead, TradeRows};
use apex_features::bars::{BarSource, bar_features};
use apex_features::trades::TradeColumns;
use apex_features::update::{UpdateParams, update_features};
use apex_gp::Limits;
use apex_sim::L2Update;
use apex_sim::batch::preset;
use apex_sim::gp_strategy::{FeatureOptions, GpStrategy, compile_for_sim, sim_bar_params};
use apex_sim::market::SimConfig;
use apex_sim::strategy::{Bar, Context, PublicTrade, Strategy};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BARS: usize = 360;
/// A mid-size evolved-looking tree over base, 5-minute, trade-count and book features.
const TREE: &str = r#"{"schema":"apex.gp_tree","version":1,"features":["clv","clv_5m","ret","rv","ofi_l1_sum","n_trades"],
    "root":{"op":"if_then_else","args":[{"op":"gt","args":[{"op":"ts_zscore","args":[{"feature":"ofi_l1_sum"},
    {"window":20}]},{"op":"ema","args":[{"feature":"clv_5m"},{"window":10}]}]},{"op":"tanh","args":[{"op":"div","args":
    [{"feature":"clv"},{"feature":"rv"}]}]},{"op":"neg","args":[{"op":"ts_mean","args":[{"op":"mul","args":
    [{"feature":"ret"},{"feature":"n_trades"}]},{"window":30}]}]}]}}"#;

enum Event {
    Trade(PublicTrade),
    Book(L2Update),
}

/// BTCUSDT-like streams in the instrument's units: a trade every 2 s, an L2 message every second (the touch and a
/// few levels behind it change), prices following a random walk.
fn market() -> Vec<Event> {
    let mut rng = apex_core::XorShift64::new(0x9E37_79B9_7F4A_7C15_u64);
    let mut next = move || rng.next_u64();
    let mut mid: i64 = 1_080_000;
    let mut events = Vec::new();
    let span_us = BARS as i64 * 60_000_000;
    for (k, ts_us) in (0..span_us).step_by(1_000_000).enumerate() {
        mid += (next() % 5) as i64 - 2;
        let level = |offset: i64, qty: u64| Level::new(offset, 1 + (qty % 400) as i64);
        let bids: Vec<Level> = (1..=if k == 0 { 20 } else { 3 }).map(|i| level(mid - i, next())).collect();
        let asks: Vec<Level> = (1..=if k == 0 { 20 } else { 3 }).map(|i| level(mid + i, next())).collect();
        let kind = if k == 0 { UpdateKind::Snapshot } else { UpdateKind::Delta };
        events.push(Event::Book(L2Update { kind, ts_us, update_id: k as u64 + 1, seq: k as u64, bids, asks }));
        if k % 2 == 0 {
            let side = if next() % 2 == 0 { 1 } else { -1 };
            let price = (mid + i64::from(side)) as f64 / 10.0;
            let size = (1 + next() % 50) as f64 / 1000.0;
            events.push(Event::Trade(PublicTrade { ts_us: ts_us + 500_000, side, price, size }));
        }
    }
    events
}

fn config() -> SimConfig {
    let (spec, start) = preset("BTCUSDT").unwrap();
    SimConfig::new(spec, start, 0)
}

/// The closed bars a decision sees (only their open times matter to the GP strategy).
fn bars() -> Vec<Bar> {
    (0..BARS as i64)
        .map(|i| Bar { ts_us: i * 60_000_000, open: 1.0, high: 1.0, low: 1.0, close: 1.0, volume: 0.0, turnover: 0.0 })
        .collect()
}

/// Streams every event into the strategy and decides at every bar close; returns the last target.
fn streaming(events: &[Event], bars: &[Bar], options: &FeatureOptions) -> f64 {
    let mut strategy = GpStrategy::from_json(TREE, &config(), options, &Limits::default()).unwrap();
    let mut decided = 0;
    let mut last = 0.0;
    for event in events {
        let ts_us = match event {
            Event::Trade(t) => t.ts_us,
            Event::Book(u) => u.ts_us,
        };
        while decided < bars.len() && (decided as i64 + 1) * 60_000_000 <= ts_us {
            decided += 1;
            last = strategy.target(&Context { bars: &bars[..decided], position: 0.0, equity: 200.0 });
        }
        match event {
            Event::Trade(t) => strategy.on_trade(t),
            Event::Book(u) => strategy.on_book(u),
        }
    }
    last
}

/// The tables of the events before `until_us`, then batch features and batch evaluation; the last signal.
fn recompute(events: &[Event], until_us: i64, options: &FeatureOptions, program: &apex_gp::Program) -> f64 {
    let (mut trades, mut book) = (TradeRows::default(), BookRows::default());
    let config = config();
    let spec = &config.spec;
    for event in events {
        match event {
            Event::Trade(t) if t.ts_us < until_us => trades.push(t.ts_us * 1_000, 0, t.side, t.price, t.size, ""),
            Event::Book(u) if u.ts_us < until_us => {
                let kind = u8::from(u.kind == UpdateKind::Delta);
                let head = MessageHead {
                    ts: u.ts_us * 1_000,
                    symbol: 0,
                    kind,
                    update_id: u.update_id as i64,
                    seq: u.seq as i64,
                };
                let level = |side: i8| move |l: &Level| (side, spec.price_to_f64(l.price), spec.qty_to_f64(l.qty));
                book.push_message(head, u.bids.iter().map(level(1)).chain(u.asks.iter().map(level(-1))));
            }
            _ => {}
        }
    }
    let book = BookColumns::from(&book);
    let updates = update_features(&book, (spec.price_scale, spec.qty_scale), &UpdateParams::default()).unwrap();
    let trades = TradeColumns::from(&trades);
    let table =
        bar_features(&BarSource::Trades(trades), Some(&updates.series()), &sim_bar_params(60, options)).unwrap();
    let columns: Vec<&[f64]> = program.inputs().iter().map(|n| table.column(n).unwrap()).collect();
    *apex_gp::batch::evaluate(program, &columns).unwrap().last().unwrap()
}

fn bench(c: &mut Criterion) {
    let events = market();
    let bars = bars();
    let options = FeatureOptions::new(30, 0, 0);
    let mut group = c.benchmark_group("gp_strategy");
    group.throughput(Throughput::Elements(BARS as u64));
    group.bench_function("streaming decisions, 6 h of trades + L2 (per bar)", |b| {
        b.iter(|| black_box(streaming(&events, &bars, &options)));
    });
    let program = compile_for_sim(TREE, 60, &options, &Limits::default()).unwrap();
    // The naive way recomputes everything per decision; sampled on every 24th decision and scaled in the report.
    group.throughput(Throughput::Elements((BARS / 24) as u64));
    group.sample_size(10);
    group.bench_function("recompute all features per decision (every 24th bar)", |b| {
        b.iter(|| {
            let mut last = 0.0;
            for n in (24..=BARS).step_by(24) {
                last = recompute(&events, n as i64 * 60_000_000, &options, &program);
            }
            black_box(last)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
