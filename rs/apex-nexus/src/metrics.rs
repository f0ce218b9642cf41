//! Prometheus metrics of the engine (per-slot equity, position and capital weight; book sync, reconnects, orders,
//! withheld orders; the tick-to-order latency as a Prometheus histogram and an HDR histogram for exact
//! percentiles), served as text on a loopback `/metrics` endpoint.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// The engine's metrics.
pub struct Metrics {
    registry: Registry,
    equity: Family<Labels, FloatGauge>,
    position: Family<Labels, FloatGauge>,
    weight: Family<Labels, FloatGauge>,
    synced: Gauge,
    pub reconnects: Counter,
    pub orders: Counter,
    pub withheld: Counter,
    latency: Histogram,
    hdr: Mutex<hdrhistogram::Histogram<u64>>,
    /// Tick-to-order per slot, for the status table.
    per_slot: Mutex<std::collections::BTreeMap<String, hdrhistogram::Histogram<u64>>>,
    /// Frame received to order staged: the engine's own path (queue, book, features, models, rule, tactic), without
    /// the ledger's sync to disk and the network.
    decision: Mutex<hdrhistogram::Histogram<u64>>,
    /// The part of `decision` before the engine took the frame up: its wait in the queue behind earlier frames.
    queue: Mutex<hdrhistogram::Histogram<u64>>,
    address: Mutex<Option<SocketAddr>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for the slots named `slots`.
    ///
    /// # Panics
    /// Never: the HDR histogram's bounds are constants.
    #[must_use]
    pub fn new(slots: &[String]) -> Metrics {
        let mut registry = Registry::with_prefix("apex_nexus");
        let equity = Family::<Labels, FloatGauge>::default();
        let position = Family::<Labels, FloatGauge>::default();
        let weight = Family::<Labels, FloatGauge>::default();
        let synced = Gauge::default();
        let (reconnects, orders, withheld) = (Counter::default(), Counter::default(), Counter::default());
        let latency = Histogram::new(exponential_buckets(1e-6, 2.0, 24));
        registry.register("slot_equity", "Slot equity in quote currency", equity.clone());
        registry.register("slot_position", "Slot virtual position in base units", position.clone());
        registry.register("slot_weight", "Slot capital weight", weight.clone());
        registry.register("books_synced", "Symbols whose book is synced", synced.clone());
        registry.register("public_reconnects", "Public stream connections made", reconnects.clone());
        registry.register("orders", "Orders sent", orders.clone());
        registry.register(
            "orders_withheld",
            "Orders withheld (blind: book or private stream not usable)",
            withheld.clone(),
        );
        registry.register(
            "tick_to_order_seconds",
            "WebSocket frame that closed the bar received to order handed to the HTTP client",
            latency.clone(),
        );
        for slot in slots {
            let _ = equity.get_or_create(&vec![("slot".into(), slot.clone())]);
        }
        Metrics {
            registry,
            equity,
            position,
            weight,
            synced,
            reconnects,
            orders,
            withheld,
            latency,
            hdr: Mutex::new(new_hdr()),
            per_slot: Mutex::new(slots.iter().map(|slot| (slot.clone(), new_hdr())).collect()),
            decision: Mutex::new(new_hdr()),
            queue: Mutex::new(new_hdr()),
            address: Mutex::new(None),
        }
    }

    /// Sets a slot's equity, position and capital (its weight is its share of the sum of capitals).
    pub fn set_slot(&self, slot: &str, equity: f64, position: f64, capital: f64) {
        let labels = vec![("slot".to_owned(), slot.to_owned())];
        if equity.is_finite() {
            self.equity.get_or_create(&labels).set(equity);
        }
        self.position.get_or_create(&labels).set(position);
        self.weight.get_or_create(&labels).set(capital);
    }

    pub fn set_synced(&self, count: usize) {
        self.synced.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Records one tick-to-order latency of `slot`'s order.
    pub fn record_latency(&self, slot: &str, latency: Duration) {
        self.latency.observe(latency.as_secs_f64());
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        if let Ok(mut hdr) = self.hdr.lock() {
            let _ = hdr.record(nanos);
        }
        if let Ok(mut per_slot) = self.per_slot.lock()
            && let Some(hdr) = per_slot.get_mut(slot)
        {
            let _ = hdr.record(nanos);
        }
    }

    /// Records one frame-to-staged-order latency (the engine's path without the disk and the network) and its part
    /// `queued`: the frame's wait before the engine took it up.
    pub fn record_decision(&self, latency: Duration, queued: Duration) {
        for (histogram, value) in [(&self.decision, latency), (&self.queue, queued)] {
            if let Ok(mut hdr) = histogram.lock() {
                let _ = hdr.record(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX).max(1));
            }
        }
    }

    /// `slot`'s p99 tick-to-order latency in microseconds (`None` before its first order).
    #[must_use]
    pub fn slot_p99_us(&self, slot: &str) -> Option<f64> {
        let per_slot = self.per_slot.lock().ok()?;
        let hdr = per_slot.get(slot)?;
        (!hdr.is_empty()).then(|| hdr.value_at_quantile(0.99) as f64 / 1e3)
    }

