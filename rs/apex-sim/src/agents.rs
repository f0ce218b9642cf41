//! The agent populations of the simulated market and the decision each makes when it wakes.
//!
//! Agents are decision rules: given what they can see (a market view delayed by their own latency) and a random
//! stream, they return intents (orders, IOC takes and cancels). The one state a rule keeps between decisions is the
//! noise flow's open metaorders, which the market loop holds and passes in. Scheduling, latency and matching live in
//! the market loop, so the same rules can be tested on hand-made views.

use apex_core::Side;
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp, Normal, Pareto};
use smallvec::{SmallVec, smallvec};

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

/// The intents of one decision, in order: at most five (a market maker's cancel, two IOC legs and two quotes), so
/// they never leave the stack.
pub type Intents = SmallVec<[Intent; 5]>;

/// What an agent asks the venue to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Intent {
    /// A GTC limit order (post-only when the agent must not take liquidity).
    Limit { side: Side, price: i64, qty: i64, post_only: bool },
    /// A market order (the venue turns it into an IOC at a protective band).
    Market { side: Side, qty: i64 },
    /// An IOC limit order: take whatever rests at `price` or better, cancel the rest.
    Take { side: Side, price: i64, qty: i64 },
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
    /// The latest once-a-second mid sample the agent can see: a reference one stray order cannot drag far.
    pub sampled_mid: Option<f64>,
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

/// Longest metaorder in child orders (about ten minutes of the default flow), so one draw from the power law cannot
/// fix the flow's sign for a whole session or outgrow every maker's inventory.
pub const MAX_METAORDER_CHILDREN: f64 = 2_000.0;

/// The noise traders' market-order flow as metaorders being split (Lillo, Mike & Farmer 2005): a few large orders
/// are worked at once, each a run of child market orders of one sign whose length is Pareto with tail index
/// `noise.metaorder_tail`. Each child comes from a uniformly chosen open metaorder, so the sign of the flow has long
/// memory, its autocorrelation decaying like lag^(1 - tail), while every metaorder's sign is a coin flip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metaorders {
    /// (sign, child orders still to send) of each open metaorder.
    open: Vec<(Side, u32)>,
}

impl Metaorders {
    /// The side of the next noise market order (a coin flip when the DSG has no metaorders).
    pub fn next_side<R: Rng + ?Sized>(&mut self, dsg: &Dsg, rng: &mut R) -> Side {
        let count = Dsg::count(dsg.noise_metaorders);
        if count == 0 {
            return random_side(rng);
        }
        while self.open.len() < count {
            let fresh = Metaorders::fresh(dsg, rng);
            self.open.push(fresh);
        }
        self.open.truncate(count);
        let pick = rng.random_range(0..count);
        let (side, left) = self.open[pick];
        if left <= 1 {
            self.open[pick] = Metaorders::fresh(dsg, rng);
        } else {
            self.open[pick].1 = left - 1;
        }
        side
    }

    fn fresh<R: Rng + ?Sized>(dsg: &Dsg, rng: &mut R) -> (Side, u32) {
        let length = Pareto::new(1.0, dsg.noise_metaorder_tail.max(1.01)).map_or(1.0, |d| d.sample(rng));
        (random_side(rng), length.min(MAX_METAORDER_CHILDREN).floor().max(1.0) as u32)
    }
}

/// `price` moved at most `clip_bps` away from `anchor` (both in ticks).
fn clipped(price: f64, anchor: f64, clip_bps: f64) -> f64 {
    let clip = (clip_bps * anchor / 1e4).max(1.0);
    price.clamp(anchor - clip, anchor + clip)
}

