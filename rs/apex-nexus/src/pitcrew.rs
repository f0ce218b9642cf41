//! The Pit Crew: new bundles published into a slot's folder are verified, run in shadow on the slot's challenger bench
//! (paper-filled against the live book and tape), and promoted to champion between two bars when they beat it.
//!
//! # Life of a bundle
//! The watcher (`watch.rs`, off the engine's loop) sees a slot's folder change, waits until it is stable, and
//! verifies a bundle whose manifest it has not seen before: [`SlotModels::load`] (file hashes, features the engine
//! computes, symbol, a `signal` model) and apex-infer's `Bundle::check` (shapes and sample rows). A bad bundle is
//! logged (`bundle_rejected`) and never replaces anything; its manifest is not checked again. A good one joins the
//! slot's bench (`models` role `challenger`); a full bench (`[pitcrew] bench`, default 3) first retires the
//! challenger with the weakest record.
//!
//! # Shadow trading
//! On every closed bar of its symbol a challenger gets the champion's feature row and decides through its own
//! [`SlotCore`] (the same rule parameters; its capital is the champion's equity when it joined) and its own models
//! (its MAML adapts on its own). Its legs are paper-filled: an aggressive leg takes the book's best levels from the
//! touch outwards ([`Touch::sweep`]) with the taker fee; a passive leg (the IEL tactic) only when a later trade prints strictly through its limit price, with the maker fee,
//! and cancelled unfilled at the next bar as the live ones are. Its bracket triggers on the tape as the champion's
//! does. Its shadow equity (cash plus position at the bar's close, before that bar's orders) is written to
//! `shadow_equity` every bar; the champion's equity in the comparison is taken at the same moment.
//!
//! # Promotion rule
//! Over the bars since the challenger joined, the paired per-bar differences of log growth are
//! `d_t = Δlog(challenger shadow equity) − Δlog(champion live equity)`, where the champion's growth leaves out any
//! capital the CWO added or removed on that bar (one difference per bar after the one it joined on). Once there are
//! at least `min_decisions` differences (default 60), it is promoted when `mean(d) > 0` and a one-sided t-test
//! rejects `mean(d) ≤ 0`: `t = mean(d) / (sd(d) / √n) > t_{1−alpha_k, n−1}` (Student's t quantile, `statrs`).
//! The test is repeated every bar, and every look is another chance for noise to pass, so the level is spent over
//! the looks: look `k` (k = 1 at `n = min_decisions`) tests at `alpha_k = alpha / (k (k + 1))`, which sum to `alpha`
//! (default 0.05), so a challenger no better than the champion is promoted with probability at most `alpha` however
//! long it sits on the bench. Every bar's rows count, so a challenger that holds flat while the champion pays spread
//! and fees gains on every bar the champion trades. Of several challengers that pass, the one with the largest `t`
//! wins.
//!
//! # Swap
//! The swap happens in the engine's loop after a bar's decisions are written and before the next bar's: no decision
//! sees half a model. The challenger's models become the slot's champion; the open position, its bracket and the slot's
//! book stay with the slot (`swaps.position` = `handed_over`, or `flat`). The old champion stays loaded as the
//! `fallback` and runs on every bar as the champion does (it takes over with the current bars in its history; a
//! fallback that fails to run is retired): if the new champion fails to run (its signal on a bar, or its IEL policy
//! picking an entry's tactic), the slot falls back to it (event `model_fallback`, the failed model `retired`, a `swaps`
//! row with reason `fallback`) and the fallback decides that bar or picks that tactic, instead of stopping the engine;
//! a champion without a fallback stops it with an error naming the slot and the model. A challenger whose signal or IEL
//! policy fails to run is retired ("failed to run"). A verified bundle for a dead slot is promoted at once (reason
//! `refill`, position `flat`) and the slot is live again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use apex_core::Side;
use apex_rule::{Bar, Instrument, RuleParams};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::NexusError;
use crate::models::{SlotModels, Tactic};
use crate::slot::{Leg, Purpose, SlotCore};

/// How the watcher learns that a folder changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// The system's file notifications (the `notify` crate), falling back to polling when they cannot start.
    Notify,
    /// Polling the folders every `poll`.
    Poll,
}

/// The promotion rule's parameters (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Promotion {
    /// Fewest paired differences (bars after the one a challenger joined on) before it may be promoted (at least 2).
    pub min_decisions: usize,
    /// Chance of promoting a challenger no better than the champion, over all the looks, in (0, 0.5).
    pub alpha: f64,
}

impl Default for Promotion {
    fn default() -> Self {
        Promotion { min_decisions: 60, alpha: 0.05 }
    }
}

impl Promotion {
    /// The level spent on the look at `n` differences: `alpha / (k (k + 1))` at look `k = n − min_decisions + 1`
    /// (the first look's level before `min_decisions`).
    #[must_use]
    pub fn level_at(&self, n: usize) -> f64 {
        let look = (n.saturating_sub(self.min_decisions) + 1) as f64;
        self.alpha / (look * (look + 1.0))
    }
}

