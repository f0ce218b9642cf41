//! The execution environment of the IEL: a parent order worked inside the DSG-populated market with one tactic per
//! decision step (take liquidity, post at the touch, post inside the spread, wait), rewarded by implementation
//! shortfall including fees; and a batch of such environments stepped in parallel.
//!
//! An episode: the market runs `warmup_s` alone, then the parent order (side, size in lots) arrives and must be done
//! within `horizon_s`, with a decision every `interval_s`. Each decision reaches the venue after `latency_ms`; there
//! the previous resting child is cancelled (or kept, when the new passive child would rest at the same price: the
//! queue position is worth keeping) and the new child placed:
//!
//! - `aggressive`: a market order for the scheduled slice, `ceil(remaining / steps left)` lots (always-aggressive is
//!   TWAP with market orders);
//! - `passive_touch`: a PostOnly order for all the remaining lots at the own-side best price seen at decision time;
//! - `passive_inside`: the same one tick better when the spread is wider than one tick (else at the touch);
//! - `wait`: nothing rests and nothing is sent.
//!
//! At the horizon any remainder is bought or sold with market orders (retried every 100 ms while the book is empty
//! on the other side; what still cannot fill is charged at the protective band price, so waiting never pays).
//!
//! Implementation shortfall in basis points of the arrival notional: `(−cash − position × arrival_mid) / (size ×
//! arrival_mid) × 1e4` over the strategy account, whose cash already has the engine's maker and taker fees deducted;
//! positive is a cost, for either side. The reward of a step is minus its increment, so an episode's rewards sum to
//! minus its shortfall.
//!
//! The observation is apex-features' execution observation ([`apex_features::execution::observation`]) of the
//! matching engine's touch, the market's mid and its mid volatility: the live engine builds the same vector from its
//! book.

use apex_core::{Bounds, Side};
use apex_features::execution::{ParentState, TopOfBook, observation};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dsg::Dsg;
use crate::market::{Market, STRATEGY_ACCOUNT, SimConfig};
use crate::{NewOrder, SimError, TimeInForce};

pub use apex_features::execution::{OBSERVATION_LEN, OBSERVATION_NAMES, Observation};

/// Names of the actions, by index.
pub const ACTION_NAMES: [&str; 4] = ["aggressive", "passive_touch", "passive_inside", "wait"];

/// Forced finish: market orders retried this many times, this far apart, while the other side of the book is empty.
const FORCED_ATTEMPTS: i64 = 20;
const FORCED_RETRY_US: i64 = 100_000;

/// The tactic of one decision step (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Aggressive,
    PassiveTouch,
    PassiveInside,
    Wait,
}

impl Action {
    /// The action with index `index` in [`ACTION_NAMES`].
    #[must_use]
    pub fn from_index(index: i64) -> Option<Action> {
        match index {
            0 => Some(Action::Aggressive),
            1 => Some(Action::PassiveTouch),
            2 => Some(Action::PassiveInside),
            3 => Some(Action::Wait),
            _ => None,
        }
    }
}

/// The longest execution horizon of an episode, seconds (its table row's upper bound).
pub const MAX_HORIZON_S: f64 = 3_600.0;
/// The shortest time between two decisions of an episode, seconds (its table row's lower bound).
pub const MIN_INTERVAL_S: f64 = 0.1;

apex_core::param_table! {
    /// The parent order and the decision grid of every episode. The one definition of their defaults and bounds:
    /// `_core.ExecEnv` takes its keywords over these defaults, and `apexctl train iel` reads the table through
    /// `_core.param_table("execution")` for its options' defaults and ranges.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub struct ExecConfig {
        size_lots: i64 = 2000, Bounds::closed(1.0, 1e9),
            "Parent size in lots of the instrument.";
        horizon_s: f64 = 30.0, Bounds::open_closed(0.0, MAX_HORIZON_S),
            "Time allowed to complete the parent, seconds.";
        interval_s: f64 = 3.0, Bounds::closed(MIN_INTERVAL_S, MAX_HORIZON_S),
            "Time between decisions, seconds (at most the horizon; the last interval is cut at the horizon).";
        warmup_s: f64 = 15.0, Bounds::closed(0.0, 86_400.0),
            "The market runs alone this long before the parent arrives (books fill, the volatility estimate warms up).";
        latency_ms: f64 = 20.0, Bounds::closed(0.0, 10_000.0),
            "Order-entry latency of the execution agent, milliseconds.";
    }
    extra {
        #[serde(skip, default = "buy")]
        side: Side = Side::Buy, "The parent's side.";
    }
}

