//! A slot's trading state apart from the network: the shared rule, the slot's virtual position, cash and PnL built
//! from its own fills, and the bracket of its open position. Each closed bar becomes a decision and the order legs
//! that carry it out; each trade print is checked against the bracket.
//!
//! Slots that share an account and a symbol share one exchange position (one-way mode), so the exchange's
//! position take-profit/stop-loss cannot hold one slot's bracket: the engine keeps each slot's bracket itself and,
//! when a print crosses a level, sends the market order that closes the slot's virtual position. Every order
//! belongs to one slot (its orderLinkId says which), and the sum of the slots' positions is the account's.

use apex_core::Side;
use apex_rule::{Bar, Decision, Instrument, RuleError, RuleParams, TradeRule};

/// Why an order is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Opens the position of an entry decision (carries its bracket).
    Entry,
    /// Closes the position on an exit or reverse decision.
    Exit,
    /// Closes the position when a print crossed the stop.
    Stop,
    /// Closes the position when a print crossed the take-profit.
    Take,
    /// Closes whatever is left (shutdown, reconciliation).
    Flatten,
}

impl Purpose {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Entry => "entry",
            Purpose::Exit => "exit",
            Purpose::Stop => "stop",
            Purpose::Take => "take",
            Purpose::Flatten => "flatten",
        }
    }

    /// The purpose named `text` (as [`Purpose::as_str`] writes it).
    #[must_use]
    pub fn parse(text: &str) -> Option<Purpose> {
        [Purpose::Entry, Purpose::Exit, Purpose::Stop, Purpose::Take, Purpose::Flatten]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

/// One order a slot wants sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leg {
    pub purpose: Purpose,
    pub side: Side,
    /// Base units (a whole number of the instrument's steps).
    pub qty: f64,
    /// The bracket an entry opens.
    pub stop: Option<f64>,
    pub take: Option<f64>,
}

/// The bracket of the open position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bracket {
    pub stop: f64,
    pub take: f64,
    /// A closing order for it was planned (it is not planned twice).
    pub triggered: bool,
}

/// A slot's own accounting: capital (a runtime value), realized PnL and fees from its fills, and its position.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SlotBook {
    pub capital: f64,
    pub realized: f64,
    pub fees: f64,
    /// Signed base units.
    pub position: f64,
    /// Average entry price of the open position.
    pub avg_price: f64,
}

impl SlotBook {
    /// Capital plus realized PnL minus fees.
    #[must_use]
    pub fn cash(&self) -> f64 {
        self.capital + self.realized - self.fees
    }

    /// PnL of the open position marked at `mark`.
    #[must_use]
    pub fn unrealized(&self, mark: f64) -> f64 {
        if self.position == 0.0 || !mark.is_finite() { 0.0 } else { self.position * (mark - self.avg_price) }
    }

    /// Cash plus the open position marked at `mark`.
    #[must_use]
    pub fn equity(&self, mark: f64) -> f64 {
        self.cash() + self.unrealized(mark)
    }

    /// Books one fill (`fee` in quote units); `dust` is the quantity below which a position counts as closed.
    pub fn apply(&mut self, side: Side, qty: f64, price: f64, fee: f64, dust: f64) {
        let signed = f64::from(side.sign()) * qty;
        self.fees += fee;
        if self.position == 0.0 || self.position.signum() == signed.signum() {
            let held = self.position.abs();
            self.avg_price = (self.avg_price * held + price * qty) / (held + qty);
            self.position += signed;
            return;
        }
        let closing = qty.min(self.position.abs());
        self.realized += closing * (price - self.avg_price) * self.position.signum();
        let after = self.position + signed;
        if after.abs() <= dust {
            self.position = 0.0;
            self.avg_price = 0.0;
        } else if after.signum() == self.position.signum() {
            self.position = after;
        } else {
            // Through zero: the rest opens the other way at this price.
            self.position = after;
            self.avg_price = price;
        }
    }
}

/// The decision state of one slot (see the module documentation).
#[derive(Debug, Clone)]
pub struct SlotCore {
    name: String,
    rule: TradeRule,
    book: SlotBook,
    bracket: Option<Bracket>,
}

