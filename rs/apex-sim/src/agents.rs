//! The agent populations of the simulated market and the decision each makes when it wakes.
//!
//! Agents are pure decision rules: given what they can see (a market view delayed by their own latency) and a random
//! stream, they return intents (orders and cancels). Scheduling, latency and matching live in the market loop, so the
//! same rules can be tested on hand-made views.

use apex_core::Side;
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp, Normal, Pareto};

use crate::dsg::Dsg;

/// The kinds of trader, in the order their parameter blocks appear in the DSG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Population {
    Noise,
    MarketMaker,
    Momentum,
    Fundamentalist,
    Informed,
}

impl Population {
    pub const ALL: [Population; 5] = [
        Population::Noise,
        Population::MarketMaker,
        Population::Momentum,
        Population::Fundamentalist,
        Population::Informed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Population::Noise => "noise",
            Population::MarketMaker => "market_maker",
            Population::Momentum => "momentum",
            Population::Fundamentalist => "fundamentalist",
            Population::Informed => "informed",
        }
    }
}

/// What an agent asks the venue to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Intent {
    /// A GTC limit order (post-only when the agent must not take liquidity).
    Limit { side: Side, price: i64, qty: i64, post_only: bool },
    /// A market order (the venue turns it into an IOC at a protective band).
    Market { side: Side, qty: i64 },
    /// Cancel one of the agent's own resting orders.
    Cancel { order_id: u64 },
    /// Cancel every resting order of the agent.
    CancelAll,
}

/// One of the agent's resting orders as the agent knows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OwnOrder {
    pub id: u64,
    pub side: Side,
    pub price: i64,
    pub qty: i64,
}

/// Everything an agent may look at when it decides. Prices are in ticks (as f64 where they are model values).
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Best bid and ask as the agent sees them (already delayed by its market-data latency).
    pub best_bid: Option<i64>,
    pub best_ask: Option<i64>,
    /// Mid price `lookback` ago as seen by the agent, for trend signals; `None` before enough history exists.
    pub past_mid: Option<f64>,
    /// Estimated volatility of the mid in basis points per sqrt(minute) (from the agent's view of history).
    pub vol_bps: Option<f64>,
    /// The latent fair value now, and `informed.lookahead_s` ahead; only fundamentalists and informed traders use them.
    pub fair_value: f64,
    pub fair_value_ahead: f64,
    /// The agent's position in lots and its resting orders.
    pub position: i64,
    pub own_orders: &'a [OwnOrder],
}

impl View<'_> {
    /// The mid when both sides exist, else the one side, else the fair value (an empty book still has a price).
    pub fn reference_mid(&self) -> f64 {
        match (self.best_bid, self.best_ask) {
            (Some(b), Some(a)) => (b + a) as f64 / 2.0,
            (Some(b), None) => b as f64,
            (None, Some(a)) => a as f64,
            (None, None) => self.fair_value,
        }
    }
}

/// A heavy-tailed order size in lots: Pareto with minimum `scale`, capped at 100x so a single draw cannot empty the
/// book of a whole session.
pub fn order_size<R: Rng + ?Sized>(rng: &mut R, scale: f64, tail: f64) -> i64 {
    let draw = Pareto::new(scale.max(1.0), tail.max(1.01)).map_or(scale, |d| d.sample(rng));
    (draw.min(scale * 100.0).round() as i64).max(1)
}

fn random_side<R: Rng + ?Sized>(rng: &mut R) -> Side {
    if rng.random_bool(0.5) { Side::Buy } else { Side::Sell }
}

fn bps(from: f64, to: f64) -> f64 {
    if from.abs() < f64::EPSILON { 0.0 } else { (to / from - 1.0) * 1e4 }
}

