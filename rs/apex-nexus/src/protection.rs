//! Disconnection protection, the engine's side: `engine.disconnect_protection` (a window of 3 to 300 whole seconds,
//! or "off"), the `dcp.future` subscription of every private connection, and the window set on each account at
//! connect. A venue that refuses either (Bybit enables DCP only on some accounts) is recorded in the ledger
//! (`events.kind = 'protection'`) and logged, and the engine trades on: it is a safety net, not a precondition.

use std::time::Duration;

use apex_bybit::client::private::PrivateConfig;
use apex_bybit::client::rest::RestClient;
use apex_bybit::rest::protection::{DcpProduct, check_window};
use apex_bybit::sign::Credentials;

use crate::NexusError;
use crate::config::parse_duration;
use crate::ledger::Ledger;

/// The window when the config names none, seconds (Bybit's own default).
pub const DEFAULT_WINDOW: &str = "10s";

/// The product the engine protects: it trades linear perpetuals.
fn product() -> DcpProduct {
    DcpProduct::Derivatives
}

/// Parses `engine.disconnect_protection`: "off", or a duration of whole seconds in [3, 300] ("10s", "1m").
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_window(text: &str) -> Result<Option<u32>, String> {
    if text.trim() == "off" {
        return Ok(None);
    }
    let duration = parse_duration(text)?;
    if duration.subsec_nanos() != 0 {
        return Err(format!("{text:?} is not whole seconds (or \"off\")"));
    }
    let seconds = u32::try_from(duration.as_secs()).unwrap_or(u32::MAX);
    check_window(seconds).map(Some).map_err(|e| format!("{text:?}: {e} (or \"off\")"))
}

/// The private stream's settings: with a window, every connection also subscribes `dcp.future`.
#[must_use]
pub fn private_config(url: &str, credentials: &Credentials, window_s: Option<u32>) -> PrivateConfig {
    let mut config = PrivateConfig::new(url, credentials.clone());
    config.protection = window_s.map(|_| product());
    // A reconnect must come back well inside the window, or the exchange cancels the orders of an engine that is
    // alive: the backoff never waits more than a third of it.
    if let Some(window_s) = window_s {
        let ceiling = Duration::from_secs(u64::from(window_s)) / 3;
        config.timing.backoff_max = config.timing.backoff_max.min(ceiling).max(config.timing.backoff_base);
    }
    config
}

/// Sets the window on one account and records the outcome; a refusal is recorded and logged, not returned.
///
/// # Errors
/// Only the ledger's.
pub async fn arm(rest: &RestClient, ledger: &Ledger, account: &str, window_s: Option<u32>) -> Result<(), NexusError> {
    let Some(window_s) = window_s else {
        return ledger.record_event("protection", &format!("{account}: off"), None);
    };
    let detail = match rest.set_disconnect_protection(product(), window_s).await {
        Ok(()) => {
            tracing::info!(account, window_s, "disconnection protection set");
            format!("{account}: on, {} orders cancelled {window_s} s after the last dcp connection is lost", product())
        }
        Err(error) => {
            tracing::warn!(account, %error, "the venue refused disconnection protection; trading without it");
            format!("{account}: refused: {error}")
        }
    };
    ledger.record_event("protection", &detail, None)
}