fn buy() -> Side {
    Side::Buy
}

impl ExecConfig {
    /// A parent order with the table's warm-up and latency.
    #[must_use]
    pub fn new(side: Side, size_lots: i64, horizon_s: f64, interval_s: f64) -> ExecConfig {
        ExecConfig { side, size_lots, horizon_s, interval_s, ..ExecConfig::default() }
    }

    /// Decisions per episode.
    #[must_use]
    pub fn steps(&self) -> usize {
        (self.horizon_s / self.interval_s - 1e-9).ceil().max(1.0) as usize
    }

    fn validate(&self) -> Result<(), SimError> {
        let bad = |what: String| Err(SimError::Config(what));
        if let Some((name, value, why)) = self.out_of_bounds() {
            return bad(format!("{name} {why}, got {value}"));
        }
        if self.interval_s > self.horizon_s {
            return bad(format!(
                "decision interval {} s is longer than the horizon {} s",
                self.interval_s, self.horizon_s
            ));
        }
        if self.horizon_s / self.interval_s > 100_000.0 {
            return bad("more than 100000 decisions per episode; use a longer interval".to_owned());
        }
        Ok(())
    }
}

/// Where an episode stands (totals so far; final once `done`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpisodeInfo {
    /// Mid price when the parent arrived, quote units.
    pub arrival_mid: f64,
    pub executed_lots: i64,
    pub remaining_lots: i64,
    /// Lots filled as maker (resting children) and as taker (market orders, forced finish included).
    pub maker_lots: i64,
    pub taker_lots: i64,
    /// Lots the forced finish at the horizon executed.
    pub forced_lots: i64,
    /// Lots the forced finish could not fill (no liquidity), charged at the band price.
    pub unfilled_lots: i64,
    /// Fees paid, quote units (maker and taker).
    pub fees: f64,
    /// Implementation shortfall so far, basis points of the arrival notional (positive = cost).
    pub shortfall_bps: f64,
    /// Decisions taken so far.
    pub step: usize,
    pub done: bool,
}

/// What one step returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepResult {
    pub observation: Observation,
    pub reward: f64,
    pub done: bool,
    pub info: EpisodeInfo,
}

/// One execution environment: a market plus a parent order, reset per seed.
pub struct ExecEnv {
    dsg: Dsg,
    template: SimConfig,
    config: ExecConfig,
    market: Option<Market>,
    info: EpisodeInfo,
    /// Strategy fills already counted into maker/taker lots.
    fills_seen: usize,
}

impl ExecEnv {
    /// An environment on the market `template` describes (instrument, cadences; its seed and horizon are replaced
    /// per episode).
    ///
    /// # Errors
    /// `SimError::Config` for an invalid execution config, or whatever the market finds wrong with the template.
    pub fn new(dsg: Dsg, template: &SimConfig, config: ExecConfig) -> Result<ExecEnv, SimError> {
        config.validate()?;
        let mut template = template.clone();
        template.record_market = false;
        template.record_all_fills = false;
        let tail_s = config.latency_ms / 1e3 + (FORCED_ATTEMPTS * FORCED_RETRY_US) as f64 / 1e6 + 2.0;
        template.horizon_s = config.warmup_s + config.horizon_s + tail_s;
        // Validates the template once, so `reset` only fails for reasons a seed cannot cause.
        Market::new(&dsg, &template)?;
        Ok(ExecEnv { dsg, template, config, market: None, info: EpisodeInfo::default(), fills_seen: 0 })
    }

