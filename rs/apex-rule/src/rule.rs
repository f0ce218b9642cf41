//! The streaming rule: bars, signals and equity in, decisions out; fills in, position and trade record kept.

use std::collections::VecDeque;

use apex_core::Side;

use crate::{Instrument, RuleError, RuleParams};

/// One closed bar as the rule sees it (quote units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

/// A position to open: side, size and bracket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub side: Side,
    /// Quantity in base units, already rounded to the instrument's step.
    pub qty: f64,
    /// The price the levels are set from: the close of the decision's bar.
    pub reference: f64,
    /// Distance from the reference to the stop.
    pub stop_distance: f64,
    /// Stop-loss level (below the reference for a long), rounded to the tick.
    pub stop: f64,
    /// Take-profit level, `reward_risk` stop distances away on the other side, rounded to the tick.
    pub take: f64,
    /// The win probability the size came from.
    pub win_probability: f64,
    /// Share of equity at risk: the clamped half-Kelly fraction times |signal|.
    pub risk_fraction: f64,
}

/// What the rule wants done after a bar closes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Nothing: keep the position (or stay flat).
    Hold,
    /// Close the whole position.
    Exit,
    /// Open a position (the rule is flat).
    Enter(Entry),
    /// Close the whole position, then open this one the other way.
    Reverse(Entry),
}

impl Decision {
    /// A short name: "hold", "exit", "enter", "reverse".
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Hold => "hold",
            Decision::Exit => "exit",
            Decision::Enter(_) => "enter",
            Decision::Reverse(_) => "reverse",
        }
    }

    /// The position to open, if any.
    #[must_use]
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Decision::Enter(entry) | Decision::Reverse(entry) => Some(entry),
            Decision::Hold | Decision::Exit => None,
        }
    }

    /// Whether the current position is to be closed first.
    #[must_use]
    pub fn closes(&self) -> bool {
        matches!(self, Decision::Exit | Decision::Reverse(_))
    }
}

/// The half-Kelly risk fraction for win probability `p` and payoff `b`:
/// `clamp(kelly_scale * (p * b - (1 - p)) / b, min_fraction, max_fraction)`.
#[must_use]
pub fn kelly_fraction(p: f64, params: &RuleParams) -> f64 {
    let b = params.reward_risk;
    let kelly = (p * b - (1.0 - p)) / b;
    (params.kelly_scale * kelly).clamp(params.min_fraction, params.max_fraction)
}

/// The open trade as the fills built it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Book {
    /// Signed position in base units (+ long).
    qty: f64,
    /// Average entry price of the open quantity.
    avg_price: f64,
    /// Sum of quantity x price of the fills that opened or added to the trade.
    entry_value: f64,
    /// Quantity opened over the trade's life (the dust tolerance scales with it).
    opened: f64,
    /// Realized PnL and fees of the trade so far.
    realized: f64,
    fees: f64,
}

/// The trading rule of one slot (see the crate documentation).
#[derive(Debug, Clone)]
pub struct TradeRule {
    params: RuleParams,
    instrument: Instrument,
    true_ranges: VecDeque<f64>,
    previous_close: Option<f64>,
    /// Win (true) or loss of the last `kelly_window` closed trades, oldest first.
    record: VecDeque<bool>,
    book: Book,
    trades: usize,
    wins: usize,
    /// Net return of the last closed trade.
    last_return: Option<f64>,
}

impl TradeRule {
    /// A flat rule with no history.
    ///
    /// # Errors
    /// [`RuleError::BadParam`] for a parameter or instrument limit out of range.
    pub fn new(params: RuleParams, instrument: Instrument) -> Result<TradeRule, RuleError> {
        params.validate()?;
        instrument.validate()?;
        Ok(TradeRule {
            true_ranges: VecDeque::with_capacity(params.atr_window + 1),
            record: VecDeque::with_capacity(params.kelly_window + 1),
            params,
            instrument,
            previous_close: None,
            book: Book::default(),
            trades: 0,
            wins: 0,
            last_return: None,
        })
    }