/// Zero-intelligence noise trader (Farmer, Patelli & Zovko 2005): Poisson limit and market flow; limit prices an
/// exponential distance behind the opposite best, so some improve the spread and most rest deeper. Each resting order
/// is cancelled after an exponential lifetime (the market loop schedules it), as in the model.
pub fn noise<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, rng: &mut R) -> Vec<Intent> {
    let total = dsg.noise_limit_rate + dsg.noise_market_rate;
    if total <= 0.0 {
        return Vec::new();
    }
    let side = random_side(rng);
    let qty = order_size(rng, dsg.noise_size_lots, dsg.noise_size_tail);
    if rng.random::<f64>() * total < dsg.noise_market_rate {
        return vec![Intent::Market { side, qty }];
    }
    let mid = view.reference_mid();
    let mean_ticks = (dsg.noise_offset_bps * mid / 1e4).max(0.5);
    let offset = Exp::new(1.0 / mean_ticks).map_or(1.0, |d| d.sample(rng)).floor() as i64 + 1;
    let price = match side {
        Side::Buy => view.best_ask.map_or(mid.floor() as i64, |a| a - offset),
        Side::Sell => view.best_bid.map_or(mid.ceil() as i64, |b| b + offset),
    };
    vec![Intent::Limit { side, price: price.max(1), qty, post_only: false }]
}

/// Avellaneda–Stoikov market maker, with prices in basis points of the mid: reservation price
/// r = s - q·γ·σ²·τ and total spread γ·σ²·τ + (2/γ)·ln(1 + γ/κ), where q is inventory in quote sizes, σ in bps per
/// sqrt(minute) and τ the horizon in minutes. Requotes replace every resting quote; past the inventory limit only the
/// reducing side is quoted.
pub fn market_maker(dsg: &Dsg, view: &View<'_>) -> Vec<Intent> {
    let mid = view.reference_mid();
    if mid <= 0.0 {
        return vec![Intent::CancelAll];
    }
    let sigma = view.vol_bps.filter(|v| v.is_finite() && *v > 0.0).unwrap_or(dsg.fv_vol_bps);
    let tau = dsg.mm_horizon_s / 60.0;
    let gamma = dsg.mm_gamma;
    let q = view.position as f64 / dsg.mm_quote_lots.max(1.0);
    let risk = gamma * sigma * sigma * tau;
    // Extreme corners of the DSG can ask for absurd quotes; keep them within half the price either way.
    let reservation_bps = (-q * risk).clamp(-5_000.0, 5_000.0);
    let half_spread_bps = (0.5 * (risk + (2.0 / gamma) * (1.0 + gamma / dsg.mm_kappa).ln())).min(5_000.0);
    let to_ticks = mid / 1e4;
    let bid = (mid + (reservation_bps - half_spread_bps) * to_ticks).floor() as i64;
    let mut ask = (mid + (reservation_bps + half_spread_bps) * to_ticks).ceil() as i64;
    if ask <= bid {
        ask = bid + 1;
    }
    let qty = (dsg.mm_quote_lots.round() as i64).max(1);
    let mut intents = vec![Intent::CancelAll];
    let long_limit = view.position as f64 >= dsg.mm_max_inventory;
    let short_limit = -(view.position as f64) >= dsg.mm_max_inventory;
    if !long_limit && bid > 0 {
        intents.push(Intent::Limit { side: Side::Buy, price: bid, qty, post_only: true });
    }
    if !short_limit {
        intents.push(Intent::Limit { side: Side::Sell, price: ask, qty, post_only: true });
    }
    intents
}

/// Momentum trader: buys after a rise and sells after a fall over its lookback, if the move exceeds its threshold.
pub fn momentum<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, rng: &mut R) -> Vec<Intent> {
    let Some(past) = view.past_mid else { return Vec::new() };
    let trend = bps(past, view.reference_mid());
    if trend.abs() < dsg.mom_threshold_bps {
        return Vec::new();
    }
    let side = if trend > 0.0 { Side::Buy } else { Side::Sell };
    vec![Intent::Market { side, qty: order_size(rng, dsg.mom_size_lots, dsg.noise_size_tail) }]
}

