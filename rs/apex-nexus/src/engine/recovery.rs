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

/// What an account's private updates need reading back for at `now`, if anything: events its private feed dropped
/// since the last recovery (`dropped_total` against `dropped_seen`), its orders whose end is overdue (`awaiting`:
/// each with when its create or cancel was answered), and its ended orders whose fills are overdue (`unbooked`: each
/// with since when). Nothing within [`RECOVER_AFTER`] of the last recovery (`recovered_at`).
fn due<'a>(
    recovered_at: Option<Instant>,
    dropped_total: u64,
    dropped_seen: u64,
    awaiting: impl Iterator<Item = (&'a String, Option<Instant>)>,
    unbooked: impl Iterator<Item = (&'a String, Instant)>,
    now: Instant,
) -> Option<Recovery> {
    let waited = |since: Instant| now.saturating_duration_since(since) >= RECOVER_AFTER;
    if recovered_at.is_some_and(|t| !waited(t)) {
        return None;
    }
    let unbooked: Vec<(&String, Instant)> = unbooked.collect();
    // An unbooked order's end is known: what may be overdue is its fills, read back as such.
    let mut overdue: Vec<String> = awaiting
        .filter(|&(link, answered)| answered.is_some_and(waited) && !unbooked.iter().any(|&(u, _)| u == link))
        .map(|(link, _)| link.clone())
        .collect();
    let mut unbooked: Vec<String> =
        unbooked.into_iter().filter(|&(_, since)| waited(since)).map(|(link, _)| link.clone()).collect();
    let dropped = dropped_total.saturating_sub(dropped_seen);
    if dropped == 0 && overdue.is_empty() && unbooked.is_empty() {
        return None;
    }
    overdue.sort_unstable();
    unbooked.sort_unstable();
    Some(Recovery { dropped, overdue, unbooked })
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
            // Per account: the one before may have spent a while on its REST history.
            let now = Instant::now();
            let entry = &self.accounts[&account];
            let dropped_total = entry.private.as_ref().map_or(0, |feed| feed.status().borrow().events_dropped);
            let mine = |index: usize| self.slots[index].account == account;
            let awaiting = self.awaiting.iter().filter(|(_, a)| mine(a.index)).map(|(link, a)| (link, a.answered));
            let unbooked = self.unbooked.iter().filter(|(_, u)| mine(u.index)).map(|(link, u)| (link, u.since));
            let Some(why) = due(entry.recovered_at, dropped_total, entry.dropped_seen, awaiting, unbooked, now) else {
                continue;
            };
            if let Some(entry) = self.accounts.get_mut(&account) {
                entry.recovered_at = Some(now);
                entry.dropped_seen = dropped_total;
            }
            self.recover(&account, why).await?;
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
    use std::time::{Duration, Instant};

    use super::{RECOVER_AFTER, Recovery, due, still_live};

    fn links(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    /// `due` for an account with nothing awaited or unbooked.
    fn due_for_drops(recovered_at: Option<Instant>, total: u64, seen: u64, now: Instant) -> Option<Recovery> {
        due(recovered_at, total, seen, std::iter::empty(), std::iter::empty(), now)
    }

    #[test]
    fn events_the_private_feed_dropped_are_read_back_once_each() {
        let start = Instant::now();
        let first = due_for_drops(None, 3, 0, start).expect("3 dropped events call for a recovery");
        assert_eq!(first.dropped, 3);
        assert!(first.overdue.is_empty() && first.unbooked.is_empty());
        // The recovery took the count as seen: the same count later is nothing new.
        assert!(due_for_drops(Some(start), 3, 3, start + RECOVER_AFTER * 2).is_none());
        let later = due_for_drops(Some(start), 5, 3, start + RECOVER_AFTER * 2).expect("2 more dropped");
        assert_eq!(later.dropped, 2);
    }

    #[test]
    fn an_account_is_read_back_at_most_once_per_recover_after() {
        let start = Instant::now();
        assert!(due_for_drops(Some(start), 10, 0, start + RECOVER_AFTER - Duration::from_millis(1)).is_none());
        assert_eq!(due_for_drops(Some(start), 10, 0, start + RECOVER_AFTER).map(|r| r.dropped), Some(10));
    }

    #[test]
    fn orders_are_overdue_once_answered_recover_after_ago_and_unbooked_fills_are_asked_as_such() {
        let t0 = Instant::now();
        let now = t0 + RECOVER_AFTER;
        let soon = t0 + Duration::from_secs(3);
        let names = links(&["c", "a", "b", "d", "e", "f"]);
        let [c, a, b, d, e, f] = [&names[0], &names[1], &names[2], &names[3], &names[4], &names[5]];
        // a and c answered long enough ago; b's create is still on its way; f answered too recently; d and e ended
        // with fills unbooked (d long enough ago, e not yet), so neither is an overdue end.
        let awaiting = [(c, Some(t0)), (a, Some(t0)), (b, None), (f, Some(soon)), (d, Some(t0)), (e, Some(t0))];
        let unbooked = [(e, soon), (d, t0)];
        let why = due(None, 0, 0, awaiting.into_iter(), unbooked.into_iter(), now).expect("overdue orders");
        assert_eq!(why.dropped, 0);
        assert_eq!(why.overdue, links(&["a", "c"]));
        assert_eq!(why.unbooked, links(&["d"]));
        // Nothing is due before then.
        let early = t0 + RECOVER_AFTER - Duration::from_millis(1);
        assert!(due(None, 0, 0, awaiting.into_iter(), unbooked.into_iter(), early).is_none());
    }

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