    #[must_use]
    pub fn params(&self) -> &RuleParams {
        &self.params
    }

    #[must_use]
    pub fn instrument(&self) -> &Instrument {
        &self.instrument
    }

    /// The direction a signal asks for: +1, -1 or 0 (flat).
    #[must_use]
    pub fn direction(&self, signal: f64) -> i8 {
        let signal = if signal.is_nan() { 0.0 } else { signal.clamp(-1.0, 1.0) };
        if signal != 0.0 && signal.abs() >= self.params.entry_threshold { if signal > 0.0 { 1 } else { -1 } } else { 0 }
    }

    /// The slot's position in base units as the reported fills built it (+ long, - short).
    #[must_use]
    pub fn position(&self) -> f64 {
        self.book.qty
    }

    /// Average entry price of the open position (0 when flat).
    #[must_use]
    pub fn entry_price(&self) -> f64 {
        if self.book.qty == 0.0 { 0.0 } else { self.book.avg_price }
    }

    /// Closed trades and the winners among them, over the rule's whole life.
    #[must_use]
    pub fn trades(&self) -> (usize, usize) {
        (self.trades, self.wins)
    }

    /// Net return (after both fees, over the entry notional) of the last closed trade.
    #[must_use]
    pub fn last_return(&self) -> Option<f64> {
        self.last_return
    }

    /// The record-based win probability: `(wins + p0 * n0) / (trades + n0)` over the last `kelly_window` trades.
    #[must_use]
    pub fn win_estimate(&self) -> f64 {
        let wins = self.record.iter().filter(|&&win| win).count() as f64;
        let n0 = self.params.prior_trades;
        (wins + self.params.prior_win_rate * n0) / (self.record.len() as f64 + n0)
    }

    /// The current average true range (0 before the first bar).
    #[must_use]
    pub fn atr(&self) -> f64 {
        if self.true_ranges.is_empty() {
            0.0
        } else {
            self.true_ranges.iter().sum::<f64>() / self.true_ranges.len() as f64
        }
    }

    /// A bar closed: `signal` is the strategy's signal on it, `equity` the slot's equity marked at its close, and
    /// `p_up` (optional) a model's probability that the price rises, used instead of the record's win rate.
    pub fn on_bar(&mut self, bar: &Bar, signal: f64, equity: f64, p_up: Option<f64>) -> Decision {
        let true_range = match self.previous_close {
            None => bar.high - bar.low,
            Some(previous) => (bar.high - bar.low).max((bar.high - previous).abs()).max((bar.low - previous).abs()),
        };
        if self.true_ranges.len() == self.params.atr_window {
            self.true_ranges.pop_front();
        }
        self.true_ranges.push_back(true_range);
        self.previous_close = Some(bar.close);

        let wanted = self.direction(signal);
        let current = if self.book.qty > 0.0 {
            1
        } else if self.book.qty < 0.0 {
            -1
        } else {
            0
        };
        if wanted == current {
            return Decision::Hold;
        }
        let entry = if wanted == 0 { None } else { self.entry(bar.close, wanted, signal, equity, p_up) };
        match (current, entry) {
            (0, Some(entry)) => Decision::Enter(entry),
            (0, None) => Decision::Hold,
            (_, Some(entry)) => Decision::Reverse(entry),
            (_, None) => Decision::Exit,
        }
    }

