//! Recovery of lost private updates: when an account's private stream dropped events, or an order's end or fills
//! are overdue, the engine reads what it missed from the REST history (executions, then each overdue order) instead
//! of trading on a position it does not know for the minute `OPEN_ENTRY_LIMIT` allows.

use std::time::{Duration, Instant};

use apex_bybit::rest::order::CancelOrderRequest;
use apex_bybit::{Category, OrderStatus};

use super::{Engine, dec};
use crate::NexusError;
use crate::ledger::LIVE_STATUSES;

/// How long an answered market order may go without word on how it ended, and an ended order without its fills
/// booked, before the engine asks the REST history. The private streams report both within a second or so.
pub(super) const RECOVER_AFTER: Duration = Duration::from_secs(5);

/// An order whose end is due and not known: a market order once sent (`answered` is when its create's answer came
/// back; `None` while the request is on its way: its answer, not the REST history, settles it then), a resting order
/// once its cancel is answered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Awaited {
    pub index: usize,
    pub answered: Option<Instant>,
}

/// True for a ledger status of an order the exchange may still hold open: a live one ([`LIVE_STATUSES`]), one whose
/// create's outcome is `unknown`, or an open Bybit status.
fn still_live(status: &str) -> bool {
    status == "unknown" || LIVE_STATUSES.contains(&status) || OrderStatus::from(status).is_open()
}

/// Why an account's private updates are read back (the start of the ledger's `private_recovery` detail).
struct Recovery {
    dropped: u64,
    overdue: Vec<String>,
    unbooked: Vec<String>,
}

impl Engine {
    /// An order was sent (market orders are awaited: see [`Awaited`]).
    pub(super) fn await_end(&mut self, link: &str, index: usize, resting: bool) {
        if !resting {
            self.awaiting.insert(link.to_owned(), Awaited { index, answered: None });
        }
    }

    /// The cancel of resting order `link` was answered: its end is awaited (see [`Awaited`]) unless the order stream
    /// already reported it.
    pub(super) fn await_cancelled(&mut self, link: &str) -> Result<(), NexusError> {
        let Some(&index) = self.links.get(link) else { return Ok(()) };
        if self.ledger.order(link)?.is_some_and(|order| still_live(&order.status)) {
            self.awaiting.insert(link.to_owned(), Awaited { index, answered: Some(Instant::now()) });
        }
        Ok(())
    }

    /// Its create's answer came back (acknowledged, or an outcome the engine cannot know).
    pub(super) fn answered(&mut self, link: &str) {
        if let Some(awaited) = self.awaiting.get_mut(link) {
            awaited.answered = Some(Instant::now());
        }
    }

    /// Reads back, per account, the private updates it has lost or that are overdue (see [`RECOVER_AFTER`]), at most
    /// once per [`RECOVER_AFTER`] an account.
    ///
    /// # Errors
    /// `Ledger` failures; a REST failure is noted in the event and a later call tries again.
    pub(super) async fn recover_lost(&mut self) -> Result<(), NexusError> {
        let names: Vec<String> = self.accounts.keys().cloned().collect();
        for account in names {
            let entry = &self.accounts[&account];
            if entry.recovered_at.is_some_and(|t| t.elapsed() < RECOVER_AFTER) {
                continue;
            }
            let total = entry.private.as_ref().map_or(0, |feed| feed.status().borrow().events_dropped);
            let dropped = total.saturating_sub(entry.dropped_seen);
            let mine = |index: usize| self.slots[index].account == account;
            let mut overdue: Vec<String> = self
                .awaiting
                .iter()
                .filter(|(link, a)| {
                    mine(a.index)
                        && !self.unbooked.contains_key(*link)
                        && a.answered.is_some_and(|t| t.elapsed() >= RECOVER_AFTER)
                })
                .map(|(link, _)| link.clone())
                .collect();
            let mut unbooked: Vec<String> = self
                .unbooked
                .iter()
                .filter(|(_, u)| mine(u.index) && u.since.elapsed() >= RECOVER_AFTER)
                .map(|(link, _)| link.clone())
                .collect();
            if dropped == 0 && overdue.is_empty() && unbooked.is_empty() {
                continue;
            }
            overdue.sort_unstable();
            unbooked.sort_unstable();
            if let Some(entry) = self.accounts.get_mut(&account) {
                entry.recovered_at = Some(Instant::now());
                entry.dropped_seen = total;
            }
            self.recover(&account, Recovery { dropped, overdue, unbooked }).await?;
        }
        Ok(())
    }

