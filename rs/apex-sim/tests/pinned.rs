//! Pins the Forge's batch runs bit for bit: SHA-256 of the tables and summaries of seeded runs, computed before the
//! market was made open-ended and multi-account. A change that moves any of these hashes changes what the Forge
//! evolves against; it must be deliberate (re-pin with the new values and say why in the commit). The runs with a
//! strategy were re-pinned when the slot started trading the shared rule (apex-rule) instead of a clamped target.

use apex_core::Side;
use apex_sim::batch::{Job, preset, run_batch};
use apex_sim::execution::{Action, ExecConfig, ExecEnv};
use apex_sim::market::{SimOutput, run, run_us};
use apex_sim::strategy::MovingAverageCrossover;
use apex_sim::{Dsg, SimConfig};
use sha2::{Digest, Sha256};

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn f64s(h: &mut Sha256, values: &[f64]) {
    for v in values {
        h.update(v.to_bits().to_le_bytes());
    }
}

fn i64s(h: &mut Sha256, values: impl IntoIterator<Item = i64>) {
    for v in values {
        h.update(v.to_le_bytes());
    }
}

/// Every column of every table a run emits, and its summaries.
fn output_hash(out: &SimOutput) -> String {
    let mut h = Sha256::new();
    // The market tables hold UTC ns and text ids; the pins were taken of run µs and numeric ids.
    let run_time = |ts: &[i64]| ts.iter().map(|&t| run_us(out.epoch_ns, t)).collect::<Vec<_>>();
    let t = &out.trades;
    i64s(&mut h, run_time(&t.ts));
    i64s(&mut h, t.side.iter().map(|&s| i64::from(s)));
    f64s(&mut h, &t.price);
    f64s(&mut h, &t.size);
    i64s(&mut h, (0..t.len()).map(|row| t.trade_id(row).parse::<i64>().unwrap()));
    let b = &out.book;
    i64s(&mut h, run_time(&b.ts));
    i64s(&mut h, b.kind.iter().map(|&k| i64::from(k)));
    i64s(&mut h, b.side.iter().map(|&s| i64::from(s)));
    f64s(&mut h, &b.price);
    f64s(&mut h, &b.size);
    i64s(&mut h, b.update_id.iter().copied());
    i64s(&mut h, b.seq.iter().copied());
    for bar in &out.bars {
        i64s(&mut h, [bar.ts_us]);
        f64s(&mut h, &[bar.open, bar.high, bar.low, bar.close, bar.volume]);
    }
    let f = &out.fills;
    i64s(&mut h, f.ts_us.iter().copied());
    i64s(&mut h, f.account.iter().map(|&a| i64::from(a)));
    i64s(&mut h, f.side.iter().map(|&s| i64::from(s)));
    f64s(&mut h, &f.price);
    f64s(&mut h, &f.size);
    f64s(&mut h, &f.fee);
    i64s(&mut h, f.order_id.iter().map(|&i| i as i64));
    i64s(&mut h, f.maker.iter().map(|&m| i64::from(m)));
    for p in &out.populations {
        h.update(format!("{:?}", p.population).as_bytes());
        i64s(&mut h, [p.agents as i64]);
        f64s(&mut h, &[p.pnl, p.fees, p.volume]);
    }
    if let Some(s) = &out.strategy {
        h.update(s.name.as_bytes());
        f64s(&mut h, &[s.pnl, s.fees, s.max_drawdown, s.time_to_target_s.unwrap_or(f64::NAN)]);
        i64s(&mut h, [i64::from(s.ruined), s.n_fills as i64]);
        i64s(&mut h, s.equity_ts_us.iter().copied());
        f64s(&mut h, &s.equity);
        for (ts, decision) in &s.decisions {
            i64s(&mut h, [*ts]);
            h.update(decision.kind().as_bytes());
            if let Some(e) = decision.entry() {
                i64s(&mut h, [i64::from(e.side.sign())]);
                f64s(&mut h, &[e.qty, e.stop, e.take, e.win_probability]);
            }
        }
    }
    i64s(&mut h, [out.events as i64, out.trade_count as i64, i64::from(out.truncated)]);
    hex(h.finalize())
}

fn config(symbol: &str, seed: u64, minutes: f64) -> SimConfig {
    let (spec, start) = preset(symbol).unwrap();
    let mut config = SimConfig::new(spec, start, seed);
    config.horizon_s = minutes * 60.0;
    config
}

#[test]
fn a_run_with_every_table_recorded_is_pinned() {
    let mut config = config("BTCUSDT", 7, 20.0);
    config.record_all_fills = true;
    let mut strategy = MovingAverageCrossover { fast: 3, slow: 8 };
    let out = run(&Dsg::default(), &config, Some(&mut strategy)).unwrap();
    assert!(out.trades.len() > 1000 && out.strategy.as_ref().is_some_and(|s| s.n_fills > 0));
    assert_eq!(output_hash(&out), "94099f8c03e6ac013812a36b88f50b39e6ebd5393107fdee89dd4ec496fdf07b");
}

#[test]
fn a_run_of_another_dsg_and_instrument_is_pinned() {
    let dsg = Dsg { noise_agents: 30.0, inf_agents: 6.0, fv_vol_bps: 25.0, ..Dsg::default() };
    let mut config = config("SOLUSDT", 3, 15.0);
    config.bar_s = 30;
    config.book_depth = 200;
    let out = run(&dsg, &config, None).unwrap();
    assert_eq!(output_hash(&out), "b4640c49933cd478135dee9db0d0246feef12aaf37a6668ea816dc2d86ead4e6");
}

#[test]
fn batch_summaries_are_pinned() {
    let template = config("ETHUSDT", 0, 10.0);
    let jobs: Vec<Job> = (0..4)
        .map(|i| Job {
            dsg: Dsg::default(),
            seed: 100 + i,
            strategy: Some(["buy_and_hold", "ma_crossover"][i as usize % 2].to_owned()),
        })
        .collect();
    let summaries = run_batch(&template, &jobs).unwrap();
    let mut h = Sha256::new();
    for s in &summaries {
        f64s(&mut h, &[s.pnl, s.fees, s.max_drawdown, s.time_to_target_s]);
        i64s(&mut h, [i64::from(s.ruined), s.n_fills as i64, s.events as i64, s.trades as i64, i64::from(s.truncated)]);
    }
    assert_eq!(hex(h.finalize()), "ddb31520f775843d2fac0060118f1fa259266c2bf428f8b80559ac8d393e3b81");
}

#[test]
fn an_execution_episode_is_pinned() {
    let template = config("BTCUSDT", 0, 1.0);
    let mut env = ExecEnv::new(Dsg::default(), &template, ExecConfig::new(Side::Buy, 40, 30.0, 3.0)).unwrap();
    env.reset(5).unwrap();
    let mut h = Sha256::new();
    for k in 0.. {
        let action = Action::from_index(k % 4).unwrap();
        let step = env.step(action).unwrap();
        let info = step.info;
        f64s(&mut h, &[step.reward, info.arrival_mid, info.fees, info.shortfall_bps]);
        i64s(&mut h, [info.executed_lots, info.maker_lots, info.taker_lots, info.forced_lots, info.unfilled_lots]);
        if step.done {
            break;
        }
    }
    assert_eq!(hex(h.finalize()), "c0fc84d228774d3a7c10c5c19d3aa53233c9d6f3bbd7c073212cebfbcfb9fafd");
}