/// Fee rates of paper fills (fraction of notional; negative is a rebate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fees {
    pub taker: f64,
    pub maker: f64,
}

impl Default for Fees {
    /// The rates the local venue charges (apex-sim's Bybit VIP0 linear perpetual rates).
    fn default() -> Self {
        Fees { taker: apex_core::BYBIT_VIP0_TAKER_FEE, maker: apex_core::BYBIT_VIP0_MAKER_FEE }
    }
}

/// The checked `[pitcrew]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Watch the slots' folders at all.
    pub enabled: bool,
    pub promotion: Promotion,
    /// Most challengers per slot.
    pub bench: usize,
    pub watch: WatchMode,
    /// Polling interval (the polling watcher; the notify watcher rescans this often ×30 as a safety net).
    pub poll: Duration,
    /// A changed folder is read once it has not changed for this long.
    pub settle: Duration,
    pub fees: Fees,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            promotion: Promotion::default(),
            bench: 3,
            watch: WatchMode::Notify,
            poll: Duration::from_secs(2),
            settle: Duration::from_millis(500),
            fees: Fees::default(),
        }
    }
}

/// The promotion rule's figures for one challenger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Paired differences so far.
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    /// The t statistic (infinite when every difference is the same positive number).
    pub t: f64,
    /// The one-sided critical value `t_{1−alpha_k, n−1}` of this look (NaN below two differences).
    pub critical: f64,
    pub promote: bool,
}

impl Verdict {
    /// One line for the ledger (`models.detail`, `swaps.reason`).
    #[must_use]
    pub fn describe(&self, rule: &Promotion) -> String {
        format!(
            "n={} mean_dlog={:.3e} sd={:.3e} t={:.3} > t_crit={:.3} (alpha_k={:.3e} of alpha={}, min_decisions={})",
            self.n,
            self.mean,
            self.sd,
            self.t,
            self.critical,
            rule.level_at(self.n),
            rule.alpha,
            rule.min_decisions
        )
    }
}

/// The promotion rule on the paired per-bar log-growth differences `diffs` (challenger minus champion): promote when
/// there are at least `min_decisions` of them, their mean is positive, and a one-sided t-test rejects a mean ≤ 0 at
/// this look's level ([`Promotion::level_at`]). Non-finite differences never promote.
#[must_use]
pub fn judge(diffs: &[f64], rule: &Promotion) -> Verdict {
    let n = diffs.len();
    let nan = Verdict { n, mean: f64::NAN, sd: f64::NAN, t: f64::NAN, critical: f64::NAN, promote: false };
    if n < 2 || diffs.iter().any(|d| !d.is_finite()) {
        return Verdict { mean: if n == 1 { diffs[0] } else { f64::NAN }, ..nan };
    }
    let count = n as f64;
    let mean = diffs.iter().sum::<f64>() / count;
    let variance = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (count - 1.0);
    let sd = variance.sqrt();
    // A spread far below the mean's rounding is no spread: every difference equal.
    let t = if sd <= mean.abs() * 1e-12 {
        if mean > 0.0 {
            f64::INFINITY
        } else if mean < 0.0 {
            f64::NEG_INFINITY
        } else {
            0.0
        }
    } else {
        mean / (sd / count.sqrt())
    };
    let level = rule.level_at(n);
    let critical = StudentsT::new(0.0, 1.0, count - 1.0).map_or(f64::NAN, |d| d.inverse_cdf(1.0 - level));
    let promote = n >= rule.min_decisions && mean > 0.0 && critical.is_finite() && t > critical;
    Verdict { n, mean, sd, t, critical, promote }
}

/// Levels per side of the book a paper market order can take.
pub const PAPER_LEVELS: usize = 8;

/// The book a paper order fills against: best bid and best ask (quote per base), and the best levels of each side
/// as (price, quantity in base), best first; unused levels hold no quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touch {
    pub bid: f64,
    pub ask: f64,
    pub bids: [(f64, f64); PAPER_LEVELS],
    pub asks: [(f64, f64); PAPER_LEVELS],
}

impl Touch {
    /// A book whose depth is unknown: any quantity trades at the touch.
    #[must_use]
    pub const fn top(bid: f64, ask: f64) -> Touch {
        let mut bids = [(0.0, 0.0); PAPER_LEVELS];
        let mut asks = [(0.0, 0.0); PAPER_LEVELS];
        bids[0] = (bid, f64::INFINITY);
        asks[0] = (ask, f64::INFINITY);
        Touch { bid, ask, bids, asks }
    }