/// Fundamentalist: trades toward its noisy private estimate of the fair value when the mispricing is large enough.
pub fn fundamentalist<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, rng: &mut R) -> Vec<Intent> {
    let noise = Normal::new(0.0, dsg.fund_noise_bps.max(0.0)).map_or(0.0, |d| d.sample(rng));
    let estimate = view.fair_value * (1.0 + noise / 1e4);
    let mispricing = bps(view.reference_mid(), estimate);
    if mispricing.abs() < dsg.fund_threshold_bps {
        return Vec::new();
    }
    let side = if mispricing > 0.0 { Side::Buy } else { Side::Sell };
    vec![Intent::Market { side, qty: order_size(rng, dsg.fund_size_lots, dsg.noise_size_tail) }]
}

/// Informed trader: sees the fair value `lookahead` ahead and takes liquidity in the direction of the coming move.
pub fn informed<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, rng: &mut R) -> Vec<Intent> {
    let expected = bps(view.reference_mid(), view.fair_value_ahead);
    if expected.abs() < dsg.inf_threshold_bps {
        return Vec::new();
    }
    let side = if expected > 0.0 { Side::Buy } else { Side::Sell };
    vec![Intent::Market { side, qty: order_size(rng, dsg.inf_size_lots, dsg.noise_size_tail) }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn view(position: i64) -> View<'static> {
        View {
            best_bid: Some(99_990),
            best_ask: Some(100_010),
            past_mid: Some(99_000.0),
            vol_bps: Some(8.0),
            fair_value: 100_000.0,
            fair_value_ahead: 101_000.0,
            position,
            own_orders: &[],
        }
    }

    #[test]
    fn market_maker_skews_quotes_against_inventory() {
        let dsg = Dsg::default();
        let quotes = |position| {
            let intents = market_maker(&dsg, &view(position));
            let price = |s| {
                intents.iter().find_map(|i| match i {
                    Intent::Limit { side, price, .. } if *side == s => Some(*price),
                    _ => None,
                })
            };
            (price(Side::Buy), price(Side::Sell))
        };
        let (flat_bid, flat_ask) = quotes(0);
        let (long_bid, long_ask) = quotes(100);
        assert!(flat_bid.unwrap() < flat_ask.unwrap());
        assert!(long_bid.unwrap() < flat_bid.unwrap() && long_ask.unwrap() < flat_ask.unwrap());
        let (limit_bid, limit_ask) = quotes(dsg.mm_max_inventory as i64);
        assert!(limit_bid.is_none() && limit_ask.is_some(), "a full maker only quotes the reducing side");
    }

    #[test]
    fn trend_and_information_set_the_side() {
        let dsg = Dsg::default();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        assert!(matches!(momentum(&dsg, &view(0), &mut rng)[..], [Intent::Market { side: Side::Buy, .. }]));
        assert!(matches!(informed(&dsg, &view(0), &mut rng)[..], [Intent::Market { side: Side::Buy, .. }]));
        let calm = View { past_mid: Some(100_000.0), fair_value_ahead: 100_000.0, ..view(0) };
        assert!(momentum(&dsg, &calm, &mut rng).is_empty());
        assert!(informed(&dsg, &calm, &mut rng).is_empty());
    }

    #[test]
    fn noise_limits_rest_behind_the_opposite_best_and_sizes_are_heavy_tailed() {
        let dsg = Dsg::default();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut sizes = Vec::new();
        for _ in 0..20_000 {
            for intent in noise(&dsg, &view(0), &mut rng) {
                match intent {
                    Intent::Limit { side: Side::Buy, price, qty, .. } => {
                        assert!(price < 100_010);
                        sizes.push(qty as f64);
                    }
                    Intent::Limit { side: Side::Sell, price, qty, .. } => {
                        assert!(price > 99_990);
                        sizes.push(qty as f64);
                    }
                    _ => {}
                }
            }
        }
        let n = sizes.len() as f64;
        let mean = sizes.iter().sum::<f64>() / n;
        let var = sizes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n;
        let kurt = sizes.iter().map(|s| (s - mean).powi(4)).sum::<f64>() / n / (var * var) - 3.0;
        assert!(kurt > 3.0, "order sizes should be heavy tailed, excess kurtosis {kurt}");
    }
}
