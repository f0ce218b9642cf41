//! The event-driven market: a microsecond clock, agent populations with their latencies, the matching engine, the
//! strategy slot, and the tables a run emits (trades, L2 book messages, bars, fills, per-population PnL).
//!
//! Every agent acts on the market as it was `latency` ago and its orders reach the engine `latency` later, so a
//! reaction always trades against a state that has moved on, as in a real venue.

use std::collections::{BTreeMap, VecDeque};

use apex_core::{BookRows, MessageHead, Side, TradeRows};
use apex_features::execution::RollingVolatility;
use apex_rule::{Decision, RuleParams};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::agents::{self, Intent, Metaorders, OwnOrder, Population, View};
use crate::dsg::Dsg;
use crate::fair_value::{FAIR_VALUE_STEP_US, FairValue};
use crate::strategy::{Bar, Feed, PublicTrade as FeedTrade, Strategy};
use crate::{
    AccountId, BookPublisher, BookTick, EngineBook, Event, InstrumentSpec, L2Update, MatchingEngine, NewOrder,
    SimError, TimeInForce,
};

mod external;
mod queue;
mod slot;

use external::Outside;
pub use external::{
    AccountEvent, AccountEventKind, BookMessage, ExternalRequest, PublicTrade, StopKind, StopSpec, Stops, Tag,
};
use queue::SplitQueue;
pub(crate) use slot::DecisionRecord;
use slot::StrategyDriver;
pub use slot::{RuleSlot, rule_instrument};

const US_PER_S: i64 = 1_000_000;
/// Resolution of the mid history agents read trends and volatility from.
const MID_SAMPLE_US: i64 = US_PER_S;
/// Window of the volatility estimate market makers quote with (apex-features' execution module).
const VOL_WINDOW_SAMPLES: usize = apex_features::execution::VOL_WINDOW_SAMPLES;
/// Mid samples per minute, for that volatility estimate.
const SAMPLES_PER_MINUTE: f64 = 60.0 * US_PER_S as f64 / MID_SAMPLE_US as f64;
/// How far back (in mid samples) an agent looks for the last sample taken while both sides of the book existed.
const SAMPLED_MID_LOOKBACK: usize = 60;
/// Bars an open-ended market keeps for its strategy slot (two days of minutes); a bounded run keeps them all.
const OPEN_BAR_WINDOW: usize = 2 * 1440;
/// The strategy account; agents are numbered from 1.
pub const STRATEGY_ACCOUNT: AccountId = 0;

/// How one simulation run is set up (besides the DSG).
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub spec: InstrumentSpec,
    /// Starting price in quote units (rounded to the tick).
    pub start_price: f64,
    /// Simulated time in seconds.
    pub horizon_s: f64,
    pub seed: u64,
    /// Depth of the published L2 stream (`orderbook.{depth}`) and its cadence in milliseconds.
    pub book_depth: usize,
    pub book_cadence_ms: i64,
    /// Bar length of the `bars` table and of the strategy's decisions, in seconds.
    pub bar_s: i64,
    /// Keep the fills of every account (large); the strategy's fills are always kept.
    pub record_all_fills: bool,
    /// Emit the trades/book/bars tables (off for fitness evaluation, where only the strategy report matters).
    pub record_market: bool,
    /// Hard cap on processed events: a run that reaches it stops early and says so (`SimOutput::truncated`).
    pub max_events: u64,
    /// The strategy's capital in quote units, latency, and the equity multiple that counts as the target.
    pub capital: f64,
    pub strategy_latency_ms: f64,
    pub target_multiple: f64,
    /// The trading rule the strategy slot trades its signal by (sizing, bracket, leverage cap).
    pub rule: RuleParams,
    /// The UTC time of the run's start (its `ts_us` 0), ns since the Unix epoch: what [`utc_ns`] adds.
    pub epoch_ns: i64,
}

/// Depth of the simulated order-book stream by default (Bybit's level-50 stream): the one default every caller
/// (`_core`, `apexctl fetch --source sim`, the chimera) reads.
pub const DEFAULT_BOOK_DEPTH: usize = 50;
/// Interval of the simulated order-book stream by default, ms (Bybit's level-50 push interval).
pub const DEFAULT_BOOK_CADENCE_MS: i64 = 100;
/// A run starts at 2025-09-01T00:00:00Z unless told otherwise, so the same seed gives the same timestamps.
pub const DEFAULT_EPOCH_NS: i64 = 1_756_684_800_000_000_000;

impl SimConfig {
    /// Defaults: [`crate::batch::RunOptions`]' (1 hour, depth 50 every 100 ms, 1-minute bars, $200 capital), 20 ms
    /// latency, target 2x, the shared rule's defaults (half-Kelly, 3:1 ATR bracket, up to 10x).
    pub fn new(spec: InstrumentSpec, start_price: f64, seed: u64) -> SimConfig {
        let options = crate::batch::RunOptions::default();
        SimConfig {
            spec,
            start_price,
            horizon_s: options.hours * 3600.0,
            seed,
            book_depth: options.book_depth,
            book_cadence_ms: options.book_cadence_ms,
            bar_s: options.bar_seconds,
            record_all_fills: false,
            record_market: true,
            max_events: options.max_events,
            capital: options.capital,
            strategy_latency_ms: 20.0,
            target_multiple: 2.0,
            rule: RuleParams::default(),
            epoch_ns: DEFAULT_EPOCH_NS,
        }
    }
}

/// UTC ns since the Unix epoch of `ts_us` (µs since a run's start at `epoch_ns`): the one conversion from simulator
/// time to the time of every table.
#[must_use]
pub fn utc_ns(epoch_ns: i64, ts_us: i64) -> i64 {
    epoch_ns + ts_us * 1000
}

/// The inverse of [`utc_ns`]: µs since a run's start at `epoch_ns` of a table time `ts` (UTC ns) of that run.
#[must_use]
pub fn run_us(epoch_ns: i64, ts: i64) -> i64 {
    (ts - epoch_ns) / 1000
}

