//! The async REST client: signs each request over the exact bytes it sends, keeps its clock in step with the
//! exchange (re-syncing and retrying once on 10002), waits for its rate-limit tokens and honours the exchange's
//! limit headers and 10006s, and makes order creation idempotent by `orderLinkId`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::client::ClientError;
use crate::client::clock::ClockSync;
use crate::client::ratelimit::{EndpointGroup, Limit, RateLimiter};
use crate::client::target::Target;
use crate::enums::Category;
use crate::errors::RetCode;
use crate::records::Order;
use crate::rest::account::{
    ExecutionListRequest, ExecutionListResult, PositionListRequest, PositionListResult, WalletBalanceRequest,
    WalletBalanceResult,
};
use crate::rest::market::{
    InstrumentsInfoRequest, InstrumentsInfoResult, KlineRequest, KlineResult, OrderbookRequest, OrderbookResult,
    RecentTradeRequest, RecentTradeResult, ServerTime, TickersRequest, TickersResult,
};
use crate::rest::order::{
    AmendOrderRequest, CancelAllRequest, CancelAllResult, CancelOrderRequest, CreateOrderRequest, OrderIdResult,
    OrderListResult, OrderQuery, is_valid_order_link_id,
};
use crate::rest::protection::{DcpInfoResult, DcpProduct, SetDcpRequest, check_window};
use crate::rest::{Empty, Response, path, to_query};
use crate::sign::{Credentials, DEFAULT_RECV_WINDOW_MS};

/// Settings of a [`RestClient`].
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// `X-BAPI-RECV-WINDOW`.
    pub recv_window_ms: i64,
    /// Wall-clock limit of one HTTP exchange.
    pub timeout: Duration,
    /// Retries after a 10006 (each waits for the reset), and creates re-sent after an unknown outcome.
    pub max_retries: u32,
    /// Wait after a 10006 that carries no reset header.
    pub rate_limit_pause: Duration,
    /// Longest wait a reset header can impose (a guard against a clock far off).
    pub max_rate_limit_wait: Duration,
    /// Per-group limits replacing Bybit's defaults.
    pub limits: Vec<(EndpointGroup, Limit)>,
    /// Prefix of generated `orderLinkId`s.
    pub link_id_prefix: String,
}

