//! Prints summary statistics of one default-DSG run: a quick look at the simulated market while tuning.
use apex_sim::strategy::MovingAverageCrossover;
use apex_sim::{Dsg, InstrumentSpec, SimConfig, run};

fn main() {
    let hours: f64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let spec = InstrumentSpec::bybit_linear("BTCUSDT", "0.10", "0.001", "0.001").unwrap();
    let mut config = SimConfig::new(spec, 108_000.0, 7);
    config.horizon_s = hours * 3600.0;
    let start = std::time::Instant::now();
    let mut strategy = MovingAverageCrossover::default();
    let mut dsg = Dsg::default();
    if let Ok(text) = std::env::var("DSG") {
        let mut v = dsg.to_vector();
        for kv in text.split(',') {
            let (k, val) = kv.split_once('=').unwrap();
            let i = apex_sim::dsg::PARAMS.iter().position(|p| p.name == k).expect(k);
            v[i] = val.parse().unwrap();
        }
        dsg = Dsg::from_vector(&v).unwrap();
    }
    let out = run(&dsg, &config, Some(&mut strategy)).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "events {} in {:.2}s = {:.0}/s; trades {}; book rows {}; bars {}",
        out.events,
        secs,
        out.events as f64 / secs,
        out.trades.price.len(),
        out.book.price.len(),
        out.bars.len()
    );
    let closes: Vec<f64> = out.bars.iter().map(|b| b.close).collect();
    let rets: Vec<f64> = closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let n = rets.len() as f64;
    let mean = rets.iter().sum::<f64>() / n;
    let var = rets.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    let kurt = rets.iter().map(|r| (r - mean).powi(4)).sum::<f64>() / n / (var * var) - 3.0;
    println!(
        "first close {:.1} last close {:.1}; 1m ret std {:.2} bps; excess kurtosis {:.2}",
        closes[0],
        closes[closes.len() - 1],
        var.sqrt() * 1e4,
        kurt
    );
    for p in &out.populations {
        println!("{:?}", p);
    }
    let s = out.strategy.unwrap();
    println!(
        "strategy {} pnl {:.2} fees {:.3} dd {:.3} fills {} ruined {}",
        s.name, s.pnl, s.fees, s.max_drawdown, s.n_fills, s.ruined
    );
}