    /// The execution settings.
    #[must_use]
    pub fn config(&self) -> &ExecConfig {
        &self.config
    }

    /// Starts an episode on the market of `seed`: warm-up, then the parent's arrival. Returns the first observation.
    ///
    /// # Errors
    /// `SimError` if the market cannot be built (not expected after `new` succeeded).
    pub fn reset(&mut self, seed: u64) -> Result<Observation, SimError> {
        let mut sim = self.template.clone();
        sim.seed = seed;
        let mut market = Market::new(&self.dsg, &sim)?;
        market.start(None);
        market.advance_until(self.warmup_us(), None);
        self.info = EpisodeInfo {
            arrival_mid: market.mid_price(),
            remaining_lots: self.config.size_lots,
            ..EpisodeInfo::default()
        };
        self.fills_seen = 0;
        self.market = Some(market);
        Ok(self.observe())
    }

    /// Takes one decision and advances the market to the next one (and through the forced finish after the last).
    ///
    /// # Errors
    /// `SimError::Config` when the environment was never reset or its episode is over.
    pub fn step(&mut self, action: Action) -> Result<StepResult, SimError> {
        if self.market.is_none() || self.info.done {
            return Err(SimError::Config("the execution episode is over (or never started); reset it first".into()));
        }
        let steps = self.config.steps();
        let k = self.info.step;
        let latency_us = self.latency_us();
        let before = self.info.shortfall_bps;
        let (side, lot) = (self.config.side, self.lot());
        let next_us = self.warmup_us() + (self.interval_us() * (k as i64 + 1)).min(self.horizon_us());
        let market = self.market.as_mut().expect("checked above");
        let price = passive_price(market, side, action);
        let decided_us = market.now_us();
        market.advance_until(decided_us + latency_us, None);
        let remaining = remaining_lots(market, &self.config, lot);
        match action {
            Action::Aggressive => {
                market.cancel_strategy_orders();
                let slice = (remaining + (steps - k) as i64 - 1) / (steps - k) as i64;
                if slice > 0 {
                    market.submit_strategy_order(&NewOrder::market(STRATEGY_ACCOUNT, side, slice * lot));
                }
            }
            Action::PassiveTouch | Action::PassiveInside => match price {
                Some(price) if remaining > 0 => {
                    let resting = market.strategy_orders();
                    let keep = resting.len() == 1 && resting[0].1 * market.engine().spec().tick == price;
                    if !keep {
                        market.cancel_strategy_orders();
                        let order =
                            NewOrder::limit(STRATEGY_ACCOUNT, side, price, remaining * lot, TimeInForce::PostOnly);
                        market.submit_strategy_order(&order);
                    }
                }
                _ => market.cancel_strategy_orders(),
            },
            Action::Wait => market.cancel_strategy_orders(),
        }
        market.advance_until(next_us, None);
        self.info.step += 1;
        if self.info.step == steps {
            self.forced_finish();
            self.info.done = true;
        }
        self.account();
        Ok(StepResult {
            observation: self.observe(),
            reward: -(self.info.shortfall_bps - before),
            done: self.info.done,
            info: self.info,
        })
    }

    /// The episode so far.
    #[must_use]
    pub fn info(&self) -> EpisodeInfo {
        self.info
    }

    /// Executes the remainder with market orders at the horizon (after the agent's latency).
    fn forced_finish(&mut self) {
        let (side, lot, latency_us) = (self.config.side, self.lot(), self.latency_us());
        let market = self.market.as_mut().expect("a running episode has a market");
        market.advance_until(market.now_us() + latency_us, None);
        market.cancel_strategy_orders();
        let start = remaining_lots(market, &self.config, lot);
        let mut remaining = start;
        for attempt in 0..FORCED_ATTEMPTS {
            if remaining == 0 {
                break;
            }
            if attempt > 0 {
                market.advance_until(market.now_us() + FORCED_RETRY_US, None);
            }
            market.submit_strategy_order(&NewOrder::market(STRATEGY_ACCOUNT, side, remaining * lot));
            remaining = remaining_lots(market, &self.config, lot);
        }
        self.info.forced_lots = start - remaining;
        self.info.unfilled_lots = remaining;
    }