    /// Size and bracket of a new position in direction `wanted`, or `None` when it rounds to no order.
    fn entry(&self, reference: f64, wanted: i8, signal: f64, equity: f64, p_up: Option<f64>) -> Option<Entry> {
        let params = &self.params;
        if !(equity.is_finite() && equity > 0.0 && reference.is_finite() && reference > 0.0) {
            return None;
        }
        let stop_distance = (params.stop_atr_mult * self.atr()).max(params.stop_min_bps * reference / 1e4);
        let long = wanted > 0;
        let win_probability = match p_up {
            Some(p) if p.is_finite() => (if long { p } else { 1.0 - p }).clamp(0.0, 1.0),
            _ => self.win_estimate(),
        };
        let risk_fraction = kelly_fraction(win_probability, params) * signal.abs().min(1.0);
        let qty = (risk_fraction * equity / stop_distance).min(params.max_leverage * equity / reference);
        let qty = self.instrument.round_qty(qty);
        if qty <= 0.0 || qty * reference < self.instrument.min_notional {
            return None;
        }
        let sign = f64::from(wanted);
        let stop = self.instrument.round_price(reference - sign * stop_distance);
        let take = self.instrument.round_price(reference + sign * params.reward_risk * stop_distance);
        if !(stop > 0.0 && take > 0.0) {
            return None;
        }
        let side = if long { Side::Buy } else { Side::Sell };
        Some(Entry { side, qty, reference, stop_distance, stop, take, win_probability, risk_fraction })
    }

    /// One fill of the slot's orders: `qty` base units bought or sold at `price`, paying `fee` (quote units,
    /// negative for a rebate). A fill that takes the position through zero closes the trade and opens the rest.
    pub fn on_fill(&mut self, side: Side, qty: f64, price: f64, fee: f64) {
        if !(qty.is_finite() && qty > 0.0 && price.is_finite()) {
            return;
        }
        let sign = f64::from(side.sign());
        let book = &mut self.book;
        if book.qty == 0.0 || book.qty.signum() == sign {
            let held = book.qty.abs();
            book.avg_price = if held == 0.0 { price } else { (book.avg_price * held + price * qty) / (held + qty) };
            book.qty += sign * qty;
            book.entry_value += qty * price;
            book.opened += qty;
            book.fees += fee;
            return;
        }
        let held = book.qty.abs();
        let dust = book.opened * 1e-9;
        // Within dust of the whole position: the fill closes it (partial fills summed in floating point).
        let closing = if qty >= held - dust { held } else { qty };
        let direction = book.qty.signum();
        let share = closing.min(qty) / qty;
        book.realized += closing * (price - book.avg_price) * direction;
        book.fees += fee * share;
        book.qty = if closing == held { 0.0 } else { book.qty - direction * closing };
        if book.qty == 0.0 {
            self.close_trade();
            let rest = qty - closing;
            if rest > dust {
                self.on_fill(side, rest, price, fee * (1.0 - share));
            }
        }
    }

