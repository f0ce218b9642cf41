//! The streaming rule against a naive one that recomputes everything from the whole history at every bar: ATR from
//! all bars, the position and the trade record by replaying every fill in integer lots.

use apex_core::Side;
use apex_rule::{Bar, Decision, Instrument, RuleParams, TradeRule};
use proptest::prelude::*;

const STEP: f64 = 0.01;

/// The rule written the obvious way over full histories.
struct Naive {
    params: RuleParams,
    bars: Vec<Bar>,
    /// (signed lots, price, fee) of every fill.
    fills: Vec<(i64, f64, f64)>,
}

impl Naive {
    fn atr(&self) -> f64 {
        let n = self.bars.len();
        let first = n.saturating_sub(self.params.atr_window);
        let ranges: Vec<f64> = (first..n)
            .map(|i| {
                let b = self.bars[i];
                if i == 0 {
                    b.high - b.low
                } else {
                    let c = self.bars[i - 1].close;
                    (b.high - b.low).max((b.high - c).abs()).max((b.low - c).abs())
                }
            })
            .collect();
        ranges.iter().sum::<f64>() / ranges.len() as f64
    }

    /// Position in lots and the net return of every closed trade, replaying the fills one lot at a time.
    fn replay(&self) -> (i64, Vec<f64>) {
        let (mut position, mut returns) = (0i64, Vec::new());
        let (mut cost, mut realized, mut fees, mut entry_value) = (0.0, 0.0, 0.0, 0.0);
        for &(lots, price, fee) in &self.fills {
            let per_lot_fee = fee / lots.abs() as f64;
            for _ in 0..lots.abs() {
                let unit = lots.signum();
                if position == 0 || position.signum() == unit {
                    cost += price;
                    entry_value += price * STEP;
                    fees += per_lot_fee;
                    position += unit;
                } else {
                    let average = cost / position.abs() as f64;
                    realized += (price - average) * STEP * position.signum() as f64;
                    cost -= average;
                    fees += per_lot_fee;
                    position += unit;
                    if position == 0 {
                        returns.push((realized - fees) / entry_value);
                        (cost, realized, fees, entry_value) = (0.0, 0.0, 0.0, 0.0);
                    }
                }
            }
        }
        (position, returns)
    }

    fn decide(&mut self, bar: Bar, signal: f64, equity: f64) -> Decision {
        self.bars.push(bar);
        let s = if signal.is_nan() { 0.0 } else { signal.clamp(-1.0, 1.0) };
        let wanted = if s.abs() >= self.params.entry_threshold && s != 0.0 { s.signum() as i64 } else { 0 };
        let (position, returns) = self.replay();
        if wanted == position.signum() {
            return Decision::Hold;
        }
        let recent = &returns[returns.len().saturating_sub(self.params.kelly_window)..];
        let wins = recent.iter().filter(|&&r| r > 0.0).count() as f64;
        let p = (wins + self.params.prior_win_rate * self.params.prior_trades)
            / (recent.len() as f64 + self.params.prior_trades);
        let b = self.params.reward_risk;
        let f = (self.params.kelly_scale * (p * b - (1.0 - p)) / b)
            .clamp(self.params.min_fraction, self.params.max_fraction);
        let d = (self.params.stop_atr_mult * self.atr()).max(self.params.stop_min_bps * bar.close / 1e4);
        let qty = (f * s.abs() * equity / d).min(self.params.max_leverage * equity / bar.close);
        let lots = (qty / STEP + 1e-9).floor();
        let w = wanted as f64;
        // A bracket with a price at or below zero (a stop distance over a third of the price, for a short) is no trade.
        let (stop, take) = (bar.close - w * d, bar.close + w * b * d);
        let entry = (wanted != 0 && lots >= 1.0 && stop > 0.0 && take > 0.0).then(|| {
            let side = if wanted > 0 { Side::Buy } else { Side::Sell };
            (side, lots * STEP, stop, take, p)
        });
        match (position, entry) {
            (0, None) => Decision::Hold,
            (_, None) => Decision::Exit,
            (0, Some(e)) => Decision::Enter(fake(e)),
            (_, Some(e)) => Decision::Reverse(fake(e)),
        }
    }
}