    /// The book's best levels (best first; the first of each side is the touch), at most [`PAPER_LEVELS`] a side.
    #[must_use]
    pub fn from_levels(bids: &[(f64, f64)], asks: &[(f64, f64)]) -> Option<Touch> {
        let (&(bid, _), &(ask, _)) = (bids.first()?, asks.first()?);
        let mut touch = Touch { bid, ask, bids: [(0.0, 0.0); PAPER_LEVELS], asks: [(0.0, 0.0); PAPER_LEVELS] };
        for (into, from) in [(&mut touch.bids, bids), (&mut touch.asks, asks)] {
            for (slot, &level) in into.iter_mut().zip(from) {
                *slot = level;
            }
        }
        Some(touch)
    }

    /// The average price of a market order of `qty` on `side`: it takes the levels from the touch outwards, and
    /// what they do not hold trades at the last one's price (the book beyond is not seen).
    #[must_use]
    pub fn sweep(&self, side: Side, qty: f64) -> f64 {
        let (touch, levels) = if side == Side::Buy { (self.ask, &self.asks) } else { (self.bid, &self.bids) };
        let (mut left, mut cost, mut last) = (qty, 0.0, touch);
        for &(price, size) in levels.iter().take_while(|l| l.1 > 0.0) {
            let take = left.min(size);
            (cost, left, last) = (cost + take * price, left - take, price);
            if left <= 0.0 {
                break;
            }
        }
        if qty > 0.0 { (cost + left.max(0.0) * last) / qty } else { touch }
    }
}

/// A challenger's passive paper order, waiting for the tape to trade through its price.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Resting {
    leg: Leg,
    price: f64,
}

/// How a paper leg is to be executed, as the engine would send it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Execution {
    /// A market order: filled at once against the book's best levels, taker fee.
    Aggressive,
    /// A post-only limit order at this price: filled when a later print trades strictly through it, maker fee.
    Limit(f64),
}

/// One challenger on a slot's bench: its models, its own paper book, and its record against the champion.
pub struct Challenger {
    pub models: SlotModels,
    /// The folder it was read from.
    pub folder: PathBuf,
    core: SlotCore,
    resting: Vec<Resting>,
    decisions: usize,
    /// (shadow equity, champion equity, champion capital) at the previous bar.
    previous: Option<(f64, f64, f64)>,
    diffs: Vec<f64>,
    /// Market time (ns) of the bar it joined at (its first decision), for the ledger.
    pub joined: Option<i64>,
}

impl std::fmt::Debug for Challenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenger")
            .field("model", &self.models.sha256)
            .field("decisions", &self.decisions)
            .field("book", self.core.book())
            .finish_non_exhaustive()
    }
}

impl Challenger {
    /// A flat challenger with `capital` (the champion's equity now), trading by `params` within `instrument`.
    ///
    /// # Errors
    /// [`NexusError::Runtime`] for a capital or parameter the rule refuses.
    pub fn new(
        slot: &str,
        models: SlotModels,
        folder: PathBuf,
        capital: f64,
        params: RuleParams,
        instrument: Instrument,
    ) -> Result<Challenger, NexusError> {
        let core = SlotCore::new(slot, capital, params, instrument)
            .map_err(|e| NexusError::Runtime(format!("slot {slot}: challenger: {e}")))?;
        Ok(Challenger {
            models,
            folder,
            core,
            resting: Vec::new(),
            decisions: 0,
            previous: None,
            diffs: Vec::new(),
            joined: None,
        })
    }

    /// The paper book.
    #[must_use]
    pub fn core(&self) -> &SlotCore {
        &self.core
    }

    /// Bars decided so far.
    #[must_use]
    pub fn decisions(&self) -> usize {
        self.decisions
    }

    /// The paired log-growth differences so far (one per bar after the first).
    #[must_use]
    pub fn diffs(&self) -> &[f64] {
        &self.diffs
    }

    /// A bar closed: resting paper orders of the previous bar are cancelled, the models and the rule decide on
    /// `row`, and the pair (this shadow equity, the champion's `champion_equity` with its `champion_capital`) at the
    /// close extends the record. Returns the shadow equity at the close (before this bar's legs) and the legs to
    /// execute ([`Challenger::execute`]).
    ///
    /// # Errors
    /// [`NexusError::Runtime`] when a model fails to run.
    pub fn on_bar(
        &mut self,
        row: &[f64],
        bar: &Bar,
        champion_equity: f64,
        champion_capital: f64,
    ) -> Result<(f64, Vec<Leg>), NexusError> {
        self.resting.clear();
        let (signal, p_up) = self.models.on_bar(row, bar.close)?;
        let equity = self.core.book().equity(bar.close);
        let (_, legs) = self.core.on_bar(bar, signal, p_up);
        self.decisions += 1;
        if let Some((shadow, champion, capital)) = self.previous {
            // The champion's growth without the capital the CWO moved in or out on this bar.
            let champion_growth = (champion_equity - (champion_capital - capital)) / champion;
            self.diffs.push((equity / shadow).ln() - champion_growth.ln());
        }
        self.previous = Some((equity, champion_equity, champion_capital));
        Ok((equity, legs))
    }