impl Default for RestConfig {
    fn default() -> RestConfig {
        RestConfig {
            recv_window_ms: DEFAULT_RECV_WINDOW_MS,
            timeout: Duration::from_secs(10),
            max_retries: 3,
            rate_limit_pause: Duration::from_secs(1),
            max_rate_limit_wait: Duration::from_secs(60),
            limits: Vec::new(),
            link_id_prefix: "apx".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// A V5 REST client for one target and (optionally) one account.
pub struct RestClient {
    http: reqwest::Client,
    base: String,
    credentials: Option<Credentials>,
    clock: Arc<ClockSync>,
    limiter: RateLimiter,
    config: RestConfig,
    link_ids: AtomicU64,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base)
            .field("signed", &self.credentials.is_some())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl RestClient {
    /// # Errors
    /// `Config` when the HTTP client cannot be built (no TLS roots).
    pub fn new(
        target: &Target,
        credentials: Option<Credentials>,
        clock: Arc<ClockSync>,
        config: RestConfig,
    ) -> Result<RestClient, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("apexctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config { detail: format!("HTTP client: {e}") })?;
        Ok(RestClient {
            http,
            base: target.rest.trim_end_matches('/').to_owned(),
            credentials,
            limiter: RateLimiter::new(&config.limits),
            clock,
            config,
            link_ids: AtomicU64::new(0),
        })
    }

    #[must_use]
    pub fn clock(&self) -> &Arc<ClockSync> {
        &self.clock
    }

    #[must_use]
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// A fresh `orderLinkId`: prefix, the local time in ms and a counter, in base 36 (unique across restarts unless
    /// two clients share a prefix and a millisecond).
    #[must_use]
    pub fn new_order_link_id(&self) -> String {
        let n = self.link_ids.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.clock.local_now_ms()).unwrap_or(0);
        let id = format!("{}-{}-{}", self.config.link_id_prefix, base36(now), base36(n));
        id.chars().take(crate::rest::order::ORDER_LINK_ID_MAX).collect()
    }

    /// Measures the offset to the exchange's clock with `/v5/market/time`; request timestamps use it from then on.
    ///
    /// # Errors
    /// As any request.
    pub async fn sync_clock(&self) -> Result<i64, ClientError> {
        let sent = self.clock.local_now_ms();
        // `send`, not `call`: `call` re-syncs through here on a 10002.
        let raw = self.send(Method::Get, path::MARKET_TIME, "", false).await?;
        let received = self.clock.local_now_ms();
        let time: ServerTime = serde_json::from_str(raw.get())
            .map_err(|e| ClientError::Decode { endpoint: path::MARKET_TIME.into(), detail: e.to_string() })?;
        Ok(self.clock.observe(sent, time.time_nano / 1_000_000, received))
    }

    /// `GET` of a public or signed endpoint with a typed query.
    ///
    /// # Errors
    /// `Encode` for a query that is not flat, else as the request.
    pub async fn get<Q: Serialize, R: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &Q,
        signed: bool,
    ) -> Result<R, ClientError> {
        let query =
            to_query(query).map_err(|e| ClientError::Encode { endpoint: endpoint.into(), detail: e.to_string() })?;
        self.call(Method::Get, endpoint, query, signed).await
    }

    /// Signed `POST` with a JSON body.
    ///
    /// # Errors
    /// As the request.
    pub async fn post<B: Serialize, R: DeserializeOwned>(&self, endpoint: &str, body: &B) -> Result<R, ClientError> {
        let body = serde_json::to_string(body)
            .map_err(|e| ClientError::Encode { endpoint: endpoint.into(), detail: e.to_string() })?;
        self.call(Method::Post, endpoint, body, true).await
    }

    /// One request with the recoveries that are always safe: a 10002 re-syncs the clock and retries once (the
    /// exchange refused the request unread); a 10006 waits for the group's reset and retries, up to `max_retries`.
    async fn call<R: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        payload: String,
        signed: bool,
    ) -> Result<R, ClientError> {
        let mut resynced = false;
        let mut rate_retries = 0;
        loop {
            match self.send(method, endpoint, &payload, signed).await {
                Err(e) if e.is(RetCode::RecvWindow) && signed && !resynced => {
                    tracing::warn!(endpoint, "10002: re-syncing the clock and retrying once");
                    resynced = true;
                    self.sync_clock().await?;
                }
                Err(e) if e.is(RetCode::TooManyVisits) && rate_retries < self.config.max_retries => {
                    rate_retries += 1;
                    tracing::warn!(endpoint, rate_retries, "10006: waiting for the rate-limit reset");
                }
                Err(e) => return Err(e),
                Ok(raw) => {
                    return serde_json::from_str(raw.get())
                        .map_err(|e| ClientError::Decode { endpoint: endpoint.into(), detail: e.to_string() });
                }
            }
        }
    }