    fn close_trade(&mut self) {
        let book = std::mem::take(&mut self.book);
        let trade_return = if book.entry_value > 0.0 { (book.realized - book.fees) / book.entry_value } else { 0.0 };
        let win = trade_return > 0.0;
        if self.record.len() == self.params.kelly_window {
            self.record.pop_front();
        }
        self.record.push_back(win);
        self.trades += 1;
        self.wins += usize::from(win);
        self.last_return = Some(trade_return);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(close: f64) -> Bar {
        Bar { open: close, high: close + 1.0, low: close - 1.0, close }
    }

    #[test]
    fn half_kelly_with_a_three_to_one_bracket() {
        let params = RuleParams { min_fraction: 0.0, max_fraction: 1.0, ..RuleParams::default() };
        // p = 0.5, b = 3: f* = (1.5 - 0.5) / 3 = 1/3, half of it 1/6.
        assert!((kelly_fraction(0.5, &params) - 1.0 / 6.0).abs() < 1e-15);
        // Break-even at p = 1 / (1 + b) = 0.25.
        assert_eq!(kelly_fraction(0.25, &params), 0.0);
        assert_eq!(kelly_fraction(0.1, &RuleParams::default()), RuleParams::default().min_fraction);
    }

    #[test]
    fn enters_holds_reverses_and_exits() {
        let mut rule = TradeRule::new(RuleParams::default(), Instrument::CONTINUOUS).unwrap();
        assert_eq!(rule.on_bar(&bar(100.0), 0.0, 200.0, None), Decision::Hold);
        let Decision::Enter(entry) = rule.on_bar(&bar(100.0), 1.0, 200.0, None) else { panic!("expected an entry") };
        // ATR 2 (each bar's range), stop 4 away, take 12 away; prior p = 0.3: f = 0.5 * 0.2 / 3.
        assert_eq!((entry.side, entry.stop, entry.take, entry.reference), (Side::Buy, 96.0, 112.0, 100.0));
        let f = 0.5 * (0.3 * 3.0 - 0.7) / 3.0;
        assert!((entry.qty - f * 200.0 / 4.0).abs() < 1e-12, "{entry:?}");
        // Not filled yet: still flat, so the same signal asks to enter again.
        assert!(matches!(rule.on_bar(&bar(100.0), 1.0, 200.0, None), Decision::Enter(_)));
        rule.on_fill(Side::Buy, entry.qty, 100.0, 0.0);
        assert_eq!(rule.on_bar(&bar(101.0), 0.5, 200.0, None), Decision::Hold);
        assert!(matches!(rule.on_bar(&bar(101.0), -1.0, 200.0, None), Decision::Reverse(e) if e.side == Side::Sell));
        assert_eq!(rule.on_bar(&bar(101.0), 0.0, 200.0, None), Decision::Exit);
        rule.on_fill(Side::Sell, entry.qty, 103.0, 0.0);
        assert_eq!(rule.position(), 0.0);
        assert_eq!(rule.trades(), (1, 1));
        assert!((rule.last_return().unwrap() - 0.03).abs() < 1e-12);
    }

    #[test]
    fn a_fill_through_zero_closes_the_trade_and_opens_the_rest() {
        let mut rule = TradeRule::new(RuleParams::default(), Instrument::CONTINUOUS).unwrap();
        rule.on_fill(Side::Buy, 2.0, 100.0, 0.2);
        rule.on_fill(Side::Sell, 5.0, 99.0, 0.5);
        assert_eq!(rule.trades(), (1, 0));
        // Loss 2 x 1, fees 0.2 + 0.5 * 2/5, over an entry notional of 200.
        assert!((rule.last_return().unwrap() - (-2.0 - 0.4) / 200.0).abs() < 1e-12);
        assert_eq!(rule.position(), -3.0);
        assert_eq!(rule.entry_price(), 99.0);
    }

    #[test]
    fn instrument_limits_round_and_refuse() {
        let lots = Instrument { tick: 0.5, qty_step: 0.1, min_qty: 0.1, max_qty: 2.0, min_notional: 5.0 };
        assert_eq!(lots.round_qty(0.35), 0.30000000000000004);
        assert_eq!(lots.round_qty(0.3), 0.30000000000000004);
        assert_eq!(lots.round_qty(0.05), 0.0);
        assert_eq!(lots.round_qty(7.0), 2.0);
        assert_eq!(lots.round_price(100.26), 100.5);
        let mut rule = TradeRule::new(RuleParams::default(), lots).unwrap();
        // $1 of equity risks cents: 0.0x base units round to nothing, so no entry.
        assert_eq!(rule.on_bar(&bar(100.0), 1.0, 1.0, None), Decision::Hold);
    }

    #[test]
    fn a_model_probability_replaces_the_record() {
        let params = RuleParams { min_fraction: 0.0, ..RuleParams::default() };
        let mut rule = TradeRule::new(params, Instrument::CONTINUOUS).unwrap();
        let Decision::Enter(long) = rule.on_bar(&bar(100.0), 1.0, 200.0, Some(0.6)) else { panic!() };
        assert_eq!(long.win_probability, 0.6);
        let Decision::Enter(short) = rule.on_bar(&bar(100.0), -1.0, 200.0, Some(0.6)) else { panic!() };
        assert!((short.win_probability - 0.4).abs() < 1e-15);
        // p below break-even with no floor: a zero fraction is no entry.
        assert_eq!(rule.on_bar(&bar(100.0), 1.0, 200.0, Some(0.2)), Decision::Hold);
    }
}
