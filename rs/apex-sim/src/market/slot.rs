//! The strategy slot: a strategy's signal traded by the shared rule (`apex-rule`) from an account of the market, as a
//! client of an exchange trades: market orders that carry the rule's bracket as the position's take-profit and
//! stop-loss, fills learned from the account's event stream.
//!
//! At each bar close the slot reads the fills since the last one (entries, exits, triggered stops) into the rule,
//! marks its equity, asks the strategy for its signal and the rule for a decision, and sends what the decision needs
//! after the strategy's latency: a reduce-only market order closing the position, then a market order opening the
//! new one with its take-profit and stop-loss attached (they become the position's once it trades, and the market
//! triggers them on the last traded price).

use apex_core::{AccountId, Side};
use apex_rule::{Decision, Instrument, RuleParams, TradeRule};

use super::{AccountEvent, AccountEventKind, ExternalRequest, Market, SimConfig, StopSpec, Stops, StrategyReport};
use crate::strategy::{Bar as StrategyBar, Context, Strategy};
use crate::{NewOrder, SimError};

/// The slot's trading logic, apart from the market: the rule, the account's fills read into it, and each decision
/// turned into the requests the account sends. The market drives it at every bar close; a test can drive it with
/// any fills.
#[derive(Debug, Clone)]
pub struct RuleSlot {
    account: AccountId,
    spec: crate::InstrumentSpec,
    rule: TradeRule,
    /// Tags of the slot's orders and stops, numbered in sending order.
    next_tag: u64,
    fills: usize,
}

impl RuleSlot {
    /// A flat slot trading from `account` on `spec` by the rule `params`.
    ///
    /// # Errors
    /// `Config` for rule parameters out of range.
    pub fn new(account: AccountId, spec: &crate::InstrumentSpec, params: RuleParams) -> Result<RuleSlot, SimError> {
        let rule = TradeRule::new(params, rule_instrument(spec))
            .map_err(|e| SimError::Config(format!("trading rule: {e}")))?;
        Ok(RuleSlot { account, spec: spec.clone(), rule, next_tag: 0, fills: 0 })
    }

    /// The rule as the fills so far have left it.
    #[must_use]
    pub fn rule(&self) -> &TradeRule {
        &self.rule
    }

    /// One event of the account's stream: a fill goes to the rule.
    pub fn on_event(&mut self, event: &AccountEvent) {
        if let AccountEventKind::Fill { side, price, qty, fee, .. } = event.kind {
            self.fills += 1;
            let spec = &self.spec;
            self.rule.on_fill(side, spec.qty_to_f64(qty), spec.price_to_f64(price), spec.cash_to_f64(fee));
        }
    }

    /// A bar closed: the rule's decision on `signal` with the slot's `equity`, and the requests that carry it out
    /// given the account's position `held` (quantity units): a reduce-only market order closing the position, then
    /// a market order opening the new one with the bracket attached as take-profit and stop-loss.
    pub fn on_bar_close(
        &mut self,
        bar: &StrategyBar,
        signal: f64,
        equity: f64,
        held: i64,
    ) -> (Decision, Vec<ExternalRequest>) {
        let StrategyBar { open, high, low, close, .. } = *bar;
        let decision = self.rule.on_bar(&apex_rule::Bar { open, high, low, close }, signal, equity, None);
        let mut requests = Vec::new();
        if decision.closes() && held != 0 {
            let side = if held > 0 { Side::Sell } else { Side::Buy };
            let order = NewOrder::market(self.account, side, held.abs()).reduce_only();
            requests.push(ExternalRequest::Submit { tag: self.tag(), order, attach: Stops::default() });
        }
        if let Some(entry) = decision.entry() {
            let spec = &self.spec;
            let lots = (entry.qty / spec.qty_to_f64(spec.lot)).round() as i64;
            let units = |price: f64| (price / spec.price_to_f64(spec.tick)).round() as i64 * spec.tick;
            let order = NewOrder::market(self.account, entry.side, lots * spec.lot);
            let (take, stop) = (units(entry.take), units(entry.stop));
            let attach = Stops {
                take_profit: Some(StopSpec { tag: self.tag(), trigger_price: take }),
                stop_loss: Some(StopSpec { tag: self.tag(), trigger_price: stop }),
            };
            requests.push(ExternalRequest::Submit { tag: self.tag(), order, attach });
        }
        (decision, requests)
    }

    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }
}

/// Accounting of the strategy slot: its account and rule, capital, equity curve, drawdown, time to target, ruin.
#[derive(Clone)]
pub(super) struct StrategyDriver {
    name: String,
    /// The market account the slot trades from (an outside account, so it has an event stream and position stops).
    pub(super) account: AccountId,
    slot: RuleSlot,
    peak: f64,
    max_drawdown: f64,
    time_to_target_s: Option<f64>,
    ruined: bool,
    equity_ts_us: Vec<i64>,
    equity: Vec<f64>,
    decisions: Vec<(i64, Decision)>,
    /// The latest decision, with what the rule decided it from.
    last: Option<DecisionRecord>,
}

/// One decision of the slot: the rule's state and inputs just before it, and the requests it sent. Another signal
/// on the same market state would have sent [`DecisionRecord::requests_for`] instead: a strategy that sends the same
/// requests at every decision moves the market exactly as this one did (the adversarial fitness runs such trees on
/// one market).
#[derive(Debug, Clone)]
pub(crate) struct DecisionRecord {
    /// The bar close the decision was made at.
    pub(crate) ts_us: i64,
    /// The signal the strategy answered, and the requests the slot sent for it.
    pub(crate) signal: f64,
    pub(crate) requests: Vec<ExternalRequest>,
    slot: RuleSlot,
    bar: StrategyBar,
    equity: f64,
    held: i64,
}