    /// Books the account's executions the ledger lacks (the catch-up, plus those of each unbooked order), then asks
    /// how each overdue order ended and ends it as the order stream would have; records a `private_recovery` event
    /// saying why and what was found.
    async fn recover(&mut self, account: &str, why: Recovery) -> Result<(), NexusError> {
        let fills_before = self.summary.fills;
        let rest = self.accounts[account].rest.clone();
        let mut found = Vec::new();
        if let Err(e) = self.catch_up_executions(account, "recover").await {
            found.push(format!("execution history unavailable ({e})"));
        }
        // The catch-up covers every order still live in the ledger; an unbooked order's end may already be recorded
        // there (cancelled after a partial fill), so its executions are asked by its orderLinkId.
        for link in &why.unbooked {
            if let Err(e) = self.book_executions(account, Some(link), None, "recover").await {
                found.push(format!("{link} executions unavailable ({e})"));
            }
        }
        for link in &why.overdue {
            let Some(awaited) = self.awaiting.get(link).copied() else { continue };
            let Some(order) = self.ledger.order(link)? else {
                self.settled(awaited.index, link);
                continue;
            };
            match rest.find_order(&Category::Linear, &order.intent.symbol, link).await {
                Ok(Some(exchange)) if !exchange.order_status.is_open() => {
                    let status = format!("{:?}", exchange.order_status);
                    let filled = dec(&exchange.cum_exec_qty);
                    self.ledger.update_order(link, &status, Some(&exchange.order_id), None, Some("recovered"), None)?;
                    found.push(format!("{link} {status}"));
                    // Its order message may still come: the end is taken once (a bracket re-armed twice could
                    // close the position twice).
                    self.recovered_ends.insert(link.clone());
                    self.order_ended(awaited.index, link, filled)?;
                }
                // A resting order still open after its cancel was answered: the cancel failed, so it goes again
                // (else it would rest on the exchange, unwatched, with its decision long stale).
                Ok(Some(exchange)) if order.intent.price.is_some() => {
                    let cancel = CancelOrderRequest::of_link(Category::Linear, &order.intent.symbol, link);
                    let why = "recovered: still open";
                    let outcome = match rest.cancel_order(&cancel).await {
                        Ok(_) => {
                            self.ledger.order_event(link, "cancel", None, Some(why), None)?;
                            "cancelled again".to_owned()
                        }
                        Err(e) => {
                            self.ledger.order_event(
                                link,
                                "cancel_refused",
                                None,
                                Some(&format!("{why}: {e}")),
                                None,
                            )?;
                            format!("cancel refused again ({e})")
                        }
                    };
                    found.push(format!("{link} still {:?}, {outcome}", exchange.order_status));
                    self.answered(link);
                }
                Ok(Some(exchange)) => found.push(format!("{link} still {:?}", exchange.order_status)),
                // The create's outcome was not known and the exchange has no such order: it never arrived.
                Ok(None) if order.status == "unknown" => {
                    let note = Some("recovered: unknown to the exchange");
                    self.ledger.update_order(link, "never_sent", None, None, note, None)?;
                    found.push(format!("{link} never placed"));
                    self.settled(awaited.index, link);
                }
                Ok(None) => found.push(format!("{link} not found")),
                Err(e) => found.push(format!("{link} lookup failed ({e})")),
            }
        }
        let mut detail = format!("{account}:");
        if why.dropped > 0 {
            detail += &format!(" the private stream dropped {} event(s);", why.dropped);
        }
        let after = RECOVER_AFTER.as_secs();
        if !why.overdue.is_empty() {
            detail += &format!(" no end heard of {} in {after} s;", why.overdue.join(", "));
        }
        if !why.unbooked.is_empty() {
            detail += &format!(" fills of {} not heard of in {after} s;", why.unbooked.join(", "));
        }
        detail += &format!(" booked {} fill(s) from the REST history", self.summary.fills - fills_before);
        if !found.is_empty() {
            detail += &format!("; {}", found.join(", "));
        }
        self.ledger.record_event("private_recovery", &detail, None)?;
        let _ = self.ledger.request_sync();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::still_live;

    #[test]
    fn an_order_is_live_until_the_exchange_ends_it() {
        for status in ["intent", "sent", "unknown", "New", "PartiallyFilled", "Untriggered"] {
            assert!(still_live(status), "{status}");
        }
        for status in ["Filled", "Cancelled", "Rejected", "PartiallyFilledCanceled", "Deactivated", "never_sent"] {
            assert!(!still_live(status), "{status}");
        }
    }
}
