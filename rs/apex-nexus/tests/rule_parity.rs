//! One trading rule, three drivers: on the shared fixture (committed bars and signal, `rs/apex-rule/tests/data`),
//! the backtester, the simulator's strategy slot and the live engine's slot make the same decision at every bar
//! when their fills happen the same way.
//!
//! The backtester fills by its own model (the decision at the next open, the bracket against the bar's extremes).
//! The simulator's slot and the engine's slot are driven through their real interfaces, the simulator's with the
//! market's account events and attached take-profit/stop-loss, the engine's with fills and trade prints, by one
//! harness that fills what they send the way the backtester does (no slippage, the taker fee).

use apex_backtest::{BacktestParams, Bars, Decision, RuleParams, decisions};
use apex_core::{Liquidity, Side};
use apex_nexus::slot::{Purpose, SlotCore};
use apex_rule::Bar;
use apex_sim::market::{RuleSlot, rule_instrument};
use apex_sim::strategy::Bar as SimBar;
use apex_sim::{AccountEvent, AccountEventKind, ExternalRequest, InstrumentSpec, OrderKind, Stops};

const FEE: f64 = 0.00055;
const CAPITAL: f64 = 200.0;

struct Fixture {
    ts: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    signal: Vec<f64>,
}

fn fixture() -> Fixture {
    let path = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../apex-rule/tests/data/fixture.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut f =
        Fixture { ts: vec![], open: vec![], high: vec![], low: vec![], close: vec![], volume: vec![], signal: vec![] };
    for line in text.lines().skip(1) {
        let v: Vec<&str> = line.split(',').collect();
        f.ts.push(v[0].parse().unwrap());
        for (column, value) in
            [&mut f.open, &mut f.high, &mut f.low, &mut f.close, &mut f.volume, &mut f.signal].into_iter().zip(&v[1..])
        {
            column.push(value.parse().unwrap());
        }
    }
    f
}

fn spec() -> InstrumentSpec {
    InstrumentSpec::bybit_linear("BTCUSDT", "0.10", "0.001", "0.001").unwrap()
}

/// A position as the harness fills it: signed quantity, entry price, and its bracket.
#[derive(Default, Clone, Copy)]
struct Held {
    qty: f64,
    entry: f64,
    stop: f64,
    take: f64,
}

/// The backtester's fill model for a driver that says what to send: orders at the open, then the bracket.
#[derive(Default)]
struct Harness {
    realized: f64,
    fees: f64,
    held: Held,
}

impl Harness {
    fn equity(&self, close: f64) -> f64 {
        CAPITAL + self.realized - self.fees + self.held.qty * (close - self.held.entry)
    }

    /// Fills `qty` (signed) at `price`; returns the fee.
    fn fill(&mut self, qty: f64, price: f64) -> f64 {
        let fee = FEE * qty.abs() * price;
        self.fees += fee;
        if self.held.qty == 0.0 {
            self.held = Held { qty, entry: price, ..self.held };
        } else {
            self.realized += -qty * (price - self.held.entry);
            self.held.qty += qty;
            if self.held.qty.abs() < 1e-9 {
                self.held = Held::default();
            }
        }
        fee
    }

    /// Where the bracket closes the position in a bar, as the backtester does: at the open when it is beyond a level,
    /// else at the stop when the adverse extreme touches it, else at the take-profit.
    fn bracket_exit(&self, open: f64, high: f64, low: f64) -> Option<f64> {
        let h = self.held;
        if h.qty == 0.0 {
            return None;
        }
        let long = h.qty > 0.0;
        let beyond = |p: f64, level: f64, above: bool| if above { p >= level } else { p <= level };
        let (adverse, favourable) = if long { (low, high) } else { (high, low) };
        if beyond(open, h.stop, !long) || beyond(open, h.take, long) {
            Some(open)
        } else if beyond(adverse, h.stop, !long) {
            Some(h.stop)
        } else if beyond(favourable, h.take, long) {
            Some(h.take)
        } else {
            None
        }
    }
}

fn same(a: &Decision, b: &Decision) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
    match (a, b) {
        (Decision::Hold, Decision::Hold) | (Decision::Exit, Decision::Exit) => true,
        (Decision::Enter(x), Decision::Enter(y)) | (Decision::Reverse(x), Decision::Reverse(y)) => {
            x.side == y.side
                && close(x.qty, y.qty)
                && close(x.stop, y.stop)
                && close(x.take, y.take)
                && close(x.win_probability, y.win_probability)
        }
        _ => false,
    }
}

fn backtest_decisions(f: &Fixture) -> Vec<Decision> {
    let bars = Bars {
        ts: &f.ts,
        open: &f.open,
        high: &f.high,
        low: &f.low,
        close: &f.close,
        volume: &f.volume,
        spread_bps: None,
        depth: None,
    };
    let params = BacktestParams {
        capital: CAPITAL,
        fee: FEE,
        spread_bps: 0.0,
        impact: 0.0,
        rule: RuleParams::default(),
        instrument: rule_instrument(&spec()),
        ..BacktestParams::default()
    };
    decisions(&bars, &f.signal, &params, 0..f.ts.len()).unwrap()
}