impl DecisionRecord {
    /// The requests the slot would have sent at this decision for `signal`.
    pub(crate) fn requests_for(&self, signal: f64) -> Vec<ExternalRequest> {
        self.slot.clone().on_bar_close(&self.bar, signal, self.equity, self.held).1
    }
}

/// The rule's view of an instrument spec: tick, lot and order size limits in quote and base units.
#[must_use]
pub fn rule_instrument(spec: &crate::InstrumentSpec) -> Instrument {
    Instrument {
        tick: spec.price_to_f64(spec.tick),
        qty_step: spec.qty_to_f64(spec.lot),
        min_qty: spec.qty_to_f64(spec.min_qty),
        max_qty: spec.qty_to_f64(spec.max_qty),
        min_notional: 0.0,
    }
}

impl StrategyDriver {
    /// Reports under `name` from now on (a forked market's strategy).
    pub(super) fn rename(&mut self, name: &str) {
        name.clone_into(&mut self.name);
    }

    pub(super) fn new(name: String, account: AccountId, config: &SimConfig) -> StrategyDriver {
        // The market checked the rule's parameters when it was built.
        let slot = RuleSlot::new(account, &config.spec, config.rule.clone()).expect("validated with the market");
        StrategyDriver {
            name,
            account,
            slot,
            peak: config.capital,
            max_drawdown: 0.0,
            time_to_target_s: None,
            ruined: false,
            equity_ts_us: Vec::new(),
            equity: Vec::new(),
            decisions: Vec::new(),
            last: None,
        }
    }

    fn equity(&self, market: &Market, mid: f64) -> f64 {
        let config = &market.config;
        let account = market.engine.account(self.account);
        config.capital + config.spec.cash_to_f64(account.cash) + config.spec.qty_to_f64(account.position) * mid
    }

    fn record(&mut self, ts: i64, equity: f64, config: &SimConfig) {
        self.equity_ts_us.push(ts);
        self.equity.push(equity);
        self.peak = self.peak.max(equity);
        if self.peak > 0.0 {
            self.max_drawdown = self.max_drawdown.max((self.peak - equity) / self.peak);
        }
        if self.time_to_target_s.is_none() && equity >= config.capital * config.target_multiple {
            self.time_to_target_s = Some(ts as f64 / 1e6);
        }
        if equity <= 0.0 {
            self.ruined = true;
        }
    }

    pub(super) fn finish(self, market: &Market, last_mid: f64) -> StrategyReport {
        let config = &market.config;
        let account = market.engine.account(self.account);
        let equity = self.equity(market, last_mid);
        StrategyReport {
            name: self.name,
            pnl: equity - config.capital,
            fees: config.spec.cash_to_f64(account.fees),
            max_drawdown: self.max_drawdown,
            time_to_target_s: self.time_to_target_s,
            ruined: self.ruined,
            n_fills: self.slot.fills,
            equity_ts_us: self.equity_ts_us,
            equity: self.equity,
            decisions: self.decisions,
        }
    }
}

impl Market {
    /// The strategy slot's latest decision (none before the first, or without a strategy).
    pub(crate) fn last_decision(&self) -> Option<&DecisionRecord> {
        self.driver.as_ref()?.last.as_ref()
    }

    /// Opens the slot's account (with the strategy's latency) and its driver.
    pub(super) fn open_slot(&mut self, name: String) -> StrategyDriver {
        let latency_us = ((self.config.strategy_latency_ms * 1e3).round() as i64).max(1);
        let account = self.add_account(latency_us);
        self.strategy_account = account;
        StrategyDriver::new(name, account, &self.config)
    }

    /// A bar closed at `ts`: the slot learns its fills, marks its equity, and trades the rule's decision.
    pub(super) fn decide(&mut self, ts: i64, strategy: &mut dyn Strategy, driver: &mut StrategyDriver) {
        for event in self.outside.take_events_of(driver.account) {
            driver.slot.on_event(&event);
        }
        let mid = self.current_mid_price();
        let equity = driver.equity(self, mid);
        driver.record(ts, equity, &self.config);
        if driver.ruined {
            return;
        }
        // The bar that closed at `ts` reaches the strategy after its latency; deciding now on it and sending with the
        // latency again is equivalent to deciding at ts + latency for a strategy that only looks at bars.
        let held = driver.slot.rule().position();
        let position = f64::from(i8::from(held > 0.0) - i8::from(held < 0.0));
        let signal = strategy.target(&Context { bars: &self.out.bars, position, equity });
        let Some(bar) = self.out.bars.last().copied() else { return };
        let held = self.engine.account(driver.account).position;
        let before = driver.slot.clone();
        let (decision, requests) = driver.slot.on_bar_close(&bar, signal, equity, held);
        driver.last =
            Some(DecisionRecord { ts_us: ts, signal, requests: requests.clone(), slot: before, bar, equity, held });
        if decision != Decision::Hold {
            driver.decisions.push((ts, decision));
        }
        let sent = ts + self.latency_of[driver.account as usize];
        for request in requests {
            self.send_request(sent, driver.account, request).expect("the slot's account is an outside account");
        }
    }
}