    /// Tick-to-order latency quantiles in microseconds (count, p50, p90, p99, max), for the status file and the
    /// benchmark.
    #[must_use]
    pub fn latency_summary_us(&self) -> serde_json::Value {
        summary_us(&self.hdr)
    }

    /// The same quantiles of frame-received-to-order-staged (the engine's path without the disk sync and network).
    #[must_use]
    pub fn decision_summary_us(&self) -> serde_json::Value {
        summary_us(&self.decision)
    }

    /// The same quantiles of the frames' wait before the engine took them up (part of the decision figures).
    #[must_use]
    pub fn queue_summary_us(&self) -> serde_json::Value {
        summary_us(&self.queue)
    }

    /// The address `/metrics` is served on, once bound.
    #[must_use]
    pub fn address(&self) -> Option<String> {
        self.address.lock().ok().and_then(|a| a.map(|a| a.to_string()))
    }

    /// The metrics in Prometheus' text format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Serves `GET /metrics` on `address` (loopback) until the task is dropped; returns the bound address.
    ///
    /// # Errors
    /// The bind failure.
    pub async fn serve(self: std::sync::Arc<Self>, address: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        if let Ok(mut a) = self.address.lock() {
            *a = Some(bound);
        }
        tokio::spawn(async move {
            let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS));
            loop {
                let mut stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, say: the listener stays; the next accept may succeed.
                        tracing::warn!(error = %e, "metrics: accept failed");
                        tokio::time::sleep(METRICS_ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                // A scraper needs one connection at a time: past the cap, idle or hostile clients are dropped at
                // once instead of holding the engine's file descriptors.
                let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
                let metrics = self.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let answer = async {
                        let mut buffer = [0_u8; 2048];
                        let n = stream.read(&mut buffer).await.unwrap_or(0);
                        let request = String::from_utf8_lossy(&buffer[..n]);
                        let (status, body) = if request.starts_with("GET /metrics") {
                            ("200 OK", metrics.render())
                        } else {
                            ("404 Not Found", "not found\n".to_owned())
                        };
                        let head = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(body.as_bytes()).await;
                    };
                    // A client that sends nothing (or reads nothing) is cut off rather than kept forever.
                    let _ = tokio::time::timeout(METRICS_CLIENT_TIMEOUT, answer).await;
                });
            }
        });
        Ok(bound)
    }
}

/// Connections `/metrics` serves at once (a Prometheus scraper uses one).
const METRICS_CONNECTIONS: usize = 16;
/// How long one `/metrics` client may take to send its request and read the answer.
const METRICS_CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Pause after a failed accept (e.g. no file descriptor left) before the next one.
const METRICS_ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Count, p50, p90, p99 and max of a nanosecond histogram, in microseconds.
fn new_hdr() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant bounds")
}

fn summary_us(histogram: &Mutex<hdrhistogram::Histogram<u64>>) -> serde_json::Value {
    let Ok(h) = histogram.lock() else { return serde_json::Value::Null };
    let q = |x: f64| if h.is_empty() { 0.0 } else { h.value_at_quantile(x) as f64 / 1e3 };
    serde_json::json!({
        "count": h.len(), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": h.max() as f64 / 1e3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[test]
    fn a_decision_records_its_queue_wait_beside_it() {
        let metrics = Metrics::new(&["a".to_owned()]);
        metrics.record_decision(Duration::from_micros(900), Duration::from_micros(600));
        metrics.record_decision(Duration::from_micros(300), Duration::from_micros(0));
        let (staged, queued) = (metrics.decision_summary_us(), metrics.queue_summary_us());
        assert_eq!((staged["count"].as_u64(), queued["count"].as_u64()), (Some(2), Some(2)));
        let max = |summary: &serde_json::Value| summary["max"].as_f64().unwrap();
        assert!((max(&staged) - 900.0).abs() < 1.0 && (max(&queued) - 600.0).abs() < 1.0, "{staged} {queued}");
    }

    async fn scrape(address: SocketAddr) -> Option<String> {
        let mut stream = TcpStream::connect(address).await.ok()?;
        stream.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        Some(answer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_clients_neither_block_the_scraper_for_long_nor_stay_open() {
        let metrics = std::sync::Arc::new(Metrics::new(&["a".to_owned()]));
        let address = metrics.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        // More idle connections than the server serves at once, none sending anything.
        let mut idle = Vec::new();
        for _ in 0..METRICS_CONNECTIONS * 3 {
            idle.push(TcpStream::connect(address).await.unwrap());
        }
        let start = Instant::now();
        let answer = loop {
            if let Some(answer) = scrape(address).await.filter(|a| a.starts_with("HTTP/1.1 200")) {
                break answer;
            }
            assert!(start.elapsed() < METRICS_CLIENT_TIMEOUT * 3, "the scraper was shut out");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(answer.contains("apex_nexus_"), "{answer}");
        // Each idle client is closed by the server: dropped past the cap at once, or after the client timeout.
        for mut stream in idle {
            let mut byte = [0_u8; 1];
            let read = tokio::time::timeout(METRICS_CLIENT_TIMEOUT * 2, stream.read(&mut byte)).await;
            assert!(matches!(read, Ok(Ok(0) | Err(_))), "an idle client was kept open: {read:?}");
        }
    }
}