impl SlotCore {
    /// A flat slot with `capital`, trading by `params` within `instrument`.
    ///
    /// # Errors
    /// [`RuleError::BadParam`] for a parameter or instrument limit out of range.
    pub fn new(name: &str, capital: f64, params: RuleParams, instrument: Instrument) -> Result<SlotCore, RuleError> {
        Ok(SlotCore {
            name: name.to_owned(),
            rule: TradeRule::new(params, instrument)?,
            book: SlotBook { capital, ..SlotBook::default() },
            bracket: None,
        })
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn rule(&self) -> &TradeRule {
        &self.rule
    }

    #[must_use]
    pub fn book(&self) -> &SlotBook {
        &self.book
    }

    #[must_use]
    pub fn bracket(&self) -> Option<Bracket> {
        self.bracket
    }

    /// Sets the slot's capital (a capital reallocation); PnL and position are kept.
    pub fn set_capital(&mut self, capital: f64) {
        self.book.capital = capital;
    }

    /// Restores the bracket of a position found open at a restart.
    pub fn restore_bracket(&mut self, stop: f64, take: f64) {
        if self.book.position != 0.0 {
            self.bracket = Some(Bracket { stop, take, triggered: false });
        }
    }

    fn dust(&self) -> f64 {
        let step = self.rule.instrument().qty_step;
        if step > 0.0 { step / 2.0 } else { 1e-12 }
    }

    /// A bar closed: the rule's decision on `signal` (and the model's `p_up`, if any) with the slot's equity
    /// marked at the close, and the legs that carry it out: the whole position closed first, then the entry.
    pub fn on_bar(&mut self, bar: &Bar, signal: f64, p_up: Option<f64>) -> (Decision, Vec<Leg>) {
        let equity = self.book.equity(bar.close);
        let decision = self.rule.on_bar(bar, signal, equity, p_up);
        let mut legs = Vec::new();
        if decision.closes() && self.book.position != 0.0 {
            let side = if self.book.position > 0.0 { Side::Sell } else { Side::Buy };
            legs.push(Leg { purpose: Purpose::Exit, side, qty: self.book.position.abs(), stop: None, take: None });
        }
        if let Some(entry) = decision.entry() {
            legs.push(Leg {
                purpose: Purpose::Entry,
                side: entry.side,
                qty: entry.qty,
                stop: Some(entry.stop),
                take: Some(entry.take),
            });
        }
        (decision, legs)
    }

    /// A trade printed at `price`: the leg closing the position when it crosses the bracket (the stop first when a
    /// price is beyond both), planned once per position.
    pub fn check_bracket(&mut self, price: f64) -> Option<Leg> {
        let bracket = self.bracket.as_mut()?;
        if bracket.triggered || self.book.position == 0.0 {
            return None;
        }
        let long = self.book.position > 0.0;
        let stopped = if long { price <= bracket.stop } else { price >= bracket.stop };
        let taken = if long { price >= bracket.take } else { price <= bracket.take };
        let purpose = if stopped {
            Purpose::Stop
        } else if taken {
            Purpose::Take
        } else {
            return None;
        };
        bracket.triggered = true;
        let side = if long { Side::Sell } else { Side::Buy };
        Some(Leg { purpose, side, qty: self.book.position.abs(), stop: None, take: None })
    }

    /// The legs that close whatever the slot holds (shutdown, reconciliation).
    #[must_use]
    pub fn flatten(&self) -> Option<Leg> {
        (self.book.position != 0.0).then(|| Leg {
            purpose: Purpose::Flatten,
            side: if self.book.position > 0.0 { Side::Sell } else { Side::Buy },
            qty: self.book.position.abs(),
            stop: None,
            take: None,
        })
    }

    /// One fill of one of the slot's orders; `bracket` is the (stop, take) of the order when it is an entry.
    pub fn on_fill(&mut self, side: Side, qty: f64, price: f64, fee: f64, bracket: Option<(f64, f64)>) {
        let before = self.book.position;
        self.book.apply(side, qty, price, fee, self.dust());
        self.rule.on_fill(side, qty, price, fee);
        let after = self.book.position;
        if after == 0.0 {
            self.bracket = None;
        } else if let Some((stop, take)) = bracket
            && (before == 0.0 || before.signum() != after.signum() || self.bracket.is_none())
        {
            self.bracket = Some(Bracket { stop, take, triggered: false });
        }
    }

    /// The closing order of a bracket did not close the position (refused, cancelled, cut short): the bracket may
    /// trigger again. True when it had triggered (a bracket set since, by a new position, was not waiting on it).
    pub fn rearm_bracket(&mut self) -> bool {
        self.bracket.as_mut().is_some_and(|bracket| std::mem::replace(&mut bracket.triggered, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> SlotCore {
        let lots = Instrument { tick: 0.1, qty_step: 0.001, min_qty: 0.001, max_qty: 100.0, min_notional: 0.0 };
        SlotCore::new("btc-a", 200.0, RuleParams::default(), lots).unwrap()
    }

    fn bar(close: f64) -> Bar {
        Bar { open: close, high: close + 50.0, low: close - 50.0, close }
    }

    #[test]
    fn an_entry_brackets_the_position_and_a_print_through_the_stop_closes_it_once() {
        let mut slot = core();
        let (decision, legs) = slot.on_bar(&bar(100_000.0), 1.0, None);
        assert!(matches!(decision, Decision::Enter(_)));
        let entry = legs[0];
        assert_eq!((entry.purpose, entry.side), (Purpose::Entry, Side::Buy));
        slot.on_fill(Side::Buy, entry.qty, 100_010.0, 0.05, Some((entry.stop.unwrap(), entry.take.unwrap())));
        assert!(slot.check_bracket(100_000.0).is_none());
        let stop = slot.check_bracket(entry.stop.unwrap() - 1.0).unwrap();
        assert_eq!((stop.purpose, stop.side, stop.qty), (Purpose::Stop, Side::Sell, entry.qty));
        assert!(slot.check_bracket(entry.stop.unwrap() - 2.0).is_none(), "planned once");
        slot.rearm_bracket();
        assert!(slot.check_bracket(entry.stop.unwrap() - 2.0).is_some());
        slot.on_fill(Side::Sell, entry.qty, entry.stop.unwrap(), 0.05, None);
        assert_eq!(slot.book().position, 0.0);
        assert!(slot.bracket().is_none());
        assert_eq!(slot.rule().trades(), (1, 0));
        let expected = 200.0 + entry.qty * (entry.stop.unwrap() - 100_010.0) - 0.1;
        assert!((slot.book().equity(1.0) - expected).abs() < 1e-9);
    }

    #[test]
    fn a_close_cut_short_of_the_position_rearms_for_the_rest_and_a_bracket_set_since_is_not_rearmed() {
        let mut slot = core();
        slot.on_fill(Side::Buy, 0.046, 100_000.0, 0.0, Some((99_000.0, 101_000.0)));
        let take = slot.check_bracket(101_500.0).unwrap();
        assert_eq!((take.purpose, take.qty), (Purpose::Take, 0.046));
        // The order limits cut the close to 0.045 and all of it traded: 0.001 stays open behind a triggered bracket.
        slot.on_fill(Side::Sell, 0.045, 101_500.0, 0.0, None);
        assert!(slot.check_bracket(101_600.0).is_none(), "a triggered bracket waits on its close");
        assert!(slot.rearm_bracket(), "the close it waited on ended");
        let rest = slot.check_bracket(101_600.0).unwrap();
        assert_eq!((rest.purpose, rest.side), (Purpose::Take, Side::Sell));
        assert!((rest.qty - 0.001).abs() < 1e-12, "{}", rest.qty);
        slot.on_fill(Side::Sell, rest.qty, 101_600.0, 0.0, None);
        assert_eq!(slot.book().position, 0.0);
        assert!(!slot.rearm_bracket(), "flat: nothing to re-arm");
        slot.on_fill(Side::Buy, 0.046, 100_000.0, 0.0, Some((99_000.0, 101_000.0)));
        assert!(!slot.rearm_bracket(), "the new position's bracket never triggered");
    }

    #[test]
    fn a_reverse_closes_the_whole_position_then_enters() {
        let mut slot = core();
        let (_, legs) = slot.on_bar(&bar(100_000.0), 1.0, None);
        slot.on_fill(Side::Buy, legs[0].qty, 100_000.0, 0.0, Some((99_000.0, 103_000.0)));
        let (decision, legs) = slot.on_bar(&bar(100_100.0), -1.0, None);
        assert!(matches!(decision, Decision::Reverse(_)));
        assert_eq!(legs.len(), 2);
        assert_eq!((legs[0].purpose, legs[0].side), (Purpose::Exit, Side::Sell));
        assert_eq!((legs[1].purpose, legs[1].side), (Purpose::Entry, Side::Sell));
        assert!(legs[1].stop.unwrap() > 100_100.0 && legs[1].take.unwrap() < 100_100.0);
    }

    #[test]
    fn the_book_keeps_cash_and_position_through_zero() {
        let mut book = SlotBook { capital: 100.0, ..SlotBook::default() };
        book.apply(Side::Buy, 2.0, 10.0, 0.1, 1e-9);
        book.apply(Side::Sell, 3.0, 12.0, 0.2, 1e-9);
        assert_eq!((book.position, book.avg_price), (-1.0, 12.0));
        assert!((book.realized - 4.0).abs() < 1e-12 && (book.cash() - 103.7).abs() < 1e-12);
        assert!((book.equity(11.0) - 104.7).abs() < 1e-12);
    }
}