/// Zero-intelligence noise trader (Farmer, Patelli & Zovko 2005): Poisson limit and market flow; limit prices an
/// exponential distance behind the opposite best, so some improve the spread and most rest deeper. Each resting order
/// is cancelled after an exponential lifetime (the market loop schedules it), as in the model.
///
/// The opposite best is first clipped to within `noise.reference_clip_bps` of the last mid sample, so a stray order
/// left alone on a thinned side cannot drag new orders with it. Market orders take their side from the metaorders
/// being split (`flow`), which gives order flow its long memory.
pub fn noise<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, flow: &mut Metaorders, rng: &mut R) -> Intents {
    let total = dsg.noise_limit_rate + dsg.noise_market_rate;
    if total <= 0.0 {
        return Intents::new();
    }
    let qty = order_size(rng, dsg.noise_size_lots, dsg.noise_size_tail);
    if rng.random::<f64>() * total < dsg.noise_market_rate {
        return smallvec![Intent::Market { side: flow.next_side(dsg, rng), qty }];
    }
    let side = random_side(rng);
    let mid = view.reference_mid();
    let anchor = view.sampled_mid.unwrap_or(mid);
    let mean_ticks = (dsg.noise_offset_bps * anchor / 1e4).max(0.5);
    let offset = Exp::new(1.0 / mean_ticks).map_or(1.0, |d| d.sample(rng)).floor() as i64 + 1;
    let opposite = match side {
        Side::Buy => view.best_ask.map_or(anchor.floor(), |a| a as f64),
        Side::Sell => view.best_bid.map_or(anchor.ceil(), |b| b as f64),
    };
    let reference = clipped(opposite, anchor, dsg.noise_clip_bps);
    let price = match side {
        Side::Buy => reference.floor() as i64 - offset,
        Side::Sell => reference.ceil() as i64 + offset,
    };
    smallvec![Intent::Limit { side, price: price.max(1), qty, post_only: false }]
}

/// Avellaneda–Stoikov market maker around a fair-value estimate, with prices in basis points: reservation price
/// r = c - q·γ·σ²·τ and total spread γ·σ²·τ + (2/γ)·ln(1 + γ/κ), where c is the maker's estimate of value, q its
/// inventory in quote sizes, σ in bps per sqrt(minute) (its estimate of the mid's, capped at `vol_cap` times the
/// fair value's) and τ the horizon in minutes.
///
/// The estimate c blends the fair value, seen with `value_noise_bps` of independent error at each requote, with the
/// book mid (`value_weight` on the value): makers who price off the book alone let value reach the price only through
/// takers, a minute late. The inventory skew is at most one half-spread, so a maker never quotes through its value.
/// A quote the maker sees beyond c ± half-spread is stale: an IOC leg of `take_lots` takes it (within the inventory
/// limit, without skew), and the new quote on that side stays behind the IOC's price so it cannot be refused as
/// crossing. Requotes replace every resting quote; past the inventory limit only the reducing side is quoted.
pub fn market_maker<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, rng: &mut R) -> Intents {
    let book_mid = view.reference_mid();
    let error = Normal::new(0.0, dsg.mm_value_noise_bps.max(0.0)).map_or(0.0, |d| d.sample(rng));
    let weight = dsg.mm_value_weight.clamp(0.0, 1.0);
    let center = weight * view.fair_value * (1.0 + error / 1e4) + (1.0 - weight) * book_mid;
    if !(center.is_finite() && center > 0.0) {
        return smallvec![Intent::CancelAll];
    }
    let vol_cap = dsg.mm_vol_cap * dsg.fv_vol_bps;
    let sigma = view.vol_bps.filter(|v| v.is_finite() && *v > 0.0).map_or(dsg.fv_vol_bps, |v| v.min(vol_cap));
    let tau = dsg.mm_horizon_s / 60.0;
    let gamma = dsg.mm_gamma;
    let q = view.position as f64 / dsg.mm_quote_lots.max(1.0);
    let risk = gamma * sigma * sigma * tau;
    // Extreme corners of the DSG can ask for absurd quotes; keep them within half the price either way.
    let half_spread_bps = (0.5 * (risk + (2.0 / gamma) * (1.0 + gamma / dsg.mm_kappa).ln())).min(5_000.0);
    let skew_bps = (-q * risk).clamp(-half_spread_bps, half_spread_bps);
    let to_ticks = center / 1e4;
    let mut bid = (center + (skew_bps - half_spread_bps) * to_ticks).floor() as i64;
    let mut ask = (center + (skew_bps + half_spread_bps) * to_ticks).ceil() as i64;
    let edge = half_spread_bps * to_ticks;
    let take_lots = dsg.mm_take_lots.round() as i64;
    let room_long = (dsg.mm_max_inventory - view.position as f64).floor() as i64;
    let room_short = (dsg.mm_max_inventory + view.position as f64).floor() as i64;
    let mut intents = smallvec![Intent::CancelAll];
    match view.best_ask {
        Some(seen) if (seen as f64) < center - edge && take_lots > 0 && room_long > 0 => {
            let price = (center - edge).floor() as i64;
            intents.push(Intent::Take { side: Side::Buy, price, qty: take_lots.min(room_long) });
            bid = bid.min(price);
        }
        Some(seen) => bid = bid.min(seen - 1),
        None => {}
    }
    match view.best_bid {
        Some(seen) if (seen as f64) > center + edge && take_lots > 0 && room_short > 0 => {
            let price = (center + edge).ceil() as i64;
            intents.push(Intent::Take { side: Side::Sell, price, qty: take_lots.min(room_short) });
            ask = ask.max(price);
        }
        Some(seen) => ask = ask.max(seen + 1),
        None => {}
    }
    if ask <= bid {
        ask = bid + 1;
    }
    let qty = (dsg.mm_quote_lots.round() as i64).max(1);
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

/// What an agent of `population` does when it wakes (market makers: when their requote timer fires).
pub fn decide<R: Rng + ?Sized>(
    population: Population,
    dsg: &Dsg,
    view: &View<'_>,
    flow: &mut Metaorders,
    rng: &mut R,
) -> Intents {
    match population {
        Population::Noise => noise(dsg, view, flow, rng),
        Population::MarketMaker => market_maker(dsg, view, rng),
        Population::Momentum => momentum(dsg, view, rng),
        Population::Fundamentalist => fundamentalist(dsg, view, rng),
        Population::Informed => informed(dsg, view, rng),
    }
}

/// Momentum trader: buys after a rise and sells after a fall over its lookback, if the move exceeds its threshold.
pub fn momentum<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, rng: &mut R) -> Intents {
    let Some(past) = view.past_mid else { return Intents::new() };
    let trend = bps(past, view.reference_mid());
    if trend.abs() < dsg.mom_threshold_bps {
        return Intents::new();
    }
    let side = if trend > 0.0 { Side::Buy } else { Side::Sell };
    smallvec![Intent::Market { side, qty: order_size(rng, dsg.mom_size_lots, dsg.noise_size_tail) }]
}