/// Columns of the `fills` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FillRows {
    pub ts_us: Vec<i64>,
    pub account: Vec<u32>,
    pub side: Vec<i8>,
    pub price: Vec<f64>,
    pub size: Vec<f64>,
    pub fee: Vec<f64>,
    pub order_id: Vec<u64>,
    pub maker: Vec<bool>,
}

/// The latent fair value on its own grid (`FAIR_VALUE_STEP_US`) over the run, for diagnostics: how fast prices
/// follow value. `jump` flags the steps that ended with a Poisson jump.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FairValueRows {
    pub ts_us: Vec<i64>,
    pub value: Vec<f64>,
    pub jump: Vec<bool>,
}

/// What one population made or lost, marked to the final mid.
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationPnl {
    pub population: Population,
    pub agents: usize,
    pub pnl: f64,
    pub fees: f64,
    pub volume: f64,
}

/// The strategy's result.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyReport {
    pub name: String,
    pub pnl: f64,
    pub fees: f64,
    pub max_drawdown: f64,
    /// Seconds until equity first reached `target_multiple` × capital.
    pub time_to_target_s: Option<f64>,
    pub ruined: bool,
    pub n_fills: usize,
    /// Equity after each decision: (ts_us, equity).
    pub equity_ts_us: Vec<i64>,
    pub equity: Vec<f64>,
    /// Every decision of the rule other than "hold", with the close time of its bar.
    pub decisions: Vec<(i64, Decision)>,
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOutput {
    /// The public trades, times in UTC ns (as every table has them), symbol code 0, ids numbered from 1.
    pub trades: TradeRows,
    /// The published L2 stream, times in UTC ns, symbol code 0.
    pub book: BookRows,
    pub bars: Vec<Bar>,
    pub fills: FillRows,
    /// The latent fair value (recorded with the market tables).
    pub fair_value: FairValueRows,
    pub populations: Vec<PopulationPnl>,
    pub strategy: Option<StrategyReport>,
    pub events: u64,
    /// Number of trades, counted even when the market tables are not recorded.
    pub trade_count: usize,
    pub truncated: bool,
    /// The run's [`SimConfig::epoch_ns`]: [`utc_ns`] of a `ts_us` is its UTC time.
    pub epoch_ns: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Task {
    /// A Poisson decision of one population (a uniformly chosen member acts).
    Wake(usize),
    /// One market maker's requote timer.
    Requote(AccountId),
    /// The intents of one decision reaching the engine, in order; the index points into the pending-intent store.
    Arrive(usize),
    /// A noise order's lifetime ends: cancel it if it still rests.
    Expire(AccountId, u64),
    /// Publish the L2 stream and sample the mid.
    Publish,
    /// A bar closes; the strategy decides.
    BarClose,
    /// A request of an outside account reaching the engine (index into its pending store).
    ArriveOutside(usize),
    /// Publish one of the added L2 streams.
    Stream(usize),
}

/// A population's members (account ids) and latency.
#[derive(Clone)]
struct Group {
    population: Population,
    accounts: Vec<AccountId>,
    rate_per_agent: f64,
    latency_us: i64,
}

/// One decision's intents on their way to the engine. A decision's intents arrive at the same instant, one after
/// another, with nothing in between (they were scheduled together), so they travel as one task; the buffer is kept
/// for reuse once they have arrived.
#[derive(Clone, Default)]
struct Pending {
    account: AccountId,
    intents: Vec<Intent>,
}

/// Runs one simulation.
///
/// # Errors
/// `SimError` for an invalid instrument spec or configuration.
pub fn run(dsg: &Dsg, config: &SimConfig, strategy: Option<&mut dyn Strategy>) -> Result<SimOutput, SimError> {
    let mut market = Market::new(dsg, config)?;
    market.start(strategy.as_deref().map(Strategy::name));
    let horizon_us = market.horizon_us();
    market.advance_until(horizon_us, strategy);
    Ok(market.finish())
}

/// The market's whole state between events, so a caller can advance it in time piece by piece (`run` is one
/// `advance_until(horizon)`; the execution environment interleaves its own orders between advances).
///
/// A market built with [`Market::open_ended`] has no horizon: its fair value is generated as time needs it and every
/// history it keeps (fair value, top of book, mid samples, bars) is a window that slides with the clock, so it runs
/// for as long as its caller advances it in bounded memory.
///
/// A clone is the same market at the same instant: advanced with the same strategy, it does exactly what the original
/// would ([`Market::fork`] hands it to another strategy).
#[derive(Clone)]
pub struct Market {
    dsg: Dsg,
    config: SimConfig,
    engine: MatchingEngine,
    publisher: BookPublisher,
    rng: Xoshiro256PlusPlus,
    /// Every task; the noise orders' expiry timers (most of the queue, and mostly outliving their orders) wait in a
    /// heap of their own.
    queue: SplitQueue<Task>,
    next_seq: u64,
    groups: Vec<Group>,
    /// Order-entry latency of each account (index = account id).
    latency_of: Vec<i64>,
    population_of: Vec<Population>,
    /// Each account's resting orders as it knows them (index = account id; grown as accounts appear).
    own_orders: Vec<Vec<OwnOrder>>,
    /// The metaorders the noise market flow is splitting.
    metaorders: Metaorders,
    pending: Vec<Pending>,
    /// Indices of `pending` whose intents have arrived, reused (with their buffers) before the store grows.
    free_slots: Vec<usize>,
    /// (ts_us, best bid, best ask) in ticks after every change of the top of book, from the last change an agent
    /// can still see (its latency ago) on.
    top_history: VecDeque<(i64, Option<i64>, Option<i64>)>,
    /// Mid in ticks every `MID_SAMPLE_US` (NaN while a side is empty), and the volatility estimate at each sample;
    /// the window starts at sample number `mids_first` and is as long as the agents look back.
    mids: VecDeque<f64>,
    vols: VecDeque<Option<f64>>,
    /// The estimate's returns over the last window of samples, each computed once.
    volatility: RollingVolatility,
    mids_first: usize,
    mids_window: usize,
    last_finite_mid: Option<f64>,
    /// The longest latency of an agent: how far back in time any agent looks at the book.
    max_agent_latency_us: i64,
    fair_value: FairValue,
    /// End of simulated time (`None`: open-ended).
    horizon: Option<i64>,
    /// Outside accounts and the public streams.
    outside: Outside,
    tick: i64,
    lot: i64,
    events: Vec<Event>,
    out: SimOutput,
    bar: Option<Bar>,
    /// Traded quantity per account (index = account id).
    volume: Vec<f64>,
    /// Accounting of the strategy slot while a strategy trades.
    driver: Option<StrategyDriver>,
    /// The account whose fills the `fills` table always records: the strategy slot's (or the execution
    /// environment's [`STRATEGY_ACCOUNT`]).
    strategy_account: AccountId,
    /// What the strategy of the current `advance_until` receives, and its public trades not yet handed over.
    feed: Feed,
    trade_feed: Vec<FeedTrade>,
    /// Events processed so far (the `max_events` cap counts these).
    processed: u64,
    /// Time of the last processed event, or the last `advance_until` target if later.
    now_us: i64,
}

impl Market {
    /// A market that ends at `config.horizon_s` (the Forge's runs).
    ///
    /// # Errors
    /// `SimError` for an invalid instrument spec or configuration.
    pub fn new(dsg: &Dsg, config: &SimConfig) -> Result<Market, SimError> {
        if !(config.horizon_s.is_finite() && config.horizon_s > 0.0) {
            return Err(SimError::Config(format!(
                "horizon must be a positive number of seconds, got {}",
                config.horizon_s
            )));
        }
        Market::build(dsg, config, Some((config.horizon_s * 1e6) as i64))
    }

    /// A market without a horizon (`config.horizon_s` is ignored): it runs as long as it is advanced, in bounded
    /// memory. Its fair value draws from the seed's generator and its agents from an independent one (the seed's,
    /// jumped 2^128 draws ahead), so the same seed gives the same market whatever the caller's horizon.
    ///
    /// # Errors
    /// `SimError` for an invalid instrument spec or configuration.
    pub fn open_ended(dsg: &Dsg, config: &SimConfig) -> Result<Market, SimError> {
        Market::build(dsg, config, None)
    }

    fn build(dsg: &Dsg, config: &SimConfig, horizon: Option<i64>) -> Result<Market, SimError> {
        let engine = MatchingEngine::new(config.spec.clone())?;
        let publisher = BookPublisher::new(config.book_depth)?;
        if config.book_cadence_ms <= 0 || config.bar_s <= 0 {
            return Err(SimError::Config("book cadence and bar length must be positive".to_owned()));
        }
        config.rule.validate().map_err(|e| SimError::Config(format!("trading rule: {e}")))?;
        let tick = config.spec.tick;
        let tick_price = config.spec.price_to_f64(tick);
        if !(config.start_price.is_finite() && config.start_price > tick_price) {
            return Err(SimError::Config(format!("start price {} must exceed one tick", config.start_price)));
        }
        let seeded = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        let start_ticks = (config.start_price / tick_price).round();
        let lookahead_us = (dsg.inf_lookahead_s * 1e6) as i64;
        // A bounded run precomputed its whole path before the agents drew anything; its agents continue from there.
        let (fair_value, rng) = match horizon {
            Some(horizon_us) => {
                let span = horizon_us + lookahead_us + FAIR_VALUE_STEP_US;
                let agents = FairValue::rng_after(dsg, start_ticks, span, seeded.clone());
                (FairValue::new(dsg, start_ticks, Some(span), seeded, config.record_market), agents)
            }
            None => {
                let mut agents = seeded.clone();
                agents.jump();
                (FairValue::new(dsg, start_ticks, None, seeded, false), agents)
            }
        };

        let mut groups = Vec::new();
        // Index 0 is the strategy account.
        let mut latency_of = vec![0];
        let mut population_of = vec![Population::Noise]; // index 0 is the strategy account, never looked up
        let mut next_account: AccountId = 1;
        for population in Population::ALL {
            let (count, rate, latency_ms) = match population {
                Population::Noise => {
                    (dsg.noise_agents, dsg.noise_limit_rate + dsg.noise_market_rate, dsg.noise_latency_ms)
                }
                Population::MarketMaker => (dsg.mm_agents, 1e3 / dsg.mm_refresh_ms, dsg.mm_latency_ms),
                Population::Momentum => (dsg.mom_agents, dsg.mom_rate, dsg.mom_latency_ms),
                Population::Fundamentalist => (dsg.fund_agents, dsg.fund_rate, dsg.fund_latency_ms),
                Population::Informed => (dsg.inf_agents, dsg.inf_rate, dsg.inf_latency_ms),
            };
            let latency_us = ((latency_ms * 1e3).round() as i64).max(1);
            let accounts: Vec<AccountId> = (0..Dsg::count(count))
                .map(|_| {
                    let id = next_account;
                    next_account += 1;
                    latency_of.push(latency_us);
                    population_of.push(population);
                    id
                })
                .collect();
            groups.push(Group { population, accounts, rate_per_agent: rate, latency_us });
        }
        let max_agent_latency_us = groups.iter().map(|g| g.latency_us).max().unwrap_or(1);
        latency_of[STRATEGY_ACCOUNT as usize] = ((config.strategy_latency_ms * 1e3).round() as i64).max(1);
        // Samples an agent can reach back to: its latency, the momentum lookback, the volatility window or the
        // sampled-mid lookback, and slack.
        let lookback_samples = ((dsg.mom_lookback_s * 1e6) as i64 / MID_SAMPLE_US).max(0) as usize;
        let mids_window = lookback_samples
            + VOL_WINDOW_SAMPLES.max(SAMPLED_MID_LOOKBACK)
            + (max_agent_latency_us / MID_SAMPLE_US) as usize
            + 8;

        let lot = config.spec.lot.max(config.spec.min_qty);
        Ok(Market {
            dsg: dsg.clone(),
            config: config.clone(),
            engine,
            publisher,
            rng,
            queue: SplitQueue::new(),
            next_seq: 0,
            groups,
            latency_of,
            population_of,
            own_orders: vec![Vec::new(); next_account as usize],
            metaorders: Metaorders::default(),
            pending: Vec::new(),
            free_slots: Vec::new(),
            top_history: VecDeque::new(),
            mids: VecDeque::new(),
            vols: VecDeque::new(),
            volatility: RollingVolatility::default(),
            mids_first: 0,
            mids_window,
            last_finite_mid: None,
            max_agent_latency_us,
            fair_value,
            horizon,
            outside: Outside::new(next_account),
            tick,
            lot,
            events: Vec::new(),
            out: SimOutput {
                trades: TradeRows::default(),
                book: BookRows::default(),
                bars: Vec::new(),
                fills: FillRows::default(),
                fair_value: FairValueRows::default(),
                populations: Vec::new(),
                strategy: None,
                events: 0,
                trade_count: 0,
                truncated: false,
                epoch_ns: config.epoch_ns,
            },
            bar: None,
            volume: vec![0.0; next_account as usize],
            driver: None,
            strategy_account: STRATEGY_ACCOUNT,
            feed: Feed::Bars,
            trade_feed: Vec::new(),
            processed: 0,
            now_us: 0,
        })
    }

    fn schedule(&mut self, ts: i64, task: Task) {
        self.next_seq += 1;
        self.queue.push(ts, self.next_seq, task, matches!(task, Task::Expire(..)));
    }

    fn next_gap_us(&mut self, rate_per_s: f64) -> Option<i64> {
        if !(rate_per_s.is_finite() && rate_per_s > 0.0) {
            return None;
        }
        let gap_s = Exp::new(rate_per_s).map_or(f64::INFINITY, |d| d.sample(&mut self.rng));
        // Capped at ~30 years so `ts + gap` cannot overflow for any rate within the DSG bounds.
        Some(((gap_s * 1e6).ceil().min(1e15) as i64).max(1))
    }

    /// Simulated time at which the run ends (`i64::MAX` for an open-ended market).
    #[must_use]
    pub fn horizon_us(&self) -> i64 {
        self.horizon.unwrap_or(i64::MAX)
    }

    /// Opens the market at time 0: the seeded book and the first task of every population, the L2 stream and the
    /// bar clock. `strategy_name` starts the strategy slot's accounting.
    pub fn start(&mut self, strategy_name: Option<String>) {
        self.seed_book();
        for index in 0..self.groups.len() {
            let group = &self.groups[index];
            if group.population == Population::MarketMaker {
                for account in group.accounts.clone() {
                    self.schedule(0, Task::Requote(account));
                }
            } else if let Some(gap) = self.next_gap_us(group.rate_per_agent * group.accounts.len() as f64) {
                self.schedule(gap, Task::Wake(index));
            }
        }
        self.schedule(0, Task::Publish);
        let bar_us = self.config.bar_s * US_PER_S;
        self.schedule(bar_us, Task::BarClose);
        let driver = strategy_name.map(|name| self.open_slot(name));
        self.driver = driver;
    }

    /// Processes every event due at or before `until_us` (never past the horizon). Returns false once the event cap
    /// is reached (the run is then truncated and stays where it stopped).
    pub fn advance_until(&mut self, until_us: i64, mut strategy: Option<&mut dyn Strategy>) -> bool {
        if self.out.truncated {
            return false;
        }
        let until_us = until_us.min(self.horizon_us());
        let bar_us = self.config.bar_s * US_PER_S;
        let mut driver = self.driver.take();
        self.feed = strategy.as_deref().map_or(Feed::Bars, Strategy::feed);
        loop {
            // Trades of the previous task (or of orders placed between advances) reach the strategy first.
            self.deliver_trades(strategy.as_deref_mut());
            let Some((ts, task)) = self.queue.pop_through(until_us) else { break };
            self.processed += 1;
            if self.processed & 0xFFFF == 0 {
                apex_cancel::checkpoint(); // an interrupted caller stops a long run within milliseconds
            }
            if self.processed > self.config.max_events {
                self.out.truncated = true;
                break;
            }
            self.now_us = ts;
            match task {
                Task::Wake(index) => self.wake(ts, index),
                Task::Requote(account) => self.requote(ts, account),
                Task::Arrive(slot) => {
                    if !self.arrive(ts, slot) {
                        self.out.truncated = true;
                        break;
                    }
                }
                Task::Expire(account, order_id) => {
                    if self.own_orders_of(account).iter().any(|o| o.id == order_id) {
                        self.submit(ts, account, Intent::Cancel { order_id });
                    }
                }
                Task::Publish => {
                    if let (Some((tick, made)), Some(strategy)) = (self.publish(ts), strategy.as_deref_mut())
                        && self.feed == Feed::TradesAndBook
                    {
                        strategy.on_engine_book(&EngineBook::new(tick, &self.publisher, made.as_ref()));
                    }
                    self.schedule(ts + self.config.book_cadence_ms * 1000, Task::Publish);
                }
                Task::BarClose => {
                    self.close_bar(ts);
                    if let (Some(strategy), Some(driver)) = (strategy.as_deref_mut(), driver.as_mut()) {
                        self.decide(ts, strategy, driver);
                    }
                    self.schedule(ts + bar_us, Task::BarClose);
                }
                Task::ArriveOutside(slot) => self.arrive_outside(ts, slot),
                Task::Stream(index) => self.publish_stream(ts, index),
            }
        }
        self.deliver_trades(strategy);
        self.driver = driver;
        if !self.out.truncated {
            self.now_us = self.now_us.max(until_us);
        }
        !self.out.truncated
    }

    /// This market as it is now, its strategy slot's accounting (equity curve, fills, drawdown) carried on under
    /// `strategy_name`: a strategy that saw the same streams as the one driving this market so far and never traded
    /// continues from here exactly as a run of its own from time 0 would (the adversarial fitness forks one market
    /// per seed at each tree's first order instead of simulating every tree's flat prefix again).
    #[must_use]
    pub fn fork(&self, strategy_name: &str) -> Market {
        let mut market = self.clone();
        if let Some(driver) = market.driver.as_mut() {
            driver.rename(strategy_name);
        }
        market
    }

    /// Hands the buffered public trades to the strategy, in order (or drops them when there is none).
    fn deliver_trades(&mut self, strategy: Option<&mut (dyn Strategy + '_)>) {
        if let Some(strategy) = strategy {
            for trade in &self.trade_feed {
                strategy.on_trade(trade);
            }
        }
        self.trade_feed.clear();
    }

    /// The `trades` and `book` rows recorded since the last call (or the start), leaving none behind: a caller that
    /// advances a long run piece by piece writes each piece out and keeps memory bounded. Rows of one piece all
    /// precede the next piece's in time.
    pub fn take_market_tables(&mut self) -> (TradeRows, BookRows) {
        (std::mem::take(&mut self.out.trades), std::mem::take(&mut self.out.book))
    }

    /// Ends the run: per-population PnL and the strategy's report, marked to the last mid.
    #[must_use]
    pub fn finish(mut self) -> SimOutput {
        self.out.events = self.processed;
        let last_mid = self.current_mid_price();
        self.out.populations = self.population_pnl(last_mid);
        if self.config.record_market && self.horizon.is_some() {
            self.out.fair_value = self.fair_value_rows();
        }
        self.out.strategy = self.driver.take().map(|d| d.finish(&self, last_mid));
        self.out
    }

    /// The fair-value path up to the horizon in quote units, with its jump flags.
    fn fair_value_rows(&mut self) -> FairValueRows {
        let horizon_us = self.horizon_us();
        let steps = (horizon_us / FAIR_VALUE_STEP_US) as usize + 1;
        self.fair_value.at(horizon_us);
        let tick_price = self.config.spec.price_to_f64(self.tick);
        let (values, jump) = self.fair_value.recorded(steps);
        FairValueRows {
            ts_us: (0..values.len() as i64).map(|i| i * FAIR_VALUE_STEP_US).collect(),
            value: values.iter().map(|v| v * tick_price).collect(),
            jump: jump.to_vec(),
        }
    }

    /// The matching engine as it is now.
    #[must_use]
    pub fn engine(&self) -> &MatchingEngine {
        &self.engine
    }

    /// Simulated time reached by the last `advance_until`.
    #[must_use]
    pub fn now_us(&self) -> i64 {
        self.now_us
    }

    /// The strategy slot's fills so far (always recorded, whatever `record_all_fills` says).
    pub(crate) fn strategy_fills(&self) -> &FillRows {
        &self.out.fills
    }

    /// The latest volatility estimate of the mid (basis points per sqrt(minute)), once enough samples exist.
    #[must_use]
    pub fn recent_vol_bps(&self) -> Option<f64> {
        self.vols.back().copied().flatten()
    }

    /// The mid in quote units (the last known mid while a side of the book is empty).
    #[must_use]
    pub fn mid_price(&self) -> f64 {
        self.current_mid_price()
    }

    /// An order of the strategy account reaching the engine now (the caller has applied the latency); its events
    /// are booked like everyone else's.
    pub(crate) fn submit_strategy_order(&mut self, order: &NewOrder) {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.engine.submit(self.now_us, order, &mut events);
        self.absorb(self.now_us, &events);
        self.events = events;
    }

    /// Cancels every resting order of the strategy account now.
    pub(crate) fn cancel_strategy_orders(&mut self) {
        self.submit(self.now_us, STRATEGY_ACCOUNT, Intent::CancelAll);
    }

    fn own_orders_of(&self, account: AccountId) -> &[OwnOrder] {
        self.own_orders.get(account as usize).map_or(&[][..], Vec::as_slice)
    }

    /// The strategy account's resting orders as (order id, price in ticks, open lots).
    pub(crate) fn strategy_orders(&self) -> Vec<(u64, i64, i64)> {
        self.own_orders_of(STRATEGY_ACCOUNT).iter().map(|o| (o.id, o.price, o.qty)).collect()
    }

    /// A market opens with resting liquidity: a few levels each side from noise traders around the start price.
    fn seed_book(&mut self) {
        let start = self.fair_value.start().round() as i64;
        let Some(group) = self.groups.iter().find(|g| g.population == Population::Noise) else { return };
        let owners = group.accounts.clone();
        for level in 1..=20i64 {
            for side in [Side::Buy, Side::Sell] {
                let owner = owners[(level as usize * 2 + usize::from(side == Side::Sell)) % owners.len()];
                let price = if side == Side::Buy { start - level } else { start + level };
                let qty = agents::order_size(&mut self.rng, self.dsg.noise_size_lots, self.dsg.noise_size_tail);
                self.submit(0, owner, Intent::Limit { side, price, qty, post_only: true });
            }
        }
    }

    fn wake(&mut self, ts: i64, index: usize) {
        let (population, latency_us, account, rate) = {
            let group = &self.groups[index];
            let pick = self.rng.random_range(0..group.accounts.len());
            (
                group.population,
                group.latency_us,
                group.accounts[pick],
                group.rate_per_agent * group.accounts.len() as f64,
            )
        };
        if let Some(gap) = self.next_gap_us(rate) {
            self.schedule(ts + gap, Task::Wake(index));
        }
        let fair_values = self.fair_values(ts);
        let intents = {
            let own = self.own_orders.get(account as usize).map_or(&[][..], Vec::as_slice);
            let view = self.view(ts, latency_us, account, own, population, fair_values);
            agents::decide(population, &self.dsg, &view, &mut self.metaorders, &mut self.rng)
        };
        let slot = self.pending_slot(account);
        self.pending[slot].intents.extend(intents);
        self.send(ts + latency_us, slot);
    }

    fn requote(&mut self, ts: i64, account: AccountId) {
        let latency_us = self.latency_of[account as usize];
        if let Some(gap) = self.next_gap_us(1e3 / self.dsg.mm_refresh_ms) {
            self.schedule(ts + gap, Task::Requote(account));
        }
        let fair_values = self.fair_values(ts);
        let intents = {
            let own = self.own_orders.get(account as usize).map_or(&[][..], Vec::as_slice);
            let view = self.view(ts, latency_us, account, own, Population::MarketMaker, fair_values);
            agents::decide(Population::MarketMaker, &self.dsg, &view, &mut self.metaorders, &mut self.rng)
        };
        let slot = self.pending_slot(account);
        self.pending[slot].intents.extend(intents);
        self.send(ts + latency_us, slot);
    }

    /// A pending slot with an empty intent buffer for `account`'s next decision.
    fn pending_slot(&mut self, account: AccountId) -> usize {
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.pending.push(Pending::default());
            self.pending.len() - 1
        });
        let pending = &mut self.pending[slot];
        pending.account = account;
        pending.intents.clear();
        slot
    }

    /// Schedules the intents in pending `slot` to arrive at `arrival` (nothing to do for a decision without any).
    fn send(&mut self, arrival: i64, slot: usize) {
        if self.pending[slot].intents.is_empty() {
            self.free_slots.push(slot);
        } else {
            self.schedule(arrival, Task::Arrive(slot));
        }
    }

    /// The market as `account` sees it at `ts`: the top of book `latency` ago, trend and volatility from the mid
    /// history up to then, the fair value (now and ahead), its position and its resting orders.
    fn view<'o>(
        &self,
        ts: i64,
        latency_us: i64,
        account: AccountId,
        own: &'o [OwnOrder],
        population: Population,
        (fair_value, fair_value_ahead): (f64, f64),
    ) -> View<'o> {
        let seen = ts - latency_us;
        let at = self.top_history.partition_point(|entry| entry.0 <= seen);
        let (best_bid, best_ask) =
            if at == 0 { (None, None) } else { (self.top_history[at - 1].1, self.top_history[at - 1].2) };
        // Sample numbers are absolute; the window holds those from `mids_first` on, which covers every sample an
        // agent can see (see `mids_window`).
        let visible_samples = ((seen.max(0) / MID_SAMPLE_US) as usize + 1).min(self.mids_first + self.mids.len());
        let lookback = match population {
            Population::Momentum => Some((self.dsg.mom_lookback_s * 1e6) as i64 / MID_SAMPLE_US),
            _ => None,
        };
        let past_mid = lookback
            .and_then(|k| visible_samples.checked_sub(k as usize + 1))
            .map(|i| self.mids[i - self.mids_first])
            .filter(|m| m.is_finite());
        let sampled_mid = self
            .mids
            .range(..visible_samples - self.mids_first)
            .rev()
            .take(SAMPLED_MID_LOOKBACK)
            .copied()
            .find(|m| m.is_finite());
        View {
            best_bid,
            best_ask,
            past_mid,
            vol_bps: visible_samples.checked_sub(1).and_then(|i| self.vols[i - self.mids_first]),
            sampled_mid,
            fair_value,
            fair_value_ahead,
            position: self.engine.account(account).position / self.lot,
            own_orders: own,
        }
    }

    /// The fair value now and `inf_lookahead_s` ahead; steps before now are forgotten (the clock never goes back).
    fn fair_values(&mut self, ts: i64) -> (f64, f64) {
        self.fair_value.forget_before(ts);
        let now = self.fair_value.at(ts);
        (now, self.fair_value.at(ts + (self.dsg.inf_lookahead_s * 1e6) as i64))
    }

    /// The intents of pending `slot` reach the engine one after another, each counted as an event (as if each were
    /// its own task: the cap may stop the run between two of them). Returns false when the cap was reached.
    fn arrive(&mut self, ts: i64, slot: usize) -> bool {
        let account = self.pending[slot].account;
        let intents = std::mem::take(&mut self.pending[slot].intents);
        let mut capped = false;
        for (n, &intent) in intents.iter().enumerate() {
            if n > 0 {
                self.processed += 1;
                if self.processed & 0xFFFF == 0 {
                    apex_cancel::checkpoint();
                }
                if self.processed > self.config.max_events {
                    capped = true;
                    break;
                }
            }
            self.submit(ts, account, intent);
        }
        self.pending[slot].intents = intents;
        self.free_slots.push(slot);
        !capped
    }

    fn submit(&mut self, ts: i64, account: AccountId, intent: Intent) {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        match intent {
            Intent::Limit { side, price, qty, post_only } => {
                let tif = if post_only { TimeInForce::PostOnly } else { TimeInForce::Gtc };
                let order = NewOrder::limit(account, side, price * self.tick, qty * self.lot, tif);
                let order_id = self.engine.submit(ts, &order, &mut events);
                if self.population_of.get(account as usize) == Some(&Population::Noise)
                    && let Some(life) = self.next_gap_us(self.dsg.noise_cancel_rate)
                {
                    self.schedule(ts + life, Task::Expire(account, order_id));
                }
            }
            Intent::Market { side, qty } => {
                self.engine.submit(ts, &NewOrder::market(account, side, qty * self.lot), &mut events);
            }
            Intent::Take { side, price, qty } => {
                let order = NewOrder::limit(account, side, price * self.tick, qty * self.lot, TimeInForce::Ioc);
                self.engine.submit(ts, &order, &mut events);
            }
            Intent::Cancel { order_id } => {
                self.engine.cancel(ts, account, order_id, &mut events);
            }
            Intent::CancelAll => {
                // Cancelling only books events into `events`: the own-order list changes in `absorb` afterwards.
                for order in self.own_orders.get(account as usize).map_or(&[][..], Vec::as_slice) {
                    self.engine.cancel(ts, account, order.id, &mut events);
                }
            }
        }
        self.absorb(ts, &events);
        self.events = events;
    }

    /// Books the engine's events: own-order lists, trades and fills tables, the top-of-book history, the bar.
    fn absorb(&mut self, ts: i64, events: &[Event]) {
        let spec = &self.config.spec;
        for event in events {
            match *event {
                Event::Accepted { order_id, account, side, price, qty } => {
                    let index = account as usize;
                    if index >= self.own_orders.len() {
                        self.own_orders.resize_with(index + 1, Vec::new);
                    }
                    self.own_orders[index].push(OwnOrder {
                        id: order_id,
                        side,
                        price: price / self.tick,
                        qty: qty / self.lot,
                    });
                }
                Event::Cancelled { order_id, account, .. } => forget(&mut self.own_orders, account, order_id),
                Event::Fill { order_id, account, side, price, qty, fee, liquidity, leaves_qty, ts_us, .. } => {
                    if leaves_qty == 0 {
                        forget(&mut self.own_orders, account, order_id);
                    }
                    if let Some(volume) = self.volume.get_mut(account as usize) {
                        *volume += spec.qty_to_f64(qty);
                    }
                    if self.config.record_all_fills || account == self.strategy_account {
                        let fills = &mut self.out.fills;
                        fills.ts_us.push(ts_us);
                        fills.account.push(account);
                        fills.side.push(side.sign());
                        fills.price.push(spec.price_to_f64(price));
                        fills.size.push(spec.qty_to_f64(qty));
                        fills.fee.push(spec.cash_to_f64(fee));
                        fills.order_id.push(order_id);
                        fills.maker.push(liquidity == crate::Liquidity::Maker);
                    }
                }
                Event::Trade { trade_id, ts_us, taker_side, price, qty, .. } => {
                    let (price_f, qty_f) = (spec.price_to_f64(price), spec.qty_to_f64(qty));
                    self.out.trade_count += 1;
                    if self.feed != Feed::Bars {
                        self.trade_feed.push(FeedTrade { ts_us, side: taker_side.sign(), price: price_f, size: qty_f });
                    }
                    if self.config.record_market {
                        let ts = utc_ns(self.config.epoch_ns, ts_us);
                        let mut id = itoa::Buffer::new();
                        self.out.trades.push(ts, 0, taker_side.sign(), price_f, qty_f, id.format(trade_id));
                    }
                    let bar_us = self.config.bar_s * US_PER_S;
                    let open_ts = ts_us - ts_us.rem_euclid(bar_us);
                    match &mut self.bar {
                        Some(bar) if bar.ts_us == open_ts => {
                            bar.high = bar.high.max(price_f);
                            bar.low = bar.low.min(price_f);
                            bar.close = price_f;
                            bar.volume += qty_f;
                            bar.turnover += price_f * qty_f;
                        }
                        _ => {
                            self.bar = Some(Bar {
                                ts_us: open_ts,
                                open: price_f,
                                high: price_f,
                                low: price_f,
                                close: price_f,
                                volume: qty_f,
                                turnover: price_f * qty_f,
                            });
                        }
                    }
                }
                Event::Amended { .. } | Event::Rejected { .. } | Event::BookLevel { .. } => {}
            }
        }
        let top =
            (self.engine.best_bid().map(|l| l.price / self.tick), self.engine.best_ask().map(|l| l.price / self.tick));
        if self.outside.active() {
            self.route_outside(ts, events);
        }
        if self.top_history.back().is_none_or(|last| (last.1, last.2) != top) {
            self.top_history.push_back((ts, top.0, top.1));
            // Changes older than the one an agent with the longest latency sees are never looked at again.
            let oldest_seen = ts - self.max_agent_latency_us;
            while self.top_history.len() > 1 && self.top_history[1].0 <= oldest_seen {
                self.top_history.pop_front();
            }
        }
    }

    fn current_mid_ticks(&self) -> f64 {
        match (self.engine.best_bid(), self.engine.best_ask()) {
            (Some(b), Some(a)) => (b.price + a.price) as f64 / 2.0 / self.tick as f64,
            _ => f64::NAN,
        }
    }

    fn current_mid_price(&self) -> f64 {
        let mid = self.current_mid_ticks();
        let mid = if mid.is_finite() { mid } else { self.last_finite_mid.unwrap_or(self.fair_value.start()) };
        mid * self.config.spec.price_to_f64(self.tick)
    }

    /// Samples the mid, and publishes the L2 message of this tick when the market is recorded or the strategy reads
    /// the book; the message is made (and returned) only when the market is recorded.
    fn publish(&mut self, ts: i64) -> Option<(BookTick, Option<L2Update>)> {
        while ((self.mids_first + self.mids.len()) as i64) * MID_SAMPLE_US <= ts {
            let mid = self.current_mid_ticks();
            self.mids.push_back(mid);
            if mid.is_finite() {
                self.last_finite_mid = Some(mid);
            }
            self.volatility.push(mid);
            self.vols.push_back(self.volatility.vol_bps(SAMPLES_PER_MINUTE));
            if self.mids.len() > self.mids_window {
                self.mids.pop_front();
                self.vols.pop_front();
                self.mids_first += 1;
            }
        }
        if !(self.config.record_market || self.feed == Feed::TradesAndBook) {
            return None;
        }
        let tick = self.publisher.tick(&self.engine, ts)?;
        if !self.config.record_market {
            return Some((tick, None));
        }
        let update = self.publisher.message(&tick);
        let spec = &self.config.spec;
        let kind = u8::from(update.kind != apex_book::UpdateKind::Snapshot);
        let message = MessageHead {
            ts: utc_ns(self.config.epoch_ns, update.ts_us),
            symbol: 0,
            kind,
            update_id: update.update_id as i64,
            seq: update.seq as i64,
        };
        let level = |side: i8| move |l: &apex_book::Level| (side, spec.price_to_f64(l.price), spec.qty_to_f64(l.qty));
        let levels = update.bids.iter().map(level(1)).chain(update.asks.iter().map(level(-1)));
        self.out.book.push_message(message, levels);
        Some((tick, Some(update)))
    }

    /// Closes the bar that ended at `ts` (an interval without trades repeats the last close with zero volume).
    fn close_bar(&mut self, ts: i64) {
        let bar_us = self.config.bar_s * US_PER_S;
        let open_ts = ts - bar_us;
        let bar = match self.bar.take() {
            Some(bar) if bar.ts_us == open_ts => bar,
            other => {
                // No trade in this interval (`other`, if any, belongs to the next one and is kept).
                self.bar = other.filter(|b| b.ts_us > open_ts);
                let close = self.out.bars.last().map_or_else(|| self.current_mid_price(), |b| b.close);
                Bar { ts_us: open_ts, open: close, high: close, low: close, close, volume: 0.0, turnover: 0.0 }
            }
        };
        self.out.bars.push(bar);
        if self.horizon.is_none() && self.out.bars.len() > 2 * OPEN_BAR_WINDOW {
            self.out.bars.drain(..OPEN_BAR_WINDOW);
        }
    }

    fn population_pnl(&self, last_mid: f64) -> Vec<PopulationPnl> {
        let spec = &self.config.spec;
        let mut by_population: BTreeMap<Population, PopulationPnl> = BTreeMap::new();
        for group in &self.groups {
            by_population.insert(
                group.population,
                PopulationPnl {
                    population: group.population,
                    agents: group.accounts.len(),
                    pnl: 0.0,
                    fees: 0.0,
                    volume: 0.0,
                },
            );
        }
        for (account, state) in self.engine.accounts() {
            if account == STRATEGY_ACCOUNT {
                continue;
            }
            let Some(population) = self.population_of.get(account as usize) else { continue };
            let entry = by_population.get_mut(population).expect("every agent belongs to a population");
            entry.pnl += spec.cash_to_f64(state.cash) + spec.qty_to_f64(state.position) * last_mid;
            entry.fees += spec.cash_to_f64(state.fees);
            entry.volume += self.volume.get(account as usize).copied().unwrap_or(0.0);
        }
        by_population.into_values().collect()
    }
}