    /// Updates the totals from the strategy account and its new fills.
    fn account(&mut self) {
        let lot = self.lot();
        let market = self.market.as_ref().expect("a running episode has a market");
        let spec = market.engine().spec();
        let fills = market.strategy_fills();
        let lot_qty = spec.qty_to_f64(lot);
        for i in self.fills_seen..fills.size.len() {
            let lots = (fills.size[i] / lot_qty).round() as i64;
            if fills.maker[i] {
                self.info.maker_lots += lots;
            } else {
                self.info.taker_lots += lots;
            }
        }
        self.fills_seen = fills.size.len();
        let account = market.engine().account(STRATEGY_ACCOUNT);
        let remaining = remaining_lots(market, &self.config, lot);
        self.info.remaining_lots = remaining;
        self.info.executed_lots = self.config.size_lots - remaining;
        self.info.fees = spec.cash_to_f64(account.fees);
        let arrival = self.info.arrival_mid;
        let mut cost = -spec.cash_to_f64(account.cash) - spec.qty_to_f64(account.position) * arrival;
        if self.info.unfilled_lots > 0 {
            // What cannot fill is charged at the protective band price plus the taker fee.
            let band = spec.market_band + spec.taker_fee;
            cost += spec.qty_to_f64(self.info.unfilled_lots * lot) * arrival * band;
        }
        let notional = spec.qty_to_f64(self.config.size_lots * lot) * arrival;
        self.info.shortfall_bps = cost / notional * 1e4;
    }

    fn observe(&self) -> Observation {
        let market = self.market.as_ref().expect("observed after reset");
        let engine = market.engine();
        let top = TopOfBook { bid: engine.best_bid(), ask: engine.best_ask(), price_scale: engine.spec().price_scale };
        let parent = ParentState {
            side: self.config.side,
            size_lots: self.config.size_lots,
            remaining_lots: self.info.remaining_lots,
            steps: self.config.steps(),
            step: self.info.step,
            arrival_mid: self.info.arrival_mid,
            resting_child: !market.strategy_orders().is_empty(),
            lot_units: self.lot(),
        };
        observation(&parent, &top, market.mid_price(), market.recent_vol_bps())
    }

    fn lot(&self) -> i64 {
        self.template.spec.lot.max(self.template.spec.min_qty)
    }

    fn warmup_us(&self) -> i64 {
        (self.config.warmup_s * 1e6).round() as i64
    }

    fn interval_us(&self) -> i64 {
        (self.config.interval_s * 1e6).round() as i64
    }

    fn horizon_us(&self) -> i64 {
        (self.config.horizon_s * 1e6).round() as i64
    }

    fn latency_us(&self) -> i64 {
        (self.config.latency_ms * 1e3).round() as i64
    }
}

/// Lots of the parent not executed yet (the strategy account trades only for the parent).
fn remaining_lots(market: &Market, config: &ExecConfig, lot: i64) -> i64 {
    let position = market.engine().account(STRATEGY_ACCOUNT).position;
    config.size_lots - i64::from(config.side.sign()) * position / lot
}

/// The limit price (price units) of a passive child, from the book at decision time.
fn passive_price(market: &Market, side: Side, action: Action) -> Option<i64> {
    let engine = market.engine();
    let tick = engine.spec().tick;
    let (bid, ask) = (engine.best_bid().map(|l| l.price), engine.best_ask().map(|l| l.price));
    let (own, opposite, better) = match side {
        Side::Buy => (bid, ask, tick),
        Side::Sell => (ask, bid, -tick),
    };
    let touch = own.or_else(|| opposite.map(|p| p - better)).filter(|&p| p > 0)?;
    match action {
        Action::PassiveTouch => Some(touch),
        Action::PassiveInside => match opposite {
            Some(opposite) if (opposite - touch).abs() > tick => Some(touch + better),
            _ => Some(touch),
        },
        Action::Aggressive | Action::Wait => None,
    }
}