    /// Executes one leg of the bar on paper: aggressive against `touch` (a buy takes the asks from the best outwards,
    /// a sell the bids, see [`Touch::sweep`]) with the taker fee, or resting at a limit price until the tape trades
    /// through it. Without a touch (a blind book) the leg is not filled, as the engine withholds the live order; a
    /// bracket may then trigger again.
    pub fn execute(&mut self, leg: Leg, execution: Execution, touch: Option<Touch>, fees: &Fees) {
        match execution {
            Execution::Limit(price) => self.resting.push(Resting { leg, price }),
            Execution::Aggressive => match touch {
                Some(touch) => self.fill(leg, touch.sweep(leg.side, leg.qty), fees.taker),
                None if matches!(leg.purpose, Purpose::Stop | Purpose::Take) => {
                    self.core.rearm_bracket();
                }
                None => {}
            },
        }
    }

    fn fill(&mut self, leg: Leg, price: f64, rate: f64) {
        let fee = rate * leg.qty * price;
        self.core.on_fill(leg.side, leg.qty, price, fee, leg.stop.zip(leg.take));
    }

    /// A trade printed at `price`: resting paper orders it trades strictly through fill at their price (maker fee),
    /// then the bracket is checked and a triggered one closes the position at the touch.
    pub fn on_trade(&mut self, price: f64, touch: Option<Touch>, fees: &Fees) {
        let mut index = 0;
        while index < self.resting.len() {
            let order = self.resting[index];
            let through = if order.leg.side == Side::Buy { price < order.price } else { price > order.price };
            if through {
                self.resting.remove(index);
                self.fill(order.leg, order.price, fees.maker);
            } else {
                index += 1;
            }
        }
        if let Some(leg) = self.core.check_bracket(price) {
            self.execute(leg, Execution::Aggressive, touch, fees);
        }
    }

    /// The promotion rule on the record so far.
    #[must_use]
    pub fn verdict(&self, rule: &Promotion) -> Verdict {
        judge(&self.diffs, rule)
    }

    /// Resting paper orders (for tests and the status).
    #[must_use]
    pub fn resting(&self) -> usize {
        self.resting.len()
    }
}

/// The Pit Crew's state apart from the engine's slots: each slot's bench and its fallback model.
#[derive(Debug, Default)]
pub struct PitCrew {
    pub settings: Settings,
    /// Challengers by slot index, in the order they joined.
    pub benches: BTreeMap<usize, Vec<Challenger>>,
    /// The champion a swap replaced, kept loaded, by slot index.
    pub fallbacks: BTreeMap<usize, SlotModels>,
    /// Rows a fall back produced while the slots decided (nothing is written then), written after the bar.
    pub pending: Vec<Row>,
}

/// Ledger rows the Pit Crew produced, written by the engine in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Event {
        kind: &'static str,
        detail: String,
    },
    Role {
        slot: String,
        model_id: String,
        role: &'static str,
        detail: Option<String>,
    },
    Shadow {
        slot: String,
        model_id: String,
        equity: f64,
        position: f64,
        decisions: i64,
    },
    Swap {
        slot: String,
        from: Option<String>,
        to: String,
        reason: String,
        position: &'static str,
    },
    /// The slot's row in `slots` names its new champion (bundle, label).
    Slot {
        index: usize,
        folder: String,
    },
}

impl PitCrew {
    #[must_use]
    pub fn new(settings: Settings) -> PitCrew {
        PitCrew { settings, benches: BTreeMap::new(), fallbacks: BTreeMap::new(), pending: Vec::new() }
    }