fn fake((side, qty, stop, take, p): (Side, f64, f64, f64, f64)) -> apex_rule::Entry {
    apex_rule::Entry {
        side,
        qty,
        reference: 0.0,
        stop_distance: 0.0,
        stop,
        take,
        win_probability: p,
        risk_fraction: 0.0,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

fn same(streaming: &Decision, naive: &Decision) -> bool {
    match (streaming, naive) {
        (Decision::Hold, Decision::Hold) | (Decision::Exit, Decision::Exit) => true,
        (Decision::Enter(a), Decision::Enter(b)) | (Decision::Reverse(a), Decision::Reverse(b)) => {
            a.side == b.side
                && close(a.qty, b.qty)
                && close(a.stop, b.stop)
                && close(a.take, b.take)
                && close(a.win_probability, b.win_probability)
        }
        _ => false,
    }
}

/// One step: a bar move, a signal, and how much of the decision fills (0 = none, 1 = all) at what price offset.
fn steps() -> impl Strategy<Value = Vec<(f64, f64, f64, f64, f64)>> {
    prop::collection::vec((-3.0f64..3.0, 0.1f64..4.0, -1.5f64..1.5, 0.0f64..1.0, -2.0f64..2.0), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn streaming_equals_naive(
        steps in steps(),
        atr_window in 1usize..6,
        kelly_window in 1usize..6,
        threshold in 0.0f64..0.5,
    ) {
        let params = RuleParams {
            atr_window,
            kelly_window,
            entry_threshold: threshold,
            prior_trades: 4.0,
            ..RuleParams::default()
        };
        let lots = Instrument { qty_step: STEP, min_qty: STEP, ..Instrument::CONTINUOUS };
        let mut rule = TradeRule::new(params.clone(), lots).unwrap();
        let mut naive = Naive { params, bars: Vec::new(), fills: Vec::new() };
        let mut price = 100.0;
        for (k, &(moved, range, signal, filled, offset)) in steps.iter().enumerate() {
            let open = price;
            price = (price + moved).max(5.0);
            let bar = Bar { open, high: open.max(price) + range, low: open.min(price) - range, close: price };
            let equity = 200.0 + k as f64;
            let decision = rule.on_bar(&bar, signal, equity, None);
            let expected = naive.decide(bar, signal, equity);
            prop_assert!(same(&decision, &expected), "bar {k}: {decision:?} vs {expected:?}");
            // Fill what the decision asks for (entries partly), as one order per leg, fees 0.055%.
            let fill_price = price + offset;
            let held = (rule.position() / STEP).round() as i64;
            let mut legs = Vec::new();
            if decision.closes() {
                legs.push(-held);
            }
            if let Some(entry) = decision.entry() {
                let wanted = (entry.qty / STEP).round() as i64;
                let lots = ((wanted as f64) * filled).floor() as i64;
                legs.push(if entry.side == Side::Buy { lots } else { -lots });
            }
            for lots in legs.into_iter().filter(|&l| l != 0) {
                let side = if lots > 0 { Side::Buy } else { Side::Sell };
                let fee = 0.00055 * lots.abs() as f64 * STEP * fill_price;
                rule.on_fill(side, lots.abs() as f64 * STEP, fill_price, fee);
                naive.fills.push((lots, fill_price, fee));
            }
            let (position, returns) = naive.replay();
            prop_assert!(close(rule.position(), position as f64 * STEP));
            prop_assert_eq!(rule.trades().0, returns.len());
            prop_assert_eq!(rule.trades().1, returns.iter().filter(|&&r| r > 0.0).count());
            if let Some(&last) = returns.last() {
                prop_assert!(close(rule.last_return().unwrap(), last));
            }
        }
    }
}