/// Fundamentalist: trades toward its noisy private estimate of the fair value when the mispricing is large enough.
pub fn fundamentalist<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, rng: &mut R) -> Intents {
    let noise = Normal::new(0.0, dsg.fund_noise_bps.max(0.0)).map_or(0.0, |d| d.sample(rng));
    let estimate = view.fair_value * (1.0 + noise / 1e4);
    let mispricing = bps(view.reference_mid(), estimate);
    if mispricing.abs() < dsg.fund_threshold_bps {
        return Intents::new();
    }
    let side = if mispricing > 0.0 { Side::Buy } else { Side::Sell };
    smallvec![Intent::Market { side, qty: order_size(rng, dsg.fund_size_lots, dsg.noise_size_tail) }]
}

/// Informed trader: sees the fair value `lookahead` ahead and takes liquidity in the direction of the coming move.
pub fn informed<R: Rng + ?Sized>(dsg: &Dsg, view: &View<'_>, rng: &mut R) -> Intents {
    let expected = bps(view.reference_mid(), view.fair_value_ahead);
    if expected.abs() < dsg.inf_threshold_bps {
        return Intents::new();
    }
    let side = if expected > 0.0 { Side::Buy } else { Side::Sell };
    smallvec![Intent::Market { side, qty: order_size(rng, dsg.inf_size_lots, dsg.noise_size_tail) }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn view(position: i64) -> View<'static> {
        View {
            best_bid: Some(99_990),
            best_ask: Some(100_010),
            past_mid: Some(99_000.0),
            vol_bps: Some(8.0),
            sampled_mid: Some(100_000.0),
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
            let intents = market_maker(&dsg, &view(position), &mut Xoshiro256PlusPlus::seed_from_u64(3));
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

    /// The quotes and IOC legs of one requote: (bid, ask, takes as (side, price, qty)).
    type Quotes = (Option<i64>, Option<i64>, Vec<(Side, i64, i64)>);

    fn quotes_of(intents: &[Intent]) -> Quotes {
        let limit = |s| {
            intents.iter().find_map(|i| match i {
                Intent::Limit { side, price, post_only: true, .. } if *side == s => Some(*price),
                _ => None,
            })
        };
        let takes = intents
            .iter()
            .filter_map(|i| match *i {
                Intent::Take { side, price, qty } => Some((side, price, qty)),
                _ => None,
            })
            .collect();
        (limit(Side::Buy), limit(Side::Sell), takes)
    }

    proptest! {
        /// Whatever the book and the maker's inventory: quotes never cross, a post-only quote never reaches the
        /// opposite best the maker saw (or the price its own IOC leg cleared to), the IOC legs go exactly at quotes
        /// beyond value ± half-spread and stay within the inventory limit, and the skew never puts the quotes' middle
        /// more than one half-spread from value.
        #[test]
        fn maker_quotes_around_value_and_takes_only_stale_quotes(
            bid_off in -300i64..300,
            width in 1i64..200,
            position in -60_000i64..60_000,
            vol in 0.1f64..500.0,
            gamma in 0.0001f64..0.2,
            kappa in 0.05f64..50.0,
        ) {
            let dsg = Dsg { mm_value_noise_bps: 0.0, mm_gamma: gamma, mm_kappa: kappa, ..Dsg::default() };
            let value = 100_000.0;
            let seen_bid = 100_000 + bid_off;
            let seen_ask = seen_bid + width;
            let v = View { best_bid: Some(seen_bid), best_ask: Some(seen_ask), vol_bps: Some(vol), ..view(position) };
            let intents = market_maker(&dsg, &v, &mut Xoshiro256PlusPlus::seed_from_u64(1));
            prop_assert_eq!(intents[0], Intent::CancelAll);
            let (bid, ask, takes) = quotes_of(&intents);
            let sigma = vol.min(dsg.mm_vol_cap * dsg.fv_vol_bps);
            let risk = gamma * sigma * sigma * dsg.mm_horizon_s / 60.0;
            let half = (0.5 * (risk + (2.0 / gamma) * (1.0 + gamma / kappa).ln())).min(5_000.0) * value / 1e4;
            let room = dsg.mm_max_inventory as i64;
            let stale_ask = (seen_ask as f64) < value - half && position < room;
            let stale_bid = (seen_bid as f64) > value + half && position > -room;
            prop_assert_eq!(takes.iter().any(|t| t.0 == Side::Buy), stale_ask);
            prop_assert_eq!(takes.iter().any(|t| t.0 == Side::Sell), stale_bid);
            for &(side, price, qty) in &takes {
                let reach = if side == Side::Buy { room - position } else { room + position };
                prop_assert!(qty > 0 && qty <= reach && qty <= dsg.mm_take_lots as i64);
                match side {
                    Side::Buy => prop_assert!(price as f64 <= value - half + 1.0 && price >= seen_ask),
                    Side::Sell => prop_assert!(price as f64 >= value + half - 1.0 && price <= seen_bid),
                }
            }
            if let Some(b) = bid {
                let cleared = takes.iter().find(|t| t.0 == Side::Buy).map_or(seen_ask - 1, |t| t.1);
                prop_assert!(b <= cleared, "bid {} reaches what it saw offered", b);
            }
            if let Some(a) = ask {
                let cleared = takes.iter().find(|t| t.0 == Side::Sell).map_or(seen_bid + 1, |t| t.1);
                prop_assert!(a >= cleared, "ask {} reaches what it saw bid", a);
            }
            if let (Some(b), Some(a)) = (bid, ask) {
                prop_assert!(b < a);
                let unclamped = !stale_ask && !stale_bid && (b as f64) < seen_ask as f64 - 2.0
                    && (a as f64) > seen_bid as f64 + 2.0;
                if unclamped {
                    prop_assert!(((b + a) as f64 / 2.0 - value).abs() <= half + 1.0);
                }
            }
        }
    }

    #[test]
    fn maker_volatility_input_is_capped() {
        let dsg = Dsg::default();
        let quoted = |vol| {
            let v = View { vol_bps: Some(vol), best_bid: None, best_ask: None, ..view(0) };
            quotes_of(&market_maker(&dsg, &v, &mut Xoshiro256PlusPlus::seed_from_u64(2)))
        };
        let cap = dsg.mm_vol_cap * dsg.fv_vol_bps;
        assert_eq!(quoted(cap * 10.0), quoted(cap), "a volatility spike beyond the cap must not widen the quotes");
        assert_ne!(quoted(cap / 2.0), quoted(cap));
    }

    #[test]
    fn book_priced_makers_ignore_value() {
        let dsg = Dsg { mm_value_weight: 0.0, mm_value_noise_bps: 0.0, ..Dsg::default() };
        let far = View { fair_value: 90_000.0, ..view(0) };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
        assert_eq!(quotes_of(&market_maker(&dsg, &far, &mut rng)), quotes_of(&market_maker(&dsg, &view(0), &mut rng)));
        let (bid, ask, takes) = quotes_of(&market_maker(&Dsg::default(), &far, &mut rng));
        assert!(bid.unwrap() < 90_100 && ask.unwrap() < 90_100, "value-priced makers quote around value");
        assert!(takes.iter().any(|t| t.0 == Side::Sell), "and sell to a bid far above it");
    }

    #[test]
    fn a_stray_quote_cannot_drag_noise_limit_prices() {
        let dsg = Dsg { noise_market_rate: 0.0, ..Dsg::default() };
        // The ask side has thinned to one order 10% above the market; the last mid sample is 100,000.
        let stray = View { best_ask: Some(110_000), ..view(0) };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let mut flow = Metaorders::default();
        let ceiling = 100_000.0 * (1.0 + dsg.noise_clip_bps / 1e4);
        let mut buys = 0;
        for _ in 0..2_000 {
            if let [Intent::Limit { side: Side::Buy, price, .. }] = noise(&dsg, &stray, &mut flow, &mut rng)[..] {
                assert!((price as f64) < ceiling, "buy at {price} priced off the stray ask");
                buys += 1;
            }
        }
        assert!(buys > 500);
    }

    fn sign_acf(signs: &[f64], lag: usize) -> f64 {
        let n = signs.len() as f64;
        let mean = signs.iter().sum::<f64>() / n;
        let var: f64 = signs.iter().map(|s| (s - mean).powi(2)).sum();
        (lag..signs.len()).map(|i| (signs[i] - mean) * (signs[i - lag] - mean)).sum::<f64>() / var
    }

    fn flow_signs(metaorders: f64, tail: f64, n: usize) -> Vec<f64> {
        let dsg = Dsg { noise_metaorders: metaorders, noise_metaorder_tail: tail, ..Dsg::default() };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(6);
        let mut flow = Metaorders::default();
        (0..n).map(|_| f64::from(flow.next_side(&dsg, &mut rng).sign())).collect()
    }

    #[test]
    fn metaorder_lengths_follow_the_capped_power_law() {
        let dsg = Dsg { noise_metaorder_tail: 1.3, ..Dsg::default() };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let n = 400_000;
        let lengths: Vec<u32> = (0..n).map(|_| Metaorders::fresh(&dsg, &mut rng).1).collect();
        for k in [1u32, 2, 5, 20, 100, 500] {
            let share = lengths.iter().filter(|&&l| l >= k).count() as f64 / n as f64;
            let law = f64::from(k).powf(-1.3);
            assert!((share / law - 1.0).abs() < 0.1, "P(L >= {k}) = {share:.5}, the law says {law:.5}");
        }
        assert_eq!(lengths.iter().max(), Some(&(MAX_METAORDER_CHILDREN as u32)));
    }

    #[test]
    fn metaorders_give_the_flow_sign_memory_and_none_without_them() {
        let n = 400_000;
        let independent = flow_signs(0.0, 1.3, n);
        for lag in [1, 10, 100] {
            assert!(sign_acf(&independent, lag).abs() < 0.01, "no metaorders: lag {lag}");
        }
        // One metaorder at a time: C(lag) = sum over k > lag of P(L >= k) / E[L], about 0.71 at lag 1 and 0.11 at
        // lag 100 for tail 1.3 (a power law, where an exponential with the lag-1 value would be 1e-15).
        let split = flow_signs(1.0, 1.3, n);
        let (a1, a100) = (sign_acf(&split, 1), sign_acf(&split, 100));
        assert!((0.65..0.78).contains(&a1) && a100 > 0.05, "lag 1 {a1:.3}, lag 100 {a100:.3}");
        // Several metaorders at once dilute the memory.
        let shared = flow_signs(4.0, 1.3, n);
        assert!(sign_acf(&shared, 1) < a1 / 2.0 && sign_acf(&shared, 100) > 0.0);
        let buys = split.iter().filter(|s| **s > 0.0).count() as f64 / n as f64;
        assert!((buys - 0.5).abs() < 0.1, "metaorder signs are coin flips, buys {buys:.2}");
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
        let mut flow = Metaorders::default();
        let mut sizes = Vec::new();
        for _ in 0..20_000 {
            for intent in noise(&dsg, &view(0), &mut flow, &mut rng) {
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
