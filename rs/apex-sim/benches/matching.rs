//! Criterion benchmark: orders per second on a long random order stream, the engine against the naive reference.

// The bench uses the matcher but not its test-only inspection helpers.
#[allow(dead_code)]
#[path = "../tests/naive/mod.rs"]
mod naive;

use apex_core::Side;
use apex_core::timing::per_second;
use apex_sim::{Event, InstrumentSpec, MatchingEngine, NewOrder, StpMode, TimeInForce};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naive::NaiveMatcher;

const OPS: usize = 100_000;
/// The naive matcher needs seconds per 10k orders on this stream; criterion samples it on a prefix.
const NAIVE_SAMPLED_OPS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
enum Op {
    Submit(NewOrder),
    Cancel { account: u32, id: u64 },
    Amend { account: u32, id: u64, price: Option<i64>, qty: Option<i64> },
}

/// A stream shaped like a busy perpetual: a drifting mid, mostly passive limits within 50 ticks, some aggressive
/// limits and market orders, cancels and amends of recent orders, 50 accounts.
fn stream(count: usize) -> Vec<Op> {
    let mut rng = apex_core::XorShift64::new(0x2545_F491_4F6C_DD1D_u64);
    let mut next = move |bound: u64| rng.next_u64() % bound;
    let mut mid: i64 = 500_000;
    let mut owners: Vec<u32> = Vec::new();
    let mut ops = Vec::with_capacity(count);
    while ops.len() < count {
        if next(8) == 0 {
            mid += next(3) as i64 - 1;
        }
        let account = next(50) as u32;
        let side = if next(2) == 0 { Side::Buy } else { Side::Sell };
        let qty = 1 + next(20) as i64;
        let roll = next(100);
        let recent = |pick: u64, owners: &[u32]| {
            let window = owners.len().min(2_000) as u64;
            let index = owners.len() - 1 - (pick % window) as usize;
            (owners[index], index as u64 + 1)
        };
        let op = if roll < 60 || owners.is_empty() {
            let offset = next(52) as i64 - 2;
            let price = match side {
                Side::Buy => mid - offset,
                Side::Sell => mid + 1 + offset,
            };
            let tif = match next(10) {
                0 => TimeInForce::Ioc,
                1 => TimeInForce::PostOnly,
                _ => TimeInForce::Gtc,
            };
            owners.push(account);
            Op::Submit(NewOrder::limit(account, side, price, qty, tif).with_stp(StpMode::CancelMaker))
        } else if roll < 66 {
            owners.push(account);
            Op::Submit(NewOrder::market(account, side, qty))
        } else if roll < 90 {
            let (account, id) = recent(next(u64::MAX), &owners);
            Op::Cancel { account, id }
        } else {
            let (account, id) = recent(next(u64::MAX), &owners);
            let price = (next(2) == 0).then(|| mid + next(40) as i64 - 20);
            Op::Amend { account, id, price, qty: Some(qty) }
        };
        ops.push(op);
    }
    ops
}

fn spec() -> InstrumentSpec {
    InstrumentSpec::bybit_linear("BTCUSDT", "0.1", "0.001", "0.001").unwrap()
}

fn run_engine(ops: &[Op]) -> u64 {
    let mut engine = MatchingEngine::new(spec()).unwrap();
    let mut events: Vec<Event> = Vec::with_capacity(64);
    for (i, op) in ops.iter().enumerate() {
        let ts_us = i as i64;
        match *op {
            Op::Submit(order) => {
                engine.submit(ts_us, &order, &mut events);
            }
            Op::Cancel { account, id } => {
                engine.cancel(ts_us, account, id, &mut events);
            }
            Op::Amend { account, id, price, qty } => {
                engine.amend(ts_us, account, id, price, qty, &mut events);
            }
        }
        events.clear();
    }
    engine.last_trade_id()
}

fn run_naive(ops: &[Op]) -> usize {
    let mut naive = NaiveMatcher::new(&spec());
    for (i, op) in ops.iter().enumerate() {
        let ts_us = i as i64;
        match *op {
            Op::Submit(order) => {
                naive.submit(ts_us, &order);
            }
            Op::Cancel { account, id } => {
                naive.cancel(account, id);
            }
            Op::Amend { account, id, price, qty } => {
                naive.amend(ts_us, account, id, price, qty);
            }
        }
        naive.outcomes.clear();
    }
    naive.orders.len()
}

fn bench_matching(c: &mut Criterion) {
    let ops = stream(OPS);
    let engine = per_second(|| run_engine(&ops), ops.len(), 3);
    let naive = per_second(|| run_naive(&ops) as u64, ops.len(), 1);
    println!(
        "matching_{OPS}_ops thrpt: engine {:.2} M ops/s (best of 3), naive reference {:.4} M ops/s (one run), \
         ratio {:.0}x ({} trades)",
        engine / 1e6,
        naive / 1e6,
        engine / naive,
        run_engine(&ops)
    );
    let mut group = c.benchmark_group(format!("matching_{OPS}_ops"));
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.sample_size(10);
    group.bench_function("apex_sim_engine", |b| b.iter(|| run_engine(&ops)));
    group.finish();
    let mut group = c.benchmark_group(format!("matching_first_{NAIVE_SAMPLED_OPS}_ops"));
    group.throughput(Throughput::Elements(NAIVE_SAMPLED_OPS as u64));
    group.sample_size(10);
    let prefix = &ops[..NAIVE_SAMPLED_OPS];
    group.bench_function("apex_sim_engine", |b| b.iter(|| run_engine(prefix)));
    group.bench_function("naive_reference", |b| b.iter(|| run_naive(prefix)));
    group.finish();
}

criterion_group!(benches, bench_matching);
criterion_main!(benches);