/// `n` execution environments stepped together, in parallel with rayon (or one after another, for comparison).
pub struct ExecBatch {
    envs: Vec<ExecEnv>,
    /// Step the environments on the rayon pool (true) or sequentially on the calling thread.
    pub parallel: bool,
}

impl ExecBatch {
    /// `n` environments of the same market and parent order.
    ///
    /// # Errors
    /// As [`ExecEnv::new`]; `SimError::Config` for `n == 0`.
    pub fn new(dsg: &Dsg, template: &SimConfig, config: &ExecConfig, n: usize) -> Result<ExecBatch, SimError> {
        if n == 0 {
            return Err(SimError::Config("an execution batch needs at least one environment".to_owned()));
        }
        let envs = (0..n).map(|_| ExecEnv::new(dsg.clone(), template, config.clone())).collect::<Result<_, _>>()?;
        Ok(ExecBatch { envs, parallel: true })
    }

    /// Number of environments.
    #[must_use]
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// The execution settings shared by every environment.
    #[must_use]
    pub fn config(&self) -> &ExecConfig {
        self.envs[0].config()
    }

    /// Resets environment `i` on `seeds[i]`; returns the first observations in environment order.
    ///
    /// # Errors
    /// `SimError::Config` when the number of seeds differs from the number of environments.
    pub fn reset(&mut self, seeds: &[u64]) -> Result<Vec<Observation>, SimError> {
        if seeds.len() != self.envs.len() {
            return Err(SimError::Config(format!("{} seeds for {} environments", seeds.len(), self.envs.len())));
        }
        if self.parallel {
            self.envs.par_iter_mut().zip(seeds).map(|(env, &seed)| env.reset(seed)).collect()
        } else {
            self.envs.iter_mut().zip(seeds).map(|(env, &seed)| env.reset(seed)).collect()
        }
    }