    /// Puts `challenger` on slot `index`'s bench; a full bench first retires the challenger with the weakest record
    /// (the lowest t statistic; the newest of equals), whose model id is returned.
    pub fn join(&mut self, index: usize, challenger: Challenger) -> Option<String> {
        let cap = self.settings.bench.max(1);
        let rule = self.settings.promotion;
        let bench = self.benches.entry(index).or_default();
        let mut retired = None;
        if bench.len() >= cap {
            let weakest = bench
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let t = c.verdict(&rule).t;
                    (i, if t.is_nan() { f64::NEG_INFINITY } else { t })
                })
                .min_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(i, _)| i);
            if let Some(i) = weakest {
                retired = Some(bench.remove(i).models.sha256);
            }
        }
        bench.push(challenger);
        retired
    }

    /// The challenger of slot `index` to promote now, if any passes the rule (the largest t of those that do),
    /// taken off the bench with its verdict.
    pub fn promotable(&mut self, index: usize) -> Option<(Challenger, Verdict)> {
        let rule = self.settings.promotion;
        let bench = self.benches.get_mut(&index)?;
        let best = bench
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.verdict(&rule)))
            .filter(|(_, v)| v.promote)
            .max_by(|a, b| a.1.t.total_cmp(&b.1.t))?;
        Some((bench.remove(best.0), best.1))
    }

    /// A bar closed for slot `index` (named `slot`): its fallback runs on it as the champion did, so the rows its
    /// signal's history, a sequence model's window and the MAML model's support hold are those of the market it may
    /// have to take over in, not of the bar it was replaced at. A fallback that fails to run is retired (a row in
    /// `pending`): it could not take over.
    pub fn warm_fallback(&mut self, index: usize, slot: &str, row: &[f64], close: f64) {
        let Some(fallback) = self.fallbacks.get_mut(&index) else { return };
        if let Err(error) = fallback.on_bar(row, close) {
            let failed = self.fallbacks.remove(&index).expect("just run");
            self.pending.push(Row::Role {
                slot: slot.to_owned(),
                model_id: failed.sha256,
                role: "retired",
                detail: Some(format!("failed to run: {error}")),
            });
        }
    }

    /// Every challenger of slot `index`.
    pub fn bench_mut(&mut self, index: usize) -> &mut Vec<Challenger> {
        self.benches.entry(index).or_default()
    }

    /// Whether the bench of slot `index` already holds a model with this id.
    #[must_use]
    pub fn holds(&self, index: usize, model_id: &str) -> bool {
        self.benches.get(&index).is_some_and(|b| b.iter().any(|c| c.models.sha256 == model_id))
    }

    /// The execution of a challenger's leg given its tactic and the touch in price units (`bid`, `ask`, one tick
    /// = 1 unit): the same prices the engine sends.
    #[must_use]
    pub fn execution(tactic: Tactic, side: Side, bid: i64, ask: i64, to_price: impl Fn(i64) -> f64) -> Execution {
        match limit_price(tactic, side, bid, ask) {
            None => Execution::Aggressive,
            Some(units) => Execution::Limit(to_price(units)),
        }
    }
}