    /// One HTTP exchange: token, signature, send, limit headers, envelope. Returns the raw `result`.
    async fn send(
        &self,
        method: Method,
        endpoint: &str,
        payload: &str,
        signed: bool,
    ) -> Result<Box<RawValue>, ClientError> {
        let group = EndpointGroup::of_path(endpoint);
        self.limiter.acquire(group).await;
        let url = match method {
            Method::Get if !payload.is_empty() => format!("{}{endpoint}?{payload}", self.base),
            _ => format!("{}{endpoint}", self.base),
        };
        let mut request = match method {
            Method::Get => self.http.get(&url),
            Method::Post => self.http.post(&url).header("Content-Type", "application/json").body(payload.to_owned()),
        };
        if signed {
            let credentials =
                self.credentials.as_ref().ok_or_else(|| ClientError::NoCredentials { endpoint: endpoint.into() })?;
            let headers = credentials.rest_headers(self.clock.server_now_ms(), self.config.recv_window_ms, payload);
            for (name, value) in headers.pairs() {
                request = request.header(name, value);
            }
        }
        let timeout_ms = u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX);
        let response = match tokio::time::timeout(self.config.timeout, request.send()).await {
            Err(_) => return Err(ClientError::Timeout { endpoint: endpoint.into(), timeout_ms }),
            Ok(Err(e)) => {
                // A refused or failed connection never carried the request.
                let sent = !e.is_connect() && !e.is_builder();
                return Err(ClientError::Transport { endpoint: endpoint.into(), detail: transport_detail(e), sent });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let reset_at = self.limit_headers(group, response.headers());
        let body = match tokio::time::timeout(self.config.timeout, response.text()).await {
            Err(_) => return Err(ClientError::Timeout { endpoint: endpoint.into(), timeout_ms }),
            Ok(Err(e)) => {
                return Err(ClientError::Transport {
                    endpoint: endpoint.into(),
                    detail: transport_detail(e),
                    sent: true,
                });
            }
            Ok(Ok(body)) => body,
        };
        if !status.is_success() {
            return Err(ClientError::Http {
                endpoint: endpoint.into(),
                status: status.as_u16(),
                body: self.mask(&body.chars().take(300).collect::<String>()),
            });
        }
        let envelope: Response<Box<RawValue>> = serde_json::from_str(&body)
            .map_err(|e| ClientError::Decode { endpoint: endpoint.into(), detail: e.to_string() })?;
        if envelope.ret_code != 0 {
            if envelope.ret_code == RetCode::TooManyVisits.code() {
                let until = reset_at.unwrap_or_else(|| Instant::now() + self.config.rate_limit_pause);
                self.limiter.block_until(group, until);
            }
            return Err(ClientError::Api {
                endpoint: endpoint.into(),
                code: envelope.ret_code,
                message: self.mask(&envelope.ret_msg),
            });
        }
        Ok(envelope.result)
    }

    /// Applies `X-Bapi-Limit-Status` / `X-Bapi-Limit-Reset-Timestamp`; returns the reset instant when given.
    fn limit_headers(&self, group: EndpointGroup, headers: &reqwest::header::HeaderMap) -> Option<Instant> {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok();
        let reset_ms = number("X-Bapi-Limit-Reset-Timestamp")?;
        let wait_ms = (reset_ms - self.clock.server_now_ms()).max(0);
        let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)).min(self.config.max_rate_limit_wait);
        let reset_at = Instant::now() + wait;
        if let Some(remaining) = number("X-Bapi-Limit-Status") {
            self.limiter.observe(group, u32::try_from(remaining.max(0)).unwrap_or(u32::MAX), reset_at);
        }
        Some(reset_at)
    }

    /// The exchange echoes the signed string on a 10004; the key in it is masked before it reaches a message.
    fn mask(&self, text: &str) -> String {
        match &self.credentials {
            Some(c) if !c.api_key().is_empty() => text.replace(c.api_key(), "***"),
            _ => text.to_owned(),
        }
    }

    // Market data (public).

    /// # Errors
    /// As any request.
    pub async fn server_time(&self) -> Result<ServerTime, ClientError> {
        self.call(Method::Get, path::MARKET_TIME, String::new(), false).await
    }

    // Orders (signed).

    /// Places an order at most once, whatever happens on the way: the request always carries an `orderLinkId`
    /// (one is generated when missing). A "duplicate orderLinkId" (110072) means an earlier attempt went through:
    /// the order is looked up and returned. A timeout, a connection lost after sending or a 5xx leave the outcome
    /// unknown: the order is looked up by its `orderLinkId` first and the create is re-sent only if it is not
    /// found, up to `max_retries` times.
    ///
    /// # Errors
    /// `Api` when the exchange rejects the order; `UnknownOutcome` when every attempt and lookup stayed unanswered
    /// (the order may then exist: look it up by `orderLinkId` before anything else).
    pub async fn create_order(&self, request: &CreateOrderRequest) -> Result<OrderIdResult, ClientError> {
        let mut request = request.clone();
        let link = request.order_link_id.get_or_insert_with(|| self.new_order_link_id()).clone();
        if !is_valid_order_link_id(&link) {
            return Err(ClientError::Config { detail: format!("orderLinkId '{link}' is not 1-36 of [A-Za-z0-9_-]") });
        }
        let mut last = String::new();
        for attempt in 1..=self.config.max_retries + 1 {
            match self.post::<_, OrderIdResult>(path::ORDER_CREATE, &request).await {
                Ok(ids) => return Ok(ids),
                Err(e) if e.is(RetCode::DuplicateOrderLinkId) => {
                    tracing::info!(order_link_id = link, "110072: the create already went through");
                    let found = self.find_order(&request.category, &request.symbol, &link).await.ok().flatten();
                    return Ok(OrderIdResult {
                        order_id: found.map(|o| o.order_id).unwrap_or_default(),
                        order_link_id: link,
                    });
                }
                Err(e) if e.outcome_unknown() => {
                    tracing::warn!(order_link_id = link, attempt, error = %e, "create outcome unknown: looking it up");
                    last = e.to_string();
                    match self.find_order(&request.category, &request.symbol, &link).await {
                        Ok(Some(order)) => {
                            return Ok(OrderIdResult { order_id: order.order_id, order_link_id: order.order_link_id });
                        }
                        Ok(None) => {}
                        Err(lookup) => last = format!("{last}; lookup: {lookup}"),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::UnknownOutcome { order_link_id: link, attempts: self.config.max_retries + 1, last })
    }

    /// The order with this `orderLinkId`, open or recently closed (`/v5/order/realtime`, then `history`).
    ///
    /// # Errors
    /// As any request.
    pub async fn find_order(
        &self,
        category: &Category,
        symbol: &str,
        order_link_id: &str,
    ) -> Result<Option<Order>, ClientError> {
        let query = OrderQuery {
            category: category.clone(),
            symbol: Some(symbol.to_owned()),
            order_link_id: Some(order_link_id.to_owned()),
            ..OrderQuery::default()
        };
        let open = self.open_orders(&query).await?;
        if let Some(order) = open.list.into_iter().find(|o| o.order_link_id == order_link_id) {
            return Ok(Some(order));
        }
        let closed = self.order_history(&query).await?;
        Ok(closed.list.into_iter().find(|o| o.order_link_id == order_link_id))
    }

    // Disconnection protection (signed).

    /// Sets the disconnection-protection window of `product`: once every private connection that subscribed the
    /// product's `dcp.*` topic has been gone for `window_s` seconds, the exchange cancels the account's active
    /// orders of that product. Bybit refuses it (a non-zero retCode) for an account it has not enabled DCP on.
    ///
    /// # Errors
    /// `Config` for a window outside [3, 300] seconds (nothing is sent); `Api` when the exchange refuses; else as
    /// any request.
    pub async fn set_disconnect_protection(&self, product: DcpProduct, window_s: u32) -> Result<(), ClientError> {
        let time_window = check_window(window_s).map_err(|detail| ClientError::Config { detail })?;
        let request = SetDcpRequest { product: Some(product), time_window };
        self.post::<_, Empty>(path::DCP_SET, &request).await.map(|_| ())
    }

    /// The account's disconnection-protection settings (empty when none is configured).
    ///
    /// # Errors
    /// As any request.
    pub async fn disconnect_protection(&self) -> Result<DcpInfoResult, ClientError> {
        self.call(Method::Get, path::DCP_INFO, String::new(), true).await
    }
}

/// Generates the endpoints that are one typed request and nothing more: `get` of a query (its flag says whether
/// the request is signed) or signed `post` of a JSON body. One row a method keeps each path beside its request and
/// result types, which is what tells these methods apart.
macro_rules! endpoints {
    ($($name:ident($request:ty) -> $result:ty = $verb:ident($path:ident $(, $signed:literal)?);)*) => {
        impl RestClient {
            $(
                /// # Errors
                /// As any request.
                pub async fn $name(&self, request: &$request) -> Result<$result, ClientError> {
                    self.$verb(path::$path, request $(, $signed)?).await
                }
            )*
        }
    };
}

endpoints! {
    // Market data (public).
    instruments(InstrumentsInfoRequest) -> InstrumentsInfoResult = get(INSTRUMENTS_INFO, false);
    orderbook(OrderbookRequest) -> OrderbookResult = get(ORDERBOOK, false);
    kline(KlineRequest) -> KlineResult = get(KLINE, false);
    recent_trades(RecentTradeRequest) -> RecentTradeResult = get(RECENT_TRADE, false);
    tickers(TickersRequest) -> TickersResult = get(TICKERS, false);
    // Orders (signed).
    amend_order(AmendOrderRequest) -> OrderIdResult = post(ORDER_AMEND);
    cancel_order(CancelOrderRequest) -> OrderIdResult = post(ORDER_CANCEL);
    cancel_all(CancelAllRequest) -> CancelAllResult = post(ORDER_CANCEL_ALL);
    open_orders(OrderQuery) -> OrderListResult = get(ORDER_REALTIME, true);
    order_history(OrderQuery) -> OrderListResult = get(ORDER_HISTORY, true);
    // Account (signed).
    positions(PositionListRequest) -> PositionListResult = get(POSITION_LIST, true);
    executions(ExecutionListRequest) -> ExecutionListResult = get(EXECUTION_LIST, true);
    wallet_balance(WalletBalanceRequest) -> WalletBalanceResult = get(WALLET_BALANCE, true);
}

/// A reqwest error with its causes (reqwest's own message is often just "error sending request").
fn transport_detail(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("base-36 digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::clock::ManualClock;

    #[test]
    fn link_ids_are_valid_and_distinct() {
        let clock = Arc::new(ClockSync::new(Arc::new(ManualClock::new(1_764_000_000_000))));
        let client = RestClient::new(&Target::testnet(), None, clock, RestConfig::default()).unwrap();
        let a = client.new_order_link_id();
        let b = client.new_order_link_id();
        assert_ne!(a, b);
        assert!(is_valid_order_link_id(&a) && is_valid_order_link_id(&b), "{a} {b}");
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