    /// Steps environment `i` with `actions[i]` (an index into [`ACTION_NAMES`]); results in environment order, the
    /// same whatever the number of threads.
    ///
    /// # Errors
    /// `SimError::Config` for a wrong number of actions, an unknown action, or an environment whose episode is over.
    pub fn step(&mut self, actions: &[i64]) -> Result<Vec<StepResult>, SimError> {
        if actions.len() != self.envs.len() {
            return Err(SimError::Config(format!("{} actions for {} environments", actions.len(), self.envs.len())));
        }
        let parsed = actions
            .iter()
            .map(|&a| {
                Action::from_index(a).ok_or_else(|| {
                    SimError::Config(format!(
                        "unknown action {a}; actions are 0..{}: {ACTION_NAMES:?}",
                        ACTION_NAMES.len()
                    ))
                })
            })
            .collect::<Result<Vec<Action>, SimError>>()?;
        if self.parallel {
            self.envs.par_iter_mut().zip(parsed).map(|(env, action)| env.step(action)).collect()
        } else {
            self.envs.iter_mut().zip(parsed).map(|(env, action)| env.step(action)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::preset;
    use rand::{RngExt, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn env(side: Side, size_lots: i64) -> ExecEnv {
        let (spec, start) = preset("BTCUSDT").unwrap();
        let mut config = ExecConfig::new(side, size_lots, 20.0, 5.0);
        config.warmup_s = 15.0;
        ExecEnv::new(Dsg::default(), &SimConfig::new(spec, start, 0), config).unwrap()
    }

    /// Runs one episode with `policy` (step index -> action); returns every step.
    fn episode(env: &mut ExecEnv, seed: u64, mut policy: impl FnMut(usize) -> Action) -> Vec<StepResult> {
        env.reset(seed).unwrap();
        let mut out = Vec::new();
        for k in 0.. {
            let step = env.step(policy(k)).unwrap();
            out.push(step);
            if step.done {
                break;
            }
        }
        out
    }

    #[test]
    fn executed_plus_remaining_is_the_parent_and_rewards_sum_to_minus_shortfall() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for (seed, side) in [(1, Side::Buy), (2, Side::Sell), (3, Side::Buy), (4, Side::Sell)] {
            let mut env = env(side, 40);
            let steps = episode(&mut env, seed, |_| Action::from_index(rng.random_range(0..4)).unwrap());
            assert_eq!(steps.len(), env.config().steps());
            for step in &steps {
                let info = step.info;
                assert_eq!(info.executed_lots + info.remaining_lots, 40);
                assert!(info.remaining_lots >= 0);
                assert!(step.observation.iter().all(|v| v.is_finite()), "{:?}", step.observation);
            }
            let last = steps.last().unwrap().info;
            assert_eq!((last.remaining_lots, last.unfilled_lots), (0, 0), "the forced finish completes the parent");
            assert_eq!(last.maker_lots + last.taker_lots, 40);
            let total: f64 = steps.iter().map(|s| s.reward).sum();
            assert!((total + last.shortfall_bps).abs() < 1e-9, "{total} vs {}", last.shortfall_bps);
            assert!(env.step(Action::Wait).is_err(), "stepping a finished episode is an error");
        }
    }

    #[test]
    fn waiting_to_the_horizon_executes_everything_aggressively_at_the_computed_shortfall() {
        for side in [Side::Buy, Side::Sell] {
            let mut env = env(side, 25);
            let steps = episode(&mut env, 11, |_| Action::Wait);
            let info = steps.last().unwrap().info;
            assert_eq!((info.forced_lots, info.taker_lots, info.maker_lots), (25, 25, 0));
            assert!(steps[..steps.len() - 1].iter().all(|s| s.reward == 0.0), "nothing trades before the horizon");
            // The shortfall recomputed from the fills table: side × (price − arrival) × size + fee per fill.
            let market = env.market.as_ref().unwrap();
            let fills = market.strategy_fills();
            let sign = f64::from(side.sign());
            let cost: f64 = (0..fills.size.len())
                .map(|i| sign * (fills.price[i] - info.arrival_mid) * fills.size[i] + fills.fee[i])
                .sum();
            let expected = cost / (0.025 * info.arrival_mid) * 1e4;
            assert!((info.shortfall_bps - expected).abs() < 1e-6, "{} vs {expected}", info.shortfall_bps);
            let taker_fee_bps = market.engine().spec().taker_fee * 1e4;
            assert!(info.shortfall_bps >= taker_fee_bps - 50.0 && info.fees > 0.0);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_episode_and_batches_match_single_envs() {
        let actions = |k: usize| Action::from_index((k % 4) as i64).unwrap();
        let a = episode(&mut env(Side::Buy, 30), 5, actions);
        let b = episode(&mut env(Side::Buy, 30), 5, actions);
        let c = episode(&mut env(Side::Buy, 30), 6, actions);
        assert_eq!(a, b);
        assert_ne!(a, c, "different seeds give different markets");

        let (spec, start) = preset("BTCUSDT").unwrap();
        let mut config = ExecConfig::new(Side::Buy, 30, 20.0, 5.0);
        config.warmup_s = 15.0;
        let mut batch = ExecBatch::new(&Dsg::default(), &SimConfig::new(spec, start, 0), &config, 3).unwrap();
        let first = batch.reset(&[6, 5, 9]).unwrap();
        assert_eq!(first[1], {
            let mut single = env(Side::Buy, 30);
            single.reset(5).unwrap()
        });
        let mut results = Vec::new();
        for k in 0..config.steps() {
            let action = (k % 4) as i64;
            results.push(batch.step(&[action, action, action]).unwrap());
        }
        let column: Vec<StepResult> = results.iter().map(|r| r[1]).collect();
        assert_eq!(column, a);
        assert!(matches!(batch.step(&[9, 0, 0]), Err(SimError::Config(_))));
        assert!(matches!(batch.reset(&[1]), Err(SimError::Config(_))));
    }

    /// The observation as the environment computed it from the matching engine before it came from apex-features.
    fn observation_from_the_engine(env: &ExecEnv) -> Observation {
        let market = env.market.as_ref().unwrap();
        let engine = market.engine();
        let sign = f64::from(env.config.side.sign());
        let steps = env.config.steps();
        let remaining = env.info.remaining_lots;
        let remaining_frac = remaining as f64 / env.config.size_lots as f64;
        let time_left_frac = (steps - env.info.step) as f64 / steps as f64;
        let (bid, ask) = (engine.best_bid(), engine.best_ask());
        let mid = market.mid_price();
        let spread = match (bid, ask) {
            (Some(b), Some(a)) => (engine.spec().price_to_f64(a.price - b.price) / mid * 1e4 / 10.0).min(5.0),
            _ => 5.0,
        };
        let imbalance = match (bid, ask) {
            (Some(b), Some(a)) if b.qty + a.qty > 0 => (b.qty - a.qty) as f64 / (b.qty + a.qty) as f64 * sign,
            _ => 0.0,
        };
        let arrival = env.info.arrival_mid;
        let mid_move = ((mid - arrival) / arrival * 1e4 * sign / 10.0).clamp(-5.0, 5.0);
        let resting = f64::from(u8::from(!market.strategy_orders().is_empty()));
        let vol = (market.recent_vol_bps().unwrap_or(0.0) / 10.0).clamp(0.0, 5.0);
        let opposite = if env.config.side == Side::Buy { ask } else { bid };
        let opposite_lots = opposite.map_or(0, |l| l.qty / env.lot()) as f64;
        let depth = (opposite_lots / remaining.max(1) as f64).ln_1p().min(5.0);
        [
            remaining_frac,
            time_left_frac,
            remaining_frac - time_left_frac,
            spread,
            imbalance,
            mid_move,
            resting,
            vol,
            depth,
        ]
    }

    #[test]
    fn the_observation_from_apex_features_equals_the_engines_bit_for_bit() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
        let mut resting = 0;
        for (seed, side, size) in [(1, Side::Buy, 40), (2, Side::Sell, 25), (3, Side::Buy, 400), (4, Side::Sell, 3)] {
            let mut env = env(side, size);
            let first = env.reset(seed).unwrap();
            let bits = |o: &Observation| o.map(f64::to_bits);
            assert_eq!(bits(&first), bits(&observation_from_the_engine(&env)));
            loop {
                let step = env.step(Action::from_index(rng.random_range(0..4)).unwrap()).unwrap();
                assert_eq!(bits(&step.observation), bits(&observation_from_the_engine(&env)), "seed {seed}");
                resting += usize::from(step.observation[6] == 1.0);
                if step.done {
                    break;
                }
            }
            assert!(first[7] > 0.0, "the volatility estimate is warm at arrival");
        }
        assert!(resting > 0, "some decisions saw a resting child");
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let (spec, start) = preset("BTCUSDT").unwrap();
        let template = SimConfig::new(spec, start, 0);
        for config in [
            ExecConfig::new(Side::Buy, 0, 60.0, 5.0),
            ExecConfig::new(Side::Buy, 10, 0.0, 5.0),
            ExecConfig::new(Side::Buy, 10, 60.0, 120.0),
            ExecConfig::new(Side::Buy, 10, f64::NAN, 5.0),
        ] {
            assert!(matches!(ExecEnv::new(Dsg::default(), &template, config), Err(SimError::Config(_))));
        }
        let mut env = env(Side::Buy, 10);
        assert!(env.step(Action::Wait).is_err(), "stepping before reset is an error");
    }
}