/// The limit price (units) of an order with `tactic` on `side` against the touch `bid`/`ask` (units, one tick = 1):
/// `None` for a market order; at the touch; or one tick inside the spread (at the touch when the spread is one tick).
#[must_use]
pub fn limit_price(tactic: Tactic, side: Side, bid: i64, ask: i64) -> Option<i64> {
    let wide = ask - bid > 1;
    match (tactic, side) {
        (Tactic::Aggressive, _) => None,
        (Tactic::PassiveTouch, Side::Buy) => Some(bid),
        (Tactic::PassiveTouch, Side::Sell) => Some(ask),
        (Tactic::PassiveInside, Side::Buy) => Some(if wide { bid + 1 } else { bid }),
        (Tactic::PassiveInside, Side::Sell) => Some(if wide { ask - 1 } else { ask }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use apex_infer::{MANIFEST, Manifest};
    use proptest::prelude::*;

    use super::*;

    /// A GP-only bundle trading BTCUSDT on feature `clv` with `root` as its tree, in a fresh folder.
    pub(crate) fn gp_bundle(tag: &str, root: &str) -> crate::Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = crate::scratch(&format!("pitcrew-{tag}-{n}"));
        let tree = format!(r#"{{"schema": "apex.gp_tree", "version": 1, "features": ["clv"], "root": {root}}}"#);
        std::fs::write(dir.join("signal.gp.json"), &tree).unwrap();
        let manifest = Manifest::single_gp("BTCUSDT", "a", "test", vec!["clv".into()], &tree);
        std::fs::write(dir.join(MANIFEST), manifest.to_json()).unwrap();
        dir
    }

    /// Signal `value` whatever the bar.
    fn constant(value: f64) -> String {
        format!(
            r#"{{"op": "add", "args": [{{"op": "mul", "args": [{{"feature": "clv"}}, {{"const": 0.0}}]}}, {{"const": {value:?}}}]}}"#
        )
    }

    const LOTS: Instrument =
        Instrument { tick: 0.1, qty_step: 0.001, min_qty: 0.001, max_qty: 100.0, min_notional: 0.0 };

    fn challenger(signal: f64, capital: f64) -> Challenger {
        let dir = gp_bundle("challenger", &constant(signal));
        let models =
            SlotModels::load("btc-a", &dir, "BTCUSDT", &["clv".to_owned()], &crate::models::EngineBars::default())
                .unwrap();
        Challenger::new("btc-a", models, dir.to_path_buf(), capital, RuleParams::default(), LOTS).unwrap()
    }

    fn bar(close: f64) -> Bar {
        Bar { open: close, high: close + 50.0, low: close - 50.0, close }
    }

    const FEES: Fees = Fees { taker: 0.00055, maker: 0.0002 };
    const TOUCH: Touch = Touch::top(99_999.0, 100_001.0);

    #[test]
    fn the_t_test_matches_a_worked_example() {
        let rule = Promotion { min_decisions: 5, alpha: 0.05 };
        let v = judge(&[1.0, 2.0, 3.0, 4.0, 5.0], &rule);
        // mean 3, sd √2.5, t = 3 / (√2.5 / √5) = 4.2426; the first look spends alpha / 2: t_{0.975, 4} = 2.7764
        // (tables).
        assert!((v.t - 4.242_640_687).abs() < 1e-6, "{v:?}");
        assert!((v.critical - 2.776_445_105).abs() < 1e-6, "{v:?}");
        // The third look (n = 7) spends alpha / 12: t_{1 - 0.05/12, 6} = 3.862990615 (scipy.stats.t.ppf).
        let third = judge(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], &rule);
        assert!((third.critical - 3.862_990_615).abs() < 1e-6, "{third:?}");
        assert!(v.promote);
        assert!(!judge(&[1.0, 2.0, 3.0, 4.0], &rule).promote, "fewer than min_decisions");
        // t = 0.2 / (1.0954 / √5) = 0.408 < 2.13: a positive mean that is noise is not enough.
        assert!(!judge(&[1.0, -1.0, 1.0, -1.0, 1.0], &rule).promote);
        assert!(judge(&[0.5; 5], &rule).promote, "always better by the same amount");
        assert!(!judge(&[0.0; 5], &rule).promote && !judge(&[-0.5; 5], &rule).promote);
        assert!(!judge(&[1.0, f64::NAN, 1.0, 1.0, 1.0], &rule).promote);
    }

    /// The share of `runs` challengers no better than the champion (differences i.i.d. normal, mean 0) promoted at
    /// some look within `bars` bars, by `judge` or, for `naive`, by the same t-test at the full `alpha` every look.
    fn null_promotions(runs: u64, bars: usize, rule: &Promotion, naive: bool) -> f64 {
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut promoted = 0;
        for seed in 0..runs {
            let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
            let diffs: Vec<f64> = (0..bars).map(|_| rand_distr::StandardNormal.sample(&mut rng)).collect();
            let passes = |n: usize| {
                let v = judge(&diffs[..n], rule);
                let critical = StudentsT::new(0.0, 1.0, n as f64 - 1.0).unwrap().inverse_cdf(1.0 - rule.alpha);
                if naive { n >= rule.min_decisions && v.mean > 0.0 && v.t > critical } else { v.promote }
            };
            promoted += u32::from((rule.min_decisions..=bars).any(passes));
        }
        f64::from(promoted) / runs as f64
    }

    #[test]
    fn looking_every_bar_keeps_the_false_promotion_rate_within_alpha() {
        let rule = Promotion { min_decisions: 10, alpha: 0.05 };
        let spent = null_promotions(400, 150, &rule, false);
        let naive = null_promotions(400, 150, &rule, true);
        // 400 runs: a rate of 0.05 has a standard error of 0.011.
        assert!(spent <= 0.075, "alpha spending: {spent}");
        assert!(naive >= 0.2, "the same test at the full alpha on every look: {naive}");
    }

    proptest! {
        #[test]
        fn a_challenger_never_better_on_any_bar_is_never_promoted(
            diffs in prop::collection::vec(-1.0f64..=0.0, 0..200),
            min in 2usize..50,
            alpha in 0.001f64..0.49,
        ) {
            let rule = Promotion { min_decisions: min, alpha };
            prop_assert!(!judge(&diffs, &rule).promote);
        }

        #[test]
        fn a_clearly_better_challenger_is_promoted(
            noise in prop::collection::vec(-1.0f64..1.0, 60..200),
            edge in 0.5f64..5.0,
        ) {
            // Better by `edge` on every bar, up to noise of at most 1: every difference is positive.
            let diffs: Vec<f64> = noise.iter().map(|e| (edge + e) * 1e-3).collect();
            prop_assert!(judge(&diffs, &Promotion::default()).promote);
        }

        #[test]
        fn the_verdict_ignores_the_scale_and_needs_min_decisions(
            diffs in prop::collection::vec(-1.0f64..1.0, 2..100),
            scale in 1e-6f64..1e3,
            min in 2usize..100,
        ) {
            let rule = Promotion { min_decisions: min, alpha: 0.05 };
            let v = judge(&diffs, &rule);
            let scaled: Vec<f64> = diffs.iter().map(|d| d * scale).collect();
            let w = judge(&scaled, &rule);
            prop_assert!((v.t - w.t).abs() <= 1e-6 * v.t.abs().max(1.0) || v.t == w.t, "{:?} {:?}", v, w);
            if v.promote {
                prop_assert!(diffs.len() >= min && v.mean > 0.0);
            }
        }
    }

    #[test]
    fn a_fallback_sees_every_bar_and_takes_over_as_if_it_had_decided_them() {
        // A signal with history: the mean of clv over the last 3 bars.
        let tree = r#"{"op": "ts_mean", "args": [{"feature": "clv"}, {"window": 3}]}"#;
        let load = |tag: &str| {
            let dir = gp_bundle(tag, tree);
            SlotModels::load("btc-a", &dir, "BTCUSDT", &["clv".to_owned()], &crate::models::EngineBars::default())
                .unwrap()
        };
        let (mut decided, mut crew) = (load("decided"), PitCrew::default());
        crew.fallbacks.insert(0, load("fallback"));
        let mut unfed = load("unfed");
        let clv = [0.9, -0.4, 0.7, 0.1, -0.8, 0.3];
        for (t, &value) in clv.iter().enumerate() {
            let close = 100_000.0 + t as f64;
            let expected = decided.on_bar(&[value], close).unwrap();
            if t < 4 {
                crew.warm_fallback(0, "btc-a", &[value], close);
                crew.warm_fallback(1, "btc-b", &[value], close); // no fallback there: nothing happens
                continue;
            }
            // From bar 4 it decides (it took over): the same signal as the model that decided every bar.
            let fallback = crew.fallbacks.get_mut(&0).unwrap();
            assert_eq!(fallback.on_bar(&[value], close).unwrap(), expected, "bar {t}");
            if t == 4 {
                assert_ne!(unfed.on_bar(&[value], close).unwrap(), expected, "the bars it missed change its signal");
            }
        }
        assert!(crew.pending.is_empty() && crew.fallbacks.len() == 1);
    }

    #[test]
    fn an_aggressive_leg_fills_at_the_touch_with_the_taker_fee() {
        let mut c = challenger(1.0, 1_000.0);
        let (equity, legs) = c.on_bar(&[0.5], &bar(100_000.0), 1_000.0, 1_000.0).unwrap();
        assert_eq!(equity, 1_000.0);
        let leg = legs[0];
        assert_eq!((leg.purpose, leg.side), (Purpose::Entry, Side::Buy));
        c.execute(leg, Execution::Aggressive, Some(TOUCH), &FEES);
        let book = c.core().book();
        assert_eq!(book.position, leg.qty);
        assert!((book.avg_price - TOUCH.ask).abs() < 1e-6, "bought at the ask");
        assert!((book.cash() - (1_000.0 - FEES.taker * leg.qty * TOUCH.ask)).abs() < 1e-9);
        // Its bracket acts on the tape: a print through the stop sells at the bid.
        let stop = c.core().bracket().unwrap().stop;
        c.on_trade(stop + 1.0, Some(TOUCH), &FEES);
        assert_eq!(c.core().book().position, leg.qty);
        c.on_trade(stop - 1.0, Some(TOUCH), &FEES);
        let book = c.core().book();
        assert_eq!(book.position, 0.0);
        let fees = FEES.taker * leg.qty * (TOUCH.ask + TOUCH.bid);
        assert!((book.cash() - (1_000.0 + leg.qty * (TOUCH.bid - TOUCH.ask) - fees)).abs() < 1e-9);
        // Blind (no touch): nothing fills.
        let mut blind = challenger(-1.0, 1_000.0);
        let (_, legs) = blind.on_bar(&[0.5], &bar(100_000.0), 1_000.0, 1_000.0).unwrap();
        blind.execute(legs[0], Execution::Aggressive, None, &FEES);
        assert_eq!(blind.core().book().position, 0.0);
    }

    #[test]
    fn a_market_order_larger_than_the_touch_walks_the_book() {
        let touch = Touch::from_levels(&[(99.0, 1.0), (98.0, 2.0)], &[(101.0, 1.0), (102.0, 2.0), (104.0, 1.0)]);
        let touch = touch.unwrap();
        assert_eq!((touch.bid, touch.ask), (99.0, 101.0));
        assert_eq!(touch.sweep(Side::Buy, 0.5), 101.0);
        assert!((touch.sweep(Side::Buy, 2.0) - 101.5).abs() < 1e-12, "1 at 101, 1 at 102");
        assert!((touch.sweep(Side::Buy, 4.0) - (101.0 + 204.0 + 104.0) / 4.0).abs() < 1e-12);
        // Beyond the levels seen, the rest trades at the last one's price.
        assert!((touch.sweep(Side::Sell, 5.0) - (99.0 + 196.0 + 2.0 * 98.0) / 5.0).abs() < 1e-12);
        assert_eq!(Touch::top(99.0, 101.0).sweep(Side::Sell, 1e9), 99.0, "unknown depth: all at the touch");
        assert!(Touch::from_levels(&[], &[(101.0, 1.0)]).is_none());
        // A challenger's fill pays it, fees on the average price.
        let mut c = challenger(1.0, 1_000_000.0);
        let leg = Leg { purpose: Purpose::Entry, side: Side::Buy, qty: 2.0, stop: None, take: None };
        c.execute(leg, Execution::Aggressive, Some(touch), &FEES);
        assert!((c.core().book().avg_price - 101.5).abs() < 1e-9);
        assert!((c.core().book().cash() - (1_000_000.0 - FEES.taker * 2.0 * 101.5)).abs() < 1e-6);
    }

    #[test]
    fn a_passive_leg_fills_only_when_a_print_trades_through_and_is_cancelled_at_the_next_bar() {
        let mut c = challenger(1.0, 1_000.0);
        let (_, legs) = c.on_bar(&[0.5], &bar(100_000.0), 1_000.0, 1_000.0).unwrap();
        let leg = legs[0];
        c.execute(leg, Execution::Limit(99_999.0), Some(TOUCH), &FEES);
        c.on_trade(99_999.0, Some(TOUCH), &FEES);
        c.on_trade(100_050.0, Some(TOUCH), &FEES);
        assert_eq!((c.core().book().position, c.resting()), (0.0, 1), "a print at the price is not through it");
        c.on_trade(99_998.9, Some(TOUCH), &FEES);
        let book = c.core().book();
        assert_eq!((book.position, c.resting()), (leg.qty, 0));
        assert!((book.avg_price - 99_999.0).abs() < 1e-6, "filled at its limit price");
        assert!((book.cash() - (1_000.0 - FEES.maker * leg.qty * 99_999.0)).abs() < 1e-9);
        // A sell rests above and is cancelled unfilled by the next bar.
        let mut s = challenger(-1.0, 1_000.0);
        let (_, legs) = s.on_bar(&[0.5], &bar(100_000.0), 1_000.0, 1_000.0).unwrap();
        s.execute(legs[0], Execution::Limit(100_001.0), Some(TOUCH), &FEES);
        s.on_trade(100_001.0, Some(TOUCH), &FEES);
        assert_eq!(s.resting(), 1);
        let _ = s.on_bar(&[0.5], &bar(100_000.0), 1_000.0, 1_000.0).unwrap();
        s.on_trade(200_000.0, Some(TOUCH), &FEES);
        assert_eq!(s.core().book().position, 0.0, "cancelled at the next bar");
    }

    #[test]
    fn the_record_pairs_log_growth_and_leaves_out_capital_the_cwo_moved() {
        let mut c = challenger(0.0, 1_000.0);
        let closes = [100.0, 101.0, 102.0];
        // The champion grows 1 % a bar; on the third bar the CWO also adds 500 of capital.
        let champion = [(1_000.0, 1_000.0), (1_010.0, 1_000.0), (1_520.1, 1_500.0)];
        for (close, (equity, capital)) in closes.iter().zip(champion) {
            c.on_bar(&[0.5], &bar(*close), equity, capital).unwrap();
        }
        assert_eq!(c.decisions(), 3);
        let expected = -(1.01_f64.ln());
        assert_eq!(c.diffs().len(), 2);
        for d in c.diffs() {
            assert!((d - expected).abs() < 1e-12, "{:?}", c.diffs());
        }
    }

    #[test]
    fn a_full_bench_retires_its_weakest_and_the_best_passing_challenger_is_promoted() {
        let mut crew = PitCrew::new(Settings {
            bench: 2,
            promotion: Promotion { min_decisions: 3, alpha: 0.05 },
            ..Settings::default()
        });
        let mut strong = challenger(0.0, 1_000.0);
        let mut weak = challenger(0.0, 1_000.0);
        // The champion loses 1 % a bar: a flat challenger gains on every bar.
        for (i, equity) in [1_000.0, 990.0, 980.1, 970.3].iter().enumerate() {
            strong.on_bar(&[0.5], &bar(100.0), *equity, 1_000.0).unwrap();
            if i < 2 {
                weak.on_bar(&[0.5], &bar(100.0), *equity, 1_000.0).unwrap();
            }
        }
        assert!(strong.verdict(&crew.settings.promotion).promote);
        assert!(!weak.verdict(&crew.settings.promotion).promote, "too few decisions");
        let strong_id = strong.models.sha256.clone();
        assert_eq!(crew.join(0, weak), None);
        assert_eq!(crew.join(0, strong), None);
        assert!(crew.holds(0, &strong_id));
        let third = challenger(0.0, 1_000.0);
        let retired = crew.join(0, third).expect("the bench was full");
        assert_eq!(crew.benches[&0].len(), 2);
        assert!(crew.holds(0, &strong_id), "the weakest went, not {retired}");
        let (promoted, verdict) = crew.promotable(0).expect("one passes");
        assert_eq!(promoted.models.sha256, strong_id);
        assert!(verdict.promote && verdict.n == 3);
        assert!(crew.promotable(0).is_none());
        assert_eq!(crew.benches[&0].len(), 1);
    }

    #[test]
    fn limit_prices_are_the_engines() {
        assert_eq!(limit_price(Tactic::Aggressive, Side::Buy, 10, 14), None);
        assert_eq!(limit_price(Tactic::PassiveTouch, Side::Buy, 10, 14), Some(10));
        assert_eq!(limit_price(Tactic::PassiveTouch, Side::Sell, 10, 14), Some(14));
        assert_eq!(limit_price(Tactic::PassiveInside, Side::Buy, 10, 14), Some(11));
        assert_eq!(limit_price(Tactic::PassiveInside, Side::Sell, 10, 14), Some(13));
        assert_eq!(limit_price(Tactic::PassiveInside, Side::Sell, 10, 11), Some(11));
    }
}