fn forget(own_orders: &mut [Vec<OwnOrder>], account: AccountId, order_id: u64) {
    if let Some(orders) = own_orders.get_mut(account as usize) {
        orders.retain(|o| o.id != order_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::preset;
    use crate::strategy::MovingAverageCrossover;

    #[test]
    fn advancing_in_pieces_equals_one_run() {
        let (spec, start) = preset("BTCUSDT").unwrap();
        let mut config = SimConfig::new(spec, start, 3);
        config.horizon_s = 240.0;
        config.bar_s = 10;
        let mut whole_strategy = MovingAverageCrossover { fast: 2, slow: 4 };
        let whole = run(&Dsg::default(), &config, Some(&mut whole_strategy)).unwrap();
        let mut pieces_strategy = MovingAverageCrossover { fast: 2, slow: 4 };
        let mut market = Market::new(&Dsg::default(), &config).unwrap();
        market.start(Some(pieces_strategy.name()));
        let mut until = 0;
        while until < market.horizon_us() {
            until += 7_300_001;
            assert!(market.advance_until(until, Some(&mut pieces_strategy)));
            assert_eq!(market.now_us(), until.min(market.horizon_us()));
        }
        let pieces = market.finish();
        assert!(whole.strategy.as_ref().is_some_and(|s| s.n_fills > 0), "the strategy traded");
        assert_eq!(whole, pieces);
    }

    #[test]
    fn a_fork_continues_exactly_as_the_market_it_was_cloned_from() {
        let (spec, start) = preset("ETHUSDT").unwrap();
        let mut config = SimConfig::new(spec, start, 12);
        config.horizon_s = 240.0;
        config.bar_s = 10;
        let mut strategy = MovingAverageCrossover { fast: 2, slow: 4 };
        let mut market = Market::new(&Dsg::default(), &config).unwrap();
        market.start(Some(strategy.name()));
        market.advance_until(95_000_003, Some(&mut strategy));
        let mut forked_strategy = strategy.clone();
        let mut fork = market.fork("copy");
        market.advance_until(market.horizon_us(), Some(&mut strategy));
        fork.advance_until(fork.horizon_us(), Some(&mut forked_strategy));
        let (original, mut forked) = (market.finish(), fork.finish());
        let report = forked.strategy.as_mut().unwrap();
        assert_eq!(report.name, "copy");
        report.name = strategy.name();
        assert!(original.strategy.as_ref().is_some_and(|s| s.n_fills > 0), "the strategy traded after the fork");
        assert_eq!(original, forked);
    }

    #[test]
    fn an_open_ended_market_runs_in_bounded_memory() {
        let (spec, start) = preset("SOLUSDT").unwrap();
        let mut config = SimConfig::new(spec, start, 5);
        config.record_market = false;
        let mut market = Market::open_ended(&Dsg::default(), &config).unwrap();
        assert_eq!(market.horizon_us(), i64::MAX);
        market.start(None);
        let mut held = Vec::new();
        for hour in 1..=4 {
            assert!(market.advance_until(hour * 3_600 * US_PER_S, None));
            held.push((
                market.top_history.len(),
                market.mids.len(),
                market.pending.len(),
                market.fair_value.held(),
                market.queue.len(),
            ));
        }
        let (_, mids, _, fair, _) = held[3];
        assert!(mids <= market.mids_window && fair <= 1_000, "windows stay small: {held:?}");
        // The later hours hold no more than the first one did (with slack for what is pending at the instant).
        for later in &held[1..] {
            assert!(later.0 <= held[0].0 * 4 + 64 && later.2 <= held[0].2 * 4 + 64 && later.4 <= held[0].4 * 4 + 64);
        }
        let mid = market.mid_price();
        assert!(mid > start * 0.5 && mid < start * 2.0, "a sane market after 4 hours: mid {mid}");
        let out = market.finish();
        assert!(out.trade_count > 10_000 && out.bars.len() == 4 * 60);
    }

    #[test]
    fn an_open_ended_market_depends_only_on_its_seed() {
        let (spec, start) = preset("BTCUSDT").unwrap();
        let config = SimConfig::new(spec, start, 8);
        let top = |until: i64| {
            let mut market = Market::open_ended(&Dsg::default(), &config).unwrap();
            market.start(None);
            market.advance_until(until, None);
            (market.engine().top_n(Side::Buy, 5), market.engine().top_n(Side::Sell, 5), market.engine().sequence())
        };
        assert_eq!(top(300 * US_PER_S), top(300 * US_PER_S));
        let mut bounded = Market::new(&Dsg::default(), &config).unwrap();
        bounded.start(None);
        bounded.advance_until(300 * US_PER_S, None);
        assert_ne!(top(300 * US_PER_S).2, bounded.engine().sequence(), "agents draw from another generator");
    }
}
