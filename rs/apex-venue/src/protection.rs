//! Bybit's disconnection protection (DCP) per account: the window `POST /v5/order/disconnected-cancel-all` sets, the
//! private connections that subscribed `dcp.future`, and the timer that cancels the account's open orders once the
//! last of those connections has been gone for the window.
//!
//! The timer runs on the wall clock, like every connection timer of the venue (the 10-minute idle limit, auth
//! expiry, recv_window, the fault schedule): a client reconnects in wall-clock time whatever the market's `speed`.
//! Only derivatives are served (`DERIVATIVES` / `dcp.future`): the venue trades linear perpetuals alone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::clock::wall_ms;
use crate::shared::Shared;
use crate::sim::Command;

/// One account's protection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct AccountState {
    /// Seconds, once set.
    window_s: Option<u32>,
    /// Open private connections subscribed to `dcp.future`.
    live: usize,
    /// Bumped by every connection that opens and every gap that starts: a timer acts only on its own gap.
    gap: u64,
    /// Wall-clock ms the current gap started.
    down_since_ms: Option<i64>,
}

/// A gap whose timer is to run: it fires after `window_s` unless a connection comes back first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub gap: u64,
    pub window_s: u32,
}

/// The protection state of every account (by index).
#[derive(Debug)]
pub struct Protection {
    accounts: Vec<Mutex<AccountState>>,
}

impl Protection {
    #[must_use]
    pub fn new(accounts: usize) -> Protection {
        Protection { accounts: (0..accounts).map(|_| Mutex::new(AccountState::default())).collect() }
    }

    fn state(&self, account: usize) -> std::sync::MutexGuard<'_, AccountState> {
        self.accounts[account].lock().expect("protection state")
    }

    /// Sets the window (seconds, checked by the caller); it applies from the next gap on.
    pub fn set_window(&self, account: usize, window_s: u32) {
        self.state(account).window_s = Some(window_s);
    }

    /// The window, if one was set.
    #[must_use]
    pub fn window(&self, account: usize) -> Option<u32> {
        self.state(account).window_s
    }

    /// A connection subscribed `dcp.future`: any gap in progress is over.
    pub fn connected(&self, account: usize) {
        let mut state = self.state(account);
        state.live += 1;
        state.gap += 1;
        state.down_since_ms = None;
    }

    /// A connection that had subscribed `dcp.future` closed (or unsubscribed it) at `now_ms`. When it was the last
    /// one and a window is set, a gap starts: the caller runs its timer.
    pub fn disconnected(&self, account: usize, now_ms: i64) -> Option<Gap> {
        let mut state = self.state(account);
        state.live = state.live.saturating_sub(1);
        let window_s = state.window_s.filter(|_| state.live == 0)?;
        state.gap += 1;
        state.down_since_ms = Some(now_ms);
        Some(Gap { gap: state.gap, window_s })
    }

    /// The timer of `gap` fired: when no connection came back since, the gap ends here (the next trigger needs a
    /// new connection and a new loss) and its start is returned: the account's orders are to be cancelled.
    pub fn expire(&self, account: usize, gap: u64) -> Option<i64> {
        let mut state = self.state(account);
        if state.gap != gap || state.live > 0 {
            return None;
        }
        state.down_since_ms.take()
    }
}

/// Records a lost `dcp.future` connection of `account` and, when that starts a gap, runs its timer on the wall
/// clock: at its end, if nothing reconnected, the simulation cancels every open order of the account.
pub fn on_disconnect(shared: &Arc<Shared>, account: usize) {
    let Some(gap) = shared.protection.disconnected(account, wall_ms()) else { return };
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut shutdown = shared.shutdown.clone();
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => {}
            () = tokio::time::sleep(Duration::from_secs(u64::from(gap.window_s))) => {
                if let Some(down_since_ms) = shared.protection.expire(account, gap.gap) {
                    tracing::info!(account, window_s = gap.window_s, "disconnection protection: cancelling all orders");
                    shared.command(Command::DisconnectCancel { account, window_s: gap.window_s, down_since_ms });
                }
            }
        }
    });
}

/// The fault-log entry of a trigger: which account, its window, when the gap started and what was cancelled.
#[must_use]
pub fn log_details(name: &str, window_s: u32, down_since_ms: i64, order_link_ids: &[String]) -> serde_json::Value {
    json!({"account": name, "window_s": window_s, "down_since_ms": down_since_ms, "cancelled": order_link_ids})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_fires_once_and_only_without_a_reconnect() {
        let p = Protection::new(2);
        // No window: a loss starts nothing.
        p.connected(0);
        assert_eq!(p.disconnected(0, 10), None);
        p.set_window(0, 5);
        assert_eq!(p.window(0), Some(5));
        // Two connections: only losing the last one starts a gap.
        p.connected(0);
        p.connected(0);
        assert_eq!(p.disconnected(0, 20), None);
        let gap = p.disconnected(0, 30).unwrap();
        assert_eq!(gap.window_s, 5);
        assert_eq!(p.expire(0, gap.gap), Some(30));
        assert_eq!(p.expire(0, gap.gap), None, "reset until the next loss");
        // A reconnect inside the window cancels that gap's timer; the next loss has its own.
        p.connected(0);
        let first = p.disconnected(0, 40).unwrap();
        p.connected(0);
        assert_eq!(p.expire(0, first.gap), None);
        let second = p.disconnected(0, 50).unwrap();
        assert_eq!(p.expire(0, first.gap), None, "an old timer never fires a newer gap");
        assert_eq!(p.expire(0, second.gap), Some(50));
        // Accounts are independent.
        assert_eq!(p.window(1), None);
        assert_eq!(p.disconnected(1, 60), None);
    }
}