fn simulator_decisions(f: &Fixture) -> Vec<Decision> {
    let spec = spec();
    let mut slot = RuleSlot::new(7, &spec, RuleParams::default()).unwrap();
    let mut harness = Harness::default();
    let price = |units: i64| spec.price_to_f64(units);
    let units = |p: f64| (p / spec.price_to_f64(spec.tick)).round() as i64 * spec.tick;
    let cash_units = |fee: f64| (fee * 10f64.powi(spec.cash_decimals() as i32)).round() as i128;
    let mut pending: Vec<ExternalRequest> = Vec::new();
    let mut attached = Stops::default();
    let mut out = Vec::new();
    let mut trade = 0;
    for k in 0..f.ts.len() {
        let mut events = Vec::new();
        let mut fill = |harness: &mut Harness, side: Side, qty_units: i64, at: i64| {
            trade += 1;
            let qty = spec.qty_to_f64(qty_units) * f64::from(side.sign());
            let fee = harness.fill(qty, price(at));
            let kind = AccountEventKind::Fill {
                trade_id: trade,
                side,
                price: at,
                qty: qty_units,
                fee: cash_units(fee),
                liquidity: Liquidity::Taker,
                leaves_qty: 0,
            };
            events.push(AccountEvent { ts_us: 0, account: 7, tag: 0, kind, position: 0 });
        };
        let open = units(f.open[k]);
        for request in pending.drain(..) {
            let ExternalRequest::Submit { order, attach, .. } = request else { panic!("only orders are sent") };
            assert_eq!(order.kind, OrderKind::Market);
            fill(&mut harness, order.side, order.qty, open);
            if !attach.is_empty() {
                attached = attach;
            }
        }
        if harness.held.qty != 0.0 {
            harness.held.stop = price(attached.stop_loss.unwrap().trigger_price);
            harness.held.take = price(attached.take_profit.unwrap().trigger_price);
        }
        if let Some(exit) = harness.bracket_exit(f.open[k], f.high[k], f.low[k]) {
            let side = if harness.held.qty > 0.0 { Side::Sell } else { Side::Buy };
            let qty_units = (harness.held.qty.abs() / spec.qty_to_f64(1)).round() as i64;
            fill(&mut harness, side, qty_units, units(exit));
        }
        for event in &events {
            slot.on_event(event);
        }
        let bar = SimBar {
            ts_us: 0,
            open: f.open[k],
            high: f.high[k],
            low: f.low[k],
            close: f.close[k],
            volume: 0.0,
            turnover: 0.0,
        };
        let held_units = (harness.held.qty / spec.qty_to_f64(1)).round() as i64;
        let (decision, requests) = slot.on_bar_close(&bar, f.signal[k], harness.equity(f.close[k]), held_units);
        out.push(decision);
        pending = requests;
    }
    out
}

fn engine_decisions(f: &Fixture) -> Vec<Decision> {
    let mut slot = SlotCore::new("btc-a", CAPITAL, RuleParams::default(), rule_instrument(&spec())).unwrap();
    let mut harness = Harness::default();
    let mut pending: Vec<apex_nexus::slot::Leg> = Vec::new();
    let mut out = Vec::new();
    for k in 0..f.ts.len() {
        for leg in std::mem::take(&mut pending) {
            let signed = leg.qty * f64::from(leg.side.sign());
            let fee = harness.fill(signed, f.open[k]);
            if leg.purpose == Purpose::Entry {
                harness.held.stop = leg.stop.unwrap();
                harness.held.take = leg.take.unwrap();
            }
            slot.on_fill(leg.side, leg.qty, f.open[k], fee, leg.stop.zip(leg.take));
        }
        // Prints in the bar: the open, then the adverse extreme, then the favourable one.
        if let Some(exit) = harness.bracket_exit(f.open[k], f.high[k], f.low[k]) {
            let long = harness.held.qty > 0.0;
            let (adverse, favourable) = if long { (f.low[k], f.high[k]) } else { (f.high[k], f.low[k]) };
            let leg = [f.open[k], adverse, favourable].into_iter().find_map(|p| slot.check_bracket(p)).unwrap();
            let fee = harness.fill(leg.qty * f64::from(leg.side.sign()), exit);
            slot.on_fill(leg.side, leg.qty, exit, fee, None);
        } else {
            for p in [f.open[k], f.low[k], f.high[k]] {
                assert!(
                    slot.check_bracket(p).is_none(),
                    "bar {k}: the engine's bracket fires where the backtest's does not"
                );
            }
        }
        let bar = Bar { open: f.open[k], high: f.high[k], low: f.low[k], close: f.close[k] };
        let (decision, legs) = slot.on_bar(&bar, f.signal[k], None);
        assert!((slot.book().equity(f.close[k]) - harness.equity(f.close[k])).abs() < 1e-6, "bar {k}: equity");
        out.push(decision);
        pending = legs;
    }
    out
}

#[test]
fn backtest_simulator_and_engine_make_the_same_decisions() {
    let f = fixture();
    assert_eq!(f.ts.len(), 360);
    let backtest = backtest_decisions(&f);
    let simulator = simulator_decisions(&f);
    let engine = engine_decisions(&f);
    let count = |kind: &str| backtest.iter().filter(|d| d.kind() == kind).count();
    // The fixture exercises every kind of decision and the bracket.
    assert!(count("enter") >= 5 && count("exit") >= 3 && count("reverse") >= 3, "{:?}", backtest);
    for k in 0..f.ts.len() {
        assert!(
            same(&backtest[k], &simulator[k]),
            "bar {k}: backtest {:?} vs simulator {:?}",
            backtest[k],
            simulator[k]
        );
        assert!(same(&backtest[k], &engine[k]), "bar {k}: backtest {:?} vs engine {:?}", backtest[k], engine[k]);
    }
}