/// Records the venue's answer to one connection's `dcp.*` subscribe.
///
/// # Errors
/// Only the ledger's.
pub fn on_subscribed(
    ledger: &Ledger,
    account: &str,
    connection: u64,
    topic: &str,
    refused: Option<&str>,
) -> Result<(), NexusError> {
    let detail = match refused {
        None => format!("{account}: {topic} subscribed on connection {connection}"),
        Some(message) => {
            tracing::warn!(account, topic, message, "the venue refused the disconnection-protection topic");
            format!("{account}: {topic} refused on connection {connection}: {message}")
        }
    };
    ledger.record_event("protection", &detail, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_or_say_what_is_accepted() {
        assert_eq!(parse_window("off"), Ok(None));
        assert_eq!(parse_window(DEFAULT_WINDOW), Ok(Some(10)));
        assert_eq!(parse_window("3s"), Ok(Some(3)));
        assert_eq!(parse_window("5m"), Ok(Some(300)));
        assert_eq!(parse_window("7"), Ok(Some(7)));
        for (bad, why) in [
            ("2s", "3 to 300"),
            ("301s", "3 to 300"),
            ("1h", "3 to 300"),
            ("3500ms", "whole seconds"),
            ("on", "not a duration"),
        ] {
            let error = parse_window(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
        let config = private_config("ws://x", &Credentials::new("k", "s"), Some(10));
        assert_eq!(config.protection, Some(DcpProduct::Derivatives));
        assert_eq!(private_config("ws://x", &Credentials::new("k", "s"), None).protection, None);
        // Reconnects come back within a third of the window; without protection the default backoff stands.
        assert_eq!(config.timing.backoff_max, Duration::from_secs(10) / 3);
        let unprotected = private_config("ws://x", &Credentials::new("k", "s"), None);
        assert_eq!(
            unprotected.timing.backoff_max,
            PrivateConfig::new("ws://x", Credentials::new("k", "s")).timing.backoff_max
        );
    }

    /// Answers every HTTP request on a loopback port with `body` (what a venue says to the set call).
    async fn venue_answering(body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = vec![0; 4096];
                let _ = stream.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        base
    }

    fn details(ledger: &Ledger) -> Vec<String> {
        let mut statement =
            ledger.connection().prepare("SELECT detail FROM events WHERE kind = 'protection' ORDER BY id").unwrap();
        statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
    }

    /// A venue that refuses DCP costs the engine nothing but a ledger event; one that accepts is recorded too.
    #[tokio::test]
    async fn refusals_and_successes_are_recorded_and_never_fail_the_start() {
        use std::sync::Arc;

        use apex_bybit::client::clock::{ClockSync, SystemClock};
        use apex_bybit::client::rest::RestConfig;
        use apex_bybit::client::target::{Network, Target};

        let dir = crate::scratch("protection");
        let ledger = Ledger::open(&dir.join("ledger.sqlite"), "local", "0").unwrap();
        let answers = [
            r#"{"retCode":10001,"retMsg":"DCP is not enabled for this account","result":{},"retExtInfo":{},"time":1}"#,
            r#"{"retCode":0,"retMsg":"success","result":{},"retExtInfo":{},"time":1}"#,
        ];
        for (account, body) in ["refused", "accepted"].into_iter().zip(answers) {
            let rest = venue_answering(body).await;
            let target = Target { network: Network::Local, rest, ws_public: String::new(), ws_private: String::new() };
            let clock = Arc::new(ClockSync::new(Arc::new(SystemClock)));
            let credentials = Some(Credentials::new("key", "secret"));
            let client = RestClient::new(&target, credentials, clock, RestConfig::default()).unwrap();
            arm(&client, &ledger, account, Some(10)).await.unwrap();
            if account == "accepted" {
                // Off: nothing is sent, the choice is recorded.
                arm(&client, &ledger, "unset", None).await.unwrap();
            }
        }
        on_subscribed(&ledger, "accepted", 1, "dcp.future", None).unwrap();
        on_subscribed(&ledger, "refused", 1, "dcp.future", Some("error:handler not found,topic:dcp.future")).unwrap();
        let recorded = details(&ledger);
        assert!(
            recorded[0].starts_with("refused: refused: /v5/order/disconnected-cancel-all: retCode 10001"),
            "{recorded:?}"
        );
        assert_eq!(
            recorded[1],
            "accepted: on, DERIVATIVES orders cancelled 10 s after the last dcp connection is lost"
        );
        assert_eq!(recorded[2], "unset: off");
        assert_eq!(recorded[3], "accepted: dcp.future subscribed on connection 1");
        assert_eq!(
            recorded[4],
            "refused: dcp.future refused on connection 1: error:handler not found,topic:dcp.future"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
