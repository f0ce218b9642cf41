//! The REST API: Bybit's market, order, position, execution, wallet and disconnection-protection endpoints, with
//! HMAC authentication over the
//! exact query string or body, the recv_window rule, per-key rate limits with their `X-Bapi-Limit-*` headers, and
//! Bybit's retCodes; plus two diagnostics under `/apex/v1/` (book checksums, fault counts).

use std::sync::Arc;
use std::time::Instant;

use apex_bybit::errors::{RetCode, recv_window_message, sign_error_message};
use apex_bybit::messages::KLINE_INTERVALS;
use apex_bybit::rest::account::{ExecutionListRequest, PositionListRequest, WalletBalanceRequest};
use apex_bybit::rest::market::{
    Instrument, KlineRequest, KlineResult, KlineRow, LeverageFilter, LotSizeFilter, OrderbookRequest, OrderbookResult,
    PriceFilter, RecentTradeRequest, RiskParameters, ServerTime, TickersRequest,
};
use apex_bybit::rest::order::{
    AmendOrderRequest, CancelAllRequest, CancelAllResult, CancelOrderRequest, CreateOrderRequest, OrderIdResult,
    OrderQuery, is_valid_order_link_id,
};
use apex_bybit::rest::position::{SetLeverageRequest, TradingStopRequest};
use apex_bybit::rest::protection::{DcpInfo, DcpInfoResult, DcpProduct, SetDcpRequest, check_window};
use apex_bybit::rest::{ListResult, path};
use apex_bybit::sign::{HEADER_API_KEY, HEADER_RECV_WINDOW, HEADER_SIGN, HEADER_TIMESTAMP, rest_prehash, verify};
use apex_bybit::{AccountType, Category, ContractType, Dec, InstrumentStatus, OrderType, TimeInForce};
use apex_core::{Scale, StpMode};
use apex_sim::exchange::{ExchangeError, OrderAck, OrderRequest, OrderType as ExOrderType};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use crate::clock::wall_ms;
use crate::faults::{Dice, MarketFault};
use crate::shared::{LimitStatus, Shared};
use crate::sim::{Answer, Command, Query};

/// A REST answer in Bybit's envelope.
struct Reply {
    status: StatusCode,
    body: Box<apex_bybit::rest::Response<Value>>,
    limit: Option<LimitStatus>,
}

impl Reply {
    fn ok(result: impl Serialize) -> Reply {
        Reply::envelope(0, "OK", serde_json::to_value(result).expect("results serialize"))
    }

    fn error(code: i64, message: impl Into<String>) -> Reply {
        Reply::envelope(code, &message.into(), json!({}))
    }

    fn code(code: RetCode) -> Reply {
        Reply::error(code.code(), code.message())
    }

    fn param(message: impl Into<String>) -> Reply {
        Reply::error(RetCode::ParamError.code(), message)
    }

    fn envelope(code: i64, message: &str, result: Value) -> Reply {
        let body = Box::new(apex_bybit::rest::Response {
            ret_code: code,
            ret_msg: message.to_owned(),
            result,
            ret_ext_info: Map::new(),
            time: wall_ms(),
        });
        Reply { status: StatusCode::OK, body, limit: None }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(limit) = self.limit {
            let headers = response.headers_mut();
            for (name, value) in [
                ("X-Bapi-Limit", limit.limit.to_string()),
                ("X-Bapi-Limit-Status", limit.remaining.to_string()),
                ("X-Bapi-Limit-Reset-Timestamp", limit.reset_ms.to_string()),
            ] {
                headers.insert(name, HeaderValue::from_str(&value).expect("digits are a header value"));
            }
        }
        response.headers_mut().insert("Timenow", HeaderValue::from_str(&wall_ms().to_string()).expect("digits"));
        response
    }
}

/// The per-second limit of an endpoint (Bybit's defaults for linear, reference §4.7).
fn limit_of(path: &str) -> u32 {
    match path {
        path::ORDER_CREATE | path::ORDER_AMEND | path::ORDER_CANCEL | path::ORDER_CANCEL_ALL => 10,
        path::SET_LEVERAGE | path::TRADING_STOP => 10,
        _ => 50,
    }
}

/// Longest `X-BAPI-RECV-WINDOW` accepted, in ms. Bybit documents no maximum, but without one a client could sign a
/// request that stays valid for ever (a window of 2^63-1 puts the lower bound before the epoch), which defeats the
/// replay protection the window exists for. The venue is on loopback, sharing the client's clock, so a minute leaves
/// ample room for retries (pybit adds 2.5 s per 10002 retry) while a captured request goes stale within one minute.
pub const MAX_RECV_WINDOW_MS: i64 = 60_000;

/// Bybit's timestamp rule, `server_time - recv_window <= timestamp < server_time + 1000`, in wide arithmetic so no
/// header value can wrap a bound around and switch the check off.
fn within_recv_window(timestamp: i64, now: i64, recv_window: i64) -> bool {
    let (timestamp, now, recv_window) = (i128::from(timestamp), i128::from(now), i128::from(recv_window));
    now - recv_window <= timestamp && timestamp < now + 1_000
}

/// Bybit signs with lower-case hex (docs/v5/guide.mdx, reference §4.2); other spellings of the same bytes are
/// refused, as a signature is an exact string, not a number.
pub fn is_lowercase_hex(signature: &str) -> bool {
    !signature.is_empty() && signature.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An authenticated request: its account and the rate-limit status it consumed.
struct Caller {
    account: usize,
    limit: LimitStatus,
}

/// Checks the signature headers over `payload` (exact query string or raw body), the recv_window rule, the fault
/// switches and the account's rate limit.
fn authenticate(shared: &Shared, headers: &HeaderMap, endpoint: &'static str, payload: &str) -> Result<Caller, Reply> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = wall_ms();
    let key = header(HEADER_API_KEY).filter(|k| !k.is_empty()).ok_or_else(|| Reply::code(RetCode::InvalidApiKey))?;
    let &account = shared.keys.get(key).ok_or_else(|| Reply::code(RetCode::InvalidApiKey))?;
    let timestamp: i64 = header(HEADER_TIMESTAMP)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| Reply::param("invalid request, please check your timestamp: X-BAPI-TIMESTAMP is missing"))?;
    let recv_window: i64 = match header(HEADER_RECV_WINDOW) {
        None => apex_bybit::sign::DEFAULT_RECV_WINDOW_MS,
        Some(text) => text.parse().map_err(|_| Reply::param("X-BAPI-RECV-WINDOW is not an integer"))?,
    };
    if !(1..=MAX_RECV_WINDOW_MS).contains(&recv_window) {
        let message = format!(
            "{}; recv_window must be from 1 to {MAX_RECV_WINDOW_MS} ms",
            recv_window_message(timestamp, now, recv_window)
        );
        return Err(Reply::error(RetCode::RecvWindow.code(), message));
    }
    if !within_recv_window(timestamp, now, recv_window) {
        return Err(Reply::error(RetCode::RecvWindow.code(), recv_window_message(timestamp, now, recv_window)));
    }
    let signature = header(HEADER_SIGN).unwrap_or_default();
    let secret = &shared.accounts[account].spec.api_secret;
    if !is_lowercase_hex(signature) || !verify(secret, &rest_prehash(timestamp, key, recv_window, payload), signature) {
        let origin = format!("{timestamp}***{recv_window}{payload}");
        return Err(Reply::error(RetCode::SignError.code(), sign_error_message(&origin)));
    }
    let burst_until = shared.switches.rate_limit_until_ms.load(std::sync::atomic::Ordering::Relaxed);
    let limit = limit_of(endpoint);
    if now < burst_until {
        let status = LimitStatus { limit, remaining: 0, reset_ms: burst_until, allowed: false };
        return Err(Reply { limit: Some(status), ..Reply::code(RetCode::TooManyVisits) });
    }
    let status = shared.limits.lock().expect("rate limits").hit(account, endpoint, limit, now);
    if !status.allowed {
        return Err(Reply { limit: Some(status), ..Reply::code(RetCode::TooManyVisits) });
    }
    Ok(Caller { account, limit: status })
}

/// Waits out a latency-spike fault.
async fn stall(shared: &Shared) {
    let until = shared.switches.rest_stall_until_ms.load(std::sync::atomic::Ordering::Relaxed);
    let now = wall_ms();
    if until > now {
        tokio::time::sleep(std::time::Duration::from_millis((until - now) as u64)).await;
    }
}

/// Parses a query string; an error names the parameter and what it should be.
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Reply> {
    let parameters = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(parameters).map_err(|e| field_error(e.path(), &e.inner().to_string()))
}

/// Parses a JSON body, which must be one object; an error names the field and what it should be.
fn parse_body<T: DeserializeOwned>(body: &str) -> Result<T, Reply> {
    if !body.trim_start().starts_with('{') {
        return Err(Reply::param("Request parameter error: the body must be a JSON object"));
    }
    // Syntax first, so that what the fields' types report below is always about a field.
    serde_json::from_str::<serde::de::IgnoredAny>(body)
        .map_err(|e| Reply::param(format!("Request parameter error: the body is not valid JSON: {e}")))?;
    let mut json = serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(&mut json).map_err(|e| field_error(e.path(), &e.inner().to_string()))
}

/// A 10001 naming the bad field (unless the problem is the whole request, such as a missing field).
fn field_error(path: &serde_path_to_error::Path, message: &str) -> Reply {
    let message = protocol_terms(message);
    match path.to_string().as_str() {
        "." | "" => Reply::param(format!("Request parameter error: {message}")),
        field => Reply::param(format!("Request parameter error: {field}: {message}")),
    }
}

/// Rewrites serde's wording in the client's terms: JSON types instead of Rust ones (`struct CreateOrderRequest with
/// 27 elements`, `u32`, `enum Side`, `sequence`), and no line/column of the parsed text.
fn protocol_terms(message: &str) -> String {
    let mut text = message.split(" at line ").next().unwrap_or(message).to_owned();
    for (rust, json) in [("struct ", "a JSON object"), ("enum ", "a string"), ("tuple struct ", "an array")] {
        text = replace_named(&text, &format!("expected {rust}"), &format!("expected {json}"));
    }
    for (rust, json) in [
        ("u8", "a non-negative integer"),
        ("u16", "a non-negative integer"),
        ("u32", "a non-negative integer"),
        ("u64", "a non-negative integer"),
        ("usize", "a non-negative integer"),
        ("i8", "an integer"),
        ("i16", "an integer"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("f32", "a number"),
        ("f64", "a number"),
    ] {
        if text.ends_with(&format!("expected {rust}")) {
            text = format!("{}expected {json}", &text[..text.len() - rust.len() - "expected ".len()]);
        }
    }
    text.replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: object")
        .replace("invalid type: unit value", "invalid type: null")
        .replace("invalid type: floating point", "invalid type: number")
}

/// Replaces `prefix` and the Rust type name after it (plus a `with N elements` tail) with `replacement`.
fn replace_named(text: &str, prefix: &str, replacement: &str) -> String {
    let Some(start) = text.find(prefix) else { return text.to_owned() };
    let after = &text[start + prefix.len()..];
    let name_len = after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
    let mut rest = &after[name_len..];
    if let Some(tail) = rest.strip_prefix(" with ")
        && let Some(end) = tail.find(" element").map(|i| i + " element".len())
    {
        rest = tail[end..].strip_prefix('s').unwrap_or(&tail[end..]);
    }
    format!("{}{replacement}{rest}", &text[..start])
}

fn linear(category: Option<&Category>) -> Result<(), Reply> {
    match category {
        None | Some(Category::Linear) => Ok(()),
        Some(other) => Err(Reply::param(format!("category {other} is not served by this venue (linear only)"))),
    }
}

fn symbol_index(shared: &Shared, symbol: &str) -> Result<usize, Reply> {
    shared
        .symbols
        .iter()
        .position(|s| s.units.symbol == symbol)
        .ok_or_else(|| Reply::param(format!("params error: symbol invalid: {symbol}")))
}

fn units(value: &Dec, scale: Scale, field: &str) -> Result<i64, Reply> {
    value.to_units(scale).map_err(|_| Reply::param(format!("{field} '{value}' is invalid for this symbol")))
}

fn exchange_error(error: ExchangeError) -> Reply {
    match error {
        ExchangeError::UnknownSymbol(symbol) => Reply::param(format!("params error: symbol invalid: {symbol}")),
        ExchangeError::Param(message) => Reply::param(message),
        ExchangeError::OrderNotFound => Reply::error(110_001, "order not exists or too late to cancel"),
        ExchangeError::DuplicateOrderLinkId(_) => Reply::code(RetCode::DuplicateOrderLinkId),
        ExchangeError::InsufficientBalance => Reply::error(110_007, "ab not enough for new order"),
        ExchangeError::PriceOutOfRange(message) => Reply::error(RetCode::PriceOutOfRange.code(), message),
        ExchangeError::TooManyOrders => Reply::code(RetCode::TooManyActiveOrders),
        ExchangeError::NoPosition => Reply::param("can not set tp/sl/ts for zero position"),
        ExchangeError::LeverageNotModified => Reply::error(110_043, "leverage not modified"),
    }
}

/// Sends a command and waits for its answer (a stopped simulation is a server error).
async fn ask<T>(shared: &Shared, build: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Reply> {
    let (tx, rx) = oneshot::channel();
    if !shared.command(build(tx)) {
        return Err(Reply::code(RetCode::ServerError));
    }
    rx.await.map_err(|_| Reply::code(RetCode::ServerError))
}

type Shr = State<Arc<Shared>>;

/// The router of every REST path (WebSocket paths are added by `ws`).
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(path::MARKET_TIME, get(market_time))
        .route(path::INSTRUMENTS_INFO, get(instruments_info))
        .route(path::ORDERBOOK, get(orderbook))
        .route(path::KLINE, get(kline))
        .route(path::RECENT_TRADE, get(recent_trade))
        .route(path::TICKERS, get(tickers))
        .route(path::ORDER_CREATE, post(order_create))
        .route(path::ORDER_AMEND, post(order_amend))
        .route(path::ORDER_CANCEL, post(order_cancel))
        .route(path::ORDER_CANCEL_ALL, post(order_cancel_all))
        .route(path::ORDER_REALTIME, get(order_realtime))
        .route(path::ORDER_HISTORY, get(order_history))
        .route(path::POSITION_LIST, get(position_list))
        .route(path::SET_LEVERAGE, post(set_leverage))
        .route(path::TRADING_STOP, post(trading_stop))
        .route(path::EXECUTION_LIST, get(execution_list))
        .route(path::WALLET_BALANCE, get(wallet_balance))
        .route(path::DCP_SET, post(dcp_set))
        .route(path::DCP_INFO, get(dcp_info))
        .route("/apex/v1/book-checksum", get(book_checksum))
        .route("/apex/v1/faults", get(fault_counts))
        .fallback(not_found)
}

async fn not_found() -> Reply {
    Reply { status: StatusCode::NOT_FOUND, ..Reply::code(RetCode::RouteNotFound) }
}

async fn market_time() -> Reply {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
    Reply::ok(ServerTime { time_second: nanos / 1_000_000_000, time_nano: nanos })
}

fn result(r: Result<Reply, Reply>) -> Reply {
    r.unwrap_or_else(|e| e)
}

async fn instruments_info(State(shared): Shr, RawQuery(q): RawQuery) -> Reply {
    result((|| {
        let request: apex_bybit::rest::market::InstrumentsInfoRequest = parse_query(q.as_deref().unwrap_or(""))?;
        linear(Some(&request.category))?;
        let list: Vec<Instrument> = shared
            .symbols
            .iter()
            .filter(|s| request.symbol.as_ref().is_none_or(|w| *w == s.units.symbol))
            .map(|s| instrument(&s.spec))
            .collect();
        Ok(Reply::ok(ListResult { category: Some(Category::Linear), list, next_page_cursor: Some(String::new()) }))
    })())
}

fn instrument(spec: &apex_sim::InstrumentSpec) -> Instrument {
    let price = |u| Dec::from_units(u, spec.price_scale);
    let qty = |u| Dec::from_units(u, spec.qty_scale);
    let base = spec.symbol.trim_end_matches("USDT").to_owned();
    Instrument {
        symbol: spec.symbol.clone(),
        contract_type: Some(ContractType::LinearPerpetual),
        status: InstrumentStatus::Trading,
        base_coin: base,
        quote_coin: "USDT".into(),
        settle_coin: Some("USDT".into()),
        launch_time: Some(0),
        delivery_time: Some(0),
        delivery_fee_rate: Some(Dec::EMPTY),
        price_scale: Some(spec.price_scale.decimals().to_string()),
        leverage_filter: Some(LeverageFilter {
            min_leverage: Dec::new("1").expect("decimal"),
            max_leverage: Dec::new("100.00").expect("decimal"),
            leverage_step: Dec::new("0.01").expect("decimal"),
        }),
        price_filter: PriceFilter {
            min_price: Some(price(spec.tick)),
            max_price: Some(price(apex_sim::MAX_PRICE_UNITS / 1_000)),
            tick_size: price(spec.tick),
        },
        lot_size_filter: LotSizeFilter {
            max_order_qty: Some(qty(spec.max_qty.min(1_000_000 * spec.lot))),
            min_order_qty: Some(qty(spec.min_qty)),
            qty_step: Some(qty(spec.lot)),
            post_only_max_order_qty: Some(qty(spec.max_qty.min(1_000_000 * spec.lot))),
            max_mkt_order_qty: Some(qty(spec.max_qty.min(100_000 * spec.lot))),
            min_notional_value: Some(Dec::new("5").expect("decimal")),
            ..LotSizeFilter::default()
        },
        unified_margin_trade: Some(true),
        funding_interval: Some(480),
        upper_funding_rate: Some(Dec::new("0.005").expect("decimal")),
        lower_funding_rate: Some(Dec::new("-0.005").expect("decimal")),
        // The band the exchange enforces (apex-sim's price limits), advertised as Bybit does; the ratios are
        // validated to 6 decimals, which a float's shortest form writes exactly.
        risk_parameters: Some(RiskParameters {
            price_limit_ratio_x: Dec::new(spec.price_limit_ratio_x.to_string()).expect("a validated ratio"),
            price_limit_ratio_y: Dec::new(spec.price_limit_ratio_y.to_string()).expect("a validated ratio"),
        }),
        copy_trading: Some("both".into()),
        innovation: None,
        margin_trading: None,
        options_type: None,
        symbol_type: Some(String::new()),
        symbol_id: None,
        xstock_multiplier: None,
    }
}

async fn orderbook(State(shared): Shr, RawQuery(q): RawQuery) -> Reply {
    result((|| {
        let request: OrderbookRequest = parse_query(q.as_deref().unwrap_or(""))?;
        linear(Some(&request.category))?;
        let symbol = symbol_index(&shared, &request.symbol)?;
        let limit = request.limit.unwrap_or(25);
        if !(1..=1000).contains(&limit) {
            return Err(Reply::param("limit must be in [1, 1000]"));
        }
        let data = &shared.symbols[symbol];
        // REST `u` is the 1000-level stream's (reference §2.3).
        let book = data.books[3].lock().expect("book state");
        let (bids, asks) = book.top(&data.units, limit as usize);
        let pair = |(p, q): (String, String)| (Dec::new(p).expect("decimal"), Dec::new(q).expect("decimal"));
        Ok(Reply::ok(OrderbookResult {
            s: data.units.symbol.clone(),
            b: bids.into_iter().map(pair).collect(),
            a: asks.into_iter().map(pair).collect(),
            ts: book.ts_ms(),
            u: book.u,
            seq: book.seq(),
            cts: Some(book.cts_ms),
        }))
    })())
}

async fn kline(State(shared): Shr, RawQuery(q): RawQuery) -> Reply {
    result((|| {
        let request: KlineRequest = parse_query(q.as_deref().unwrap_or(""))?;
        linear(request.category.as_ref())?;
        let symbol = symbol_index(&shared, &request.symbol)?;
        if !KLINE_INTERVALS.contains(&request.interval.as_str()) {
            return Err(Reply::param(format!("Invalid period: interval {}", request.interval)));
        }
        let limit = request.limit.unwrap_or(200);
        if !(1..=1000).contains(&limit) {
            return Err(Reply::param("limit must be in [1, 1000]"));
        }
        let data = &shared.symbols[symbol];
        let candles = data.candles.lock().expect("candles").klines(
            &request.interval,
            request.start.unwrap_or(i64::MIN),
            request.end.unwrap_or(i64::MAX),
            limit as usize,
        );
        let units = &data.units;
        let list = candles
            .iter()
            .map(|c| {
                KlineRow(
                    c.start_ms,
                    units.price(c.open),
                    units.price(c.high),
                    units.price(c.low),
                    units.price(c.close),
                    units.qty(c.volume),
                    units.value(c.turnover),
                )
            })
            .collect();
        Ok(Reply::ok(KlineResult { category: Some(Category::Linear), symbol: units.symbol.clone(), list }))
    })())
}

async fn recent_trade(State(shared): Shr, RawQuery(q): RawQuery) -> Reply {
    result((|| {
        let request: RecentTradeRequest = parse_query(q.as_deref().unwrap_or(""))?;
        linear(Some(&request.category))?;
        let symbol = symbol_index(&shared, request.symbol.as_deref().unwrap_or(""))?;
        let limit = request.limit.unwrap_or(500);
        if !(1..=1000).contains(&limit) {
            return Err(Reply::param("limit must be in [1, 1000]"));
        }
        let trades = shared.symbols[symbol].trades.lock().expect("trades");
        let list: Vec<_> = trades.iter().rev().take(limit as usize).cloned().collect();
        Ok(Reply::ok(ListResult { category: Some(Category::Linear), list, next_page_cursor: None }))
    })())
}

async fn tickers(State(shared): Shr, RawQuery(q): RawQuery) -> Reply {
    result((|| {
        let request: TickersRequest = parse_query(q.as_deref().unwrap_or(""))?;
        linear(Some(&request.category))?;
        if let Some(symbol) = &request.symbol {
            symbol_index(&shared, symbol)?;
        }
        let list: Vec<_> = shared
            .symbols
            .iter()
            .filter(|s| request.symbol.as_ref().is_none_or(|w| *w == s.units.symbol))
            .map(|s| s.ticker.lock().expect("ticker").clone())
            .collect();
        Ok(Reply::ok(ListResult { category: Some(Category::Linear), list, next_page_cursor: None }))
    })())
}

/// Authenticates a POST and parses its body.
fn post_request<T: DeserializeOwned>(
    shared: &Shared,
    headers: &HeaderMap,
    endpoint: &'static str,
    body: &Bytes,
) -> Result<(Caller, T), Reply> {
    let text = std::str::from_utf8(body).map_err(|_| Reply::param("the body is not UTF-8"))?;
    let caller = authenticate(shared, headers, endpoint, text)?;
    let request = parse_body(text).map_err(|e| Reply { limit: Some(caller.limit), ..e })?;
    Ok((caller, request))
}

/// Authenticates a GET and parses its query.
fn get_request<T: DeserializeOwned>(
    shared: &Shared,
    headers: &HeaderMap,
    endpoint: &'static str,
    query: Option<&str>,
) -> Result<(Caller, T), Reply> {
    let query = query.unwrap_or("");
    let caller = authenticate(shared, headers, endpoint, query)?;
    let request = parse_query(query).map_err(|e| Reply { limit: Some(caller.limit), ..e })?;
    Ok((caller, request))
}

/// Runs a private handler on an authenticated, parsed request: waits out a latency spike, calls
/// `handler(shared, account, request)`, and puts the caller's rate-limit headers on the answer.
async fn private<T, F, Fut>(shared: Arc<Shared>, parsed: Result<(Caller, T), Reply>, handler: F) -> Reply
where
    F: FnOnce(Arc<Shared>, usize, T) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, Reply>>,
{
    stall(&shared).await;
    match parsed {
        Err(reply) => reply,
        Ok((caller, request)) => {
            let reply = handler(shared, caller.account, request).await.unwrap_or_else(|e| e);
            Reply { limit: Some(caller.limit), ..reply }
        }
    }
}

fn ack(ack: OrderAck) -> Reply {
    Reply::ok(OrderIdResult { order_id: ack.order_id, order_link_id: ack.order_link_id })
}

async fn order_create(State(shared): Shr, headers: HeaderMap, body: Bytes) -> Reply {
    let at = Instant::now();
    let parsed = post_request::<CreateOrderRequest>(&shared, &headers, path::ORDER_CREATE, &body);
    private(shared, parsed, |s, account, request| async move {
        let order = order_request(&s, &request)?;
        if let Some(reject) = s.faults.reject {
            let hit = s.dice.lock().expect("dice").hit(Some(reject.probability));
            if hit {
                let message =
                    RetCode::from_code(reject.ret_code).map_or("rejected by fault injection", |c| c.message());
                s.fault_log.record(
                    wall_ms(),
                    "reject",
                    json!({"account": account, "ret_code": reject.ret_code, "orderLinkId": request.order_link_id}),
                );
                return Err(Reply::error(reject.ret_code, message));
            }
        }
        let fault = market_fault(&s, &order);
        if let Some(fault) = fault {
            let detail = json!({"account": account, "orderLinkId": request.order_link_id});
            s.fault_log.record(wall_ms(), fault.name(), detail);
        }
        let result = ask(&s, |reply| Command::Create { account, request: order, fault, at, reply }).await?;
        Ok(result.map_or_else(exchange_error, ack))
    })
    .await
}

/// The fault, if any, that strikes market order `order`: `unfilled` is drawn first, then `partial` (a plan without a
/// fault draws nothing for it, so adding one leaves the others' draws as they were).
fn market_fault(shared: &Shared, order: &OrderRequest) -> Option<MarketFault> {
    if order.order_type != ExOrderType::Market {
        return None;
    }
    let mut dice = shared.dice.lock().expect("dice");
    if dice.hit(shared.faults.unfilled.map(|c| c.probability)) {
        Some(MarketFault::Unfilled)
    } else if dice.hit(shared.faults.partial.map(|c| c.probability)) {
        Some(MarketFault::Partial)
    } else {
        None
    }
}

/// A create request in units, checked against the symbol.
fn order_request(shared: &Shared, request: &CreateOrderRequest) -> Result<OrderRequest, Reply> {
    linear(Some(&request.category))?;
    let symbol = symbol_index(shared, &request.symbol)?;
    let data = &shared.symbols[symbol];
    let qty = units(&request.qty, data.units.qty, "qty")?;
    let price = |field: &str, value: &Option<Dec>| -> Result<Option<i64>, Reply> {
        match value {
            Some(v) if !v.is_empty() && !v.is_zero() => units(v, data.units.price, field).map(Some),
            _ => Ok(None),
        }
    };
    let order_type = match request.order_type {
        OrderType::Limit => ExOrderType::Limit,
        OrderType::Market => ExOrderType::Market,
        _ => return Err(Reply::param("orderType must be Market or Limit")),
    };
    let tif = match request.time_in_force.clone().unwrap_or(TimeInForce::Gtc) {
        TimeInForce::Gtc => apex_core::TimeInForce::Gtc,
        TimeInForce::Ioc => apex_core::TimeInForce::Ioc,
        TimeInForce::Fok => apex_core::TimeInForce::Fok,
        TimeInForce::PostOnly => apex_core::TimeInForce::PostOnly,
        other => return Err(Reply::param(format!("timeInForce {other} is not supported"))),
    };
    let link = request.order_link_id.clone().unwrap_or_default();
    if !link.is_empty() && !is_valid_order_link_id(&link) {
        return Err(Reply::param("orderLinkId must be at most 36 characters of [A-Za-z0-9_-]"));
    }
    if request.position_idx.is_some_and(|i| i != 0) {
        return Err(Reply::param("position idx not match position mode (one-way mode: positionIdx 0)"));
    }
    if request.trigger_price.as_ref().is_some_and(|p| !p.is_empty() && !p.is_zero()) {
        return Err(Reply::param("conditional orders (triggerPrice) are not supported by this venue"));
    }
    // "None", "" and no smpType keep the simulation's default; Bybit refuses a value outside its list with 10001.
    let stp = match request.smp_type.as_ref().map(apex_bybit::SmpType::as_str) {
        None | Some("" | "None" | "CancelTaker") => StpMode::CancelTaker,
        Some("CancelMaker") => StpMode::CancelMaker,
        Some("CancelBoth") => StpMode::CancelBoth,
        Some(other) => {
            return Err(Reply::param(format!(
                "smpType '{other}' is invalid: expected None, CancelMaker, CancelTaker or CancelBoth"
            )));
        }
    };
    Ok(OrderRequest {
        symbol,
        side: request.side,
        order_type,
        qty,
        price: if order_type == ExOrderType::Limit { price("price", &request.price)? } else { None },
        tif,
        order_link_id: link,
        reduce_only: request.reduce_only.unwrap_or(false),
        close_on_trigger: request.close_on_trigger.unwrap_or(false),
        take_profit: price("takeProfit", &request.take_profit)?,
        stop_loss: price("stopLoss", &request.stop_loss)?,
        stp,
    })
}

async fn order_amend(State(shared): Shr, headers: HeaderMap, body: Bytes) -> Reply {
    let at = Instant::now();
    let parsed = post_request::<AmendOrderRequest>(&shared, &headers, path::ORDER_AMEND, &body);
    private(shared, parsed, |s, account, request| async move {
        linear(Some(&request.category))?;
        let symbol = symbol_index(&s, &request.symbol)?;
        let data = &s.symbols[symbol];
        let qty = request.qty.as_ref().map(|q| units(q, data.units.qty, "qty")).transpose()?;
        let price = request.price.as_ref().map(|p| units(p, data.units.price, "price")).transpose()?;
        let (order_id, order_link_id) = (request.order_id.clone(), request.order_link_id.clone());
        let result =
            ask(&s, |reply| Command::Amend { account, symbol, order_id, order_link_id, qty, price, at, reply }).await?;
        Ok(result.map_or_else(exchange_error, ack))
    })
    .await
}

async fn order_cancel(State(shared): Shr, headers: HeaderMap, body: Bytes) -> Reply {
    let at = Instant::now();
    let parsed = post_request::<CancelOrderRequest>(&shared, &headers, path::ORDER_CANCEL, &body);
    private(shared, parsed, |s, account, request| async move {
        linear(Some(&request.category))?;
        let symbol = symbol_index(&s, &request.symbol)?;
        let (order_id, order_link_id) = (request.order_id.clone(), request.order_link_id.clone());
        let result = ask(&s, |reply| Command::Cancel { account, symbol, order_id, order_link_id, at, reply }).await?;
        Ok(result.map_or_else(exchange_error, ack))
    })
    .await
}

async fn order_cancel_all(State(shared): Shr, headers: HeaderMap, body: Bytes) -> Reply {
    let at = Instant::now();
    let parsed = post_request::<CancelAllRequest>(&shared, &headers, path::ORDER_CANCEL_ALL, &body);
    private(shared, parsed, |s, account, request| async move {
        linear(Some(&request.category))?;
        let symbol = match &request.symbol {
            Some(symbol) => Some(symbol_index(&s, symbol)?),
            None if request.settle_coin.as_deref() == Some("USDT") || request.base_coin.is_some() => None,
            None => return Err(Reply::param("symbol, baseCoin or settleCoin is required")),
        };
        let acks = ask(&s, |reply| Command::CancelAll { account, symbol, at, reply }).await?;
        let list =
            acks.into_iter().map(|a| OrderIdResult { order_id: a.order_id, order_link_id: a.order_link_id }).collect();
        Ok(Reply::ok(CancelAllResult { list, success: Some("1".into()) }))
    })
    .await
}

/// Pages a list: `cursor` is the offset of the page.
fn page<T: Serialize>(
    list: Vec<T>,
    limit: Option<u32>,
    max: u32,
    default: u32,
    cursor: Option<&str>,
) -> Result<Reply, Reply> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(Reply::param(format!("limit must be in [1, {max}]")));
    }
    let start: usize = match cursor.filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => c.parse().map_err(|_| Reply::param("cursor is invalid"))?,
    };
    let end = (start + limit as usize).min(list.len());
    let next = if end < list.len() { end.to_string() } else { String::new() };
    let page: Vec<T> = list.into_iter().skip(start).take(end.saturating_sub(start)).collect();
    Ok(Reply::ok(ListResult { category: Some(Category::Linear), list: page, next_page_cursor: Some(next) }))
}

async fn orders(
    State(shared): Shr,
    headers: HeaderMap,
    q: Option<String>,
    endpoint: &'static str,
    query: Query,
) -> Reply {
    let parsed = get_request::<OrderQuery>(&shared, &headers, endpoint, q.as_deref());
    private(shared, parsed, |s, account, request| async move {
        linear(Some(&request.category))?;
        let symbol = request.symbol.as_deref().map(|name| symbol_index(&s, name)).transpose()?;
        let Answer::Orders(list) = ask(&s, |reply| Command::Query { account, query, reply }).await? else {
            return Err(Reply::code(RetCode::ServerError));
        };
        let list: Vec<_> = list
            .into_iter()
            .filter(|(sym, o)| {
                symbol.is_none_or(|w| w == *sym)
                    && request.order_id.as_ref().is_none_or(|id| *id == o.order_id)
                    && request.order_link_id.as_ref().is_none_or(|id| *id == o.order_link_id)
                    && request.order_status.as_ref().is_none_or(|st| *st == o.order_status)
                    && request.start_time.is_none_or(|t| o.created_time >= t)
                    && request.end_time.is_none_or(|t| o.created_time <= t)
            })
            .map(|(_, o)| o)
            .collect();
        page(list, request.limit, 50, 20, request.cursor.as_deref())
    })
    .await
}

async fn order_realtime(state: Shr, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    orders(state, headers, q, path::ORDER_REALTIME, Query::OpenOrders).await
}

async fn order_history(state: Shr, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    orders(state, headers, q, path::ORDER_HISTORY, Query::OrderHistory).await
}

async fn position_list(State(shared): Shr, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    let parsed = get_request::<PositionListRequest>(&shared, &headers, path::POSITION_LIST, q.as_deref());
    private(shared, parsed, |s, account, request| async move {
        linear(Some(&request.category))?;
        let symbol = match (&request.symbol, request.settle_coin.as_deref()) {
            (Some(name), _) => Some(symbol_index(&s, name)?),
            (None, Some("USDT")) => None,
            (None, Some(other)) => {
                return Err(Reply::param(format!("settleCoin {other} is not served (USDT only)")));
            }
            (None, None) => return Err(Reply::param("symbol or settleCoin is required")),
        };
        let Answer::Positions(list) =
            ask(&s, |reply| Command::Query { account, query: Query::Positions, reply }).await?
        else {
            return Err(Reply::code(RetCode::ServerError));
        };
        // With a symbol the row comes even for a flat position; with only settleCoin, open positions only.
        let list: Vec<_> = list
            .into_iter()
            .filter(|(sym, p)| match symbol {
                Some(w) => w == *sym,
                None => !p.size.is_zero(),
            })
            .map(|(_, p)| p)
            .collect();
        page(list, request.limit, 200, 20, request.cursor.as_deref())
    })
    .await
}

async fn execution_list(State(shared): Shr, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    let parsed = get_request::<ExecutionListRequest>(&shared, &headers, path::EXECUTION_LIST, q.as_deref());
    private(shared, parsed, |s, account, request| async move {
        linear(Some(&request.category))?;
        let symbol = request.symbol.as_deref().map(|name| symbol_index(&s, name)).transpose()?;
        let Answer::Executions(list) =
            ask(&s, |reply| Command::Query { account, query: Query::Executions, reply }).await?
        else {
            return Err(Reply::code(RetCode::ServerError));
        };
        let list: Vec<_> = list
            .into_iter()
            .filter(|(sym, e)| {
                symbol.is_none_or(|w| w == *sym)
                    && request.order_id.as_ref().is_none_or(|id| *id == e.order_id)
                    && request.order_link_id.as_ref().is_none_or(|id| *id == e.order_link_id)
                    && request.start_time.is_none_or(|t| e.exec_time >= t)
                    && request.end_time.is_none_or(|t| e.exec_time <= t)
            })
            .map(|(_, e)| e)
            .collect();
        page(list, request.limit, 100, 50, request.cursor.as_deref())
    })
    .await
}

async fn wallet_balance(State(shared): Shr, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    let parsed = get_request::<WalletBalanceRequest>(&shared, &headers, path::WALLET_BALANCE, q.as_deref());
    private(shared, parsed, |s, account, request| async move {
        if request.account_type != AccountType::Unified {
            return Err(Reply::param(format!("accountType only support UNIFIED, got {}", request.account_type)));
        }
        let Answer::Wallet(wallet) = ask(&s, |reply| Command::Query { account, query: Query::Wallet, reply }).await?
        else {
            return Err(Reply::code(RetCode::ServerError));
        };
        Ok(Reply::ok(apex_bybit::rest::account::WalletBalanceResult { list: vec![*wallet] }))
    })
    .await
}

async fn set_leverage(State(shared): Shr, headers: HeaderMap, body: Bytes) -> Reply {
    let parsed = post_request::<SetLeverageRequest>(&shared, &headers, path::SET_LEVERAGE, &body);
    private(shared, parsed, |s, account, request| async move {
        linear(Some(&request.category))?;
        let symbol = symbol_index(&s, &request.symbol)?;
        if request.buy_leverage != request.sell_leverage {
            return Err(Reply::param("buyLeverage must equal sellLeverage in one-way mode"));
        }
        let leverage_x100 = units(&request.buy_leverage, Scale::new(2).expect("2 decimals"), "buyLeverage")?;
        let result = ask(&s, |reply| Command::SetLeverage { account, symbol, leverage_x100, reply }).await?;
        Ok(result.map_or_else(exchange_error, |()| Reply::ok(Map::new())))
    })
    .await
}

async fn trading_stop(State(shared): Shr, headers: HeaderMap, body: Bytes) -> Reply {
    let at = Instant::now();
    let parsed = post_request::<TradingStopRequest>(&shared, &headers, path::TRADING_STOP, &body);
    private(shared, parsed, |s, account, request| async move {
        linear(Some(&request.category))?;
        let symbol = symbol_index(&s, &request.symbol)?;
        let scale = s.symbols[symbol].units.price;
        // Absent: unchanged; "0": cancel; a price: set.
        let trigger = |field: &str, value: &Option<Dec>| -> Result<Option<Option<i64>>, Reply> {
            match value {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) if v.is_zero() => Ok(Some(None)),
                Some(v) => units(v, scale, field).map(|u| Some(Some(u))),
            }
        };
        let take_profit = trigger("takeProfit", &request.take_profit)?;
        let stop_loss = trigger("stopLoss", &request.stop_loss)?;
        let result =
            ask(&s, |reply| Command::TradingStop { account, symbol, take_profit, stop_loss, at, reply }).await?;
        Ok(result.map_or_else(exchange_error, |()| Reply::ok(Map::new())))
    })
    .await
}

/// `POST /v5/order/disconnected-cancel-all`: the account's window for `DERIVATIVES` (the only product served; Bybit's
/// default product, `OPTIONS`, must therefore be named away), from the next loss of its `dcp.future` connections on.
async fn dcp_set(State(shared): Shr, headers: HeaderMap, body: Bytes) -> Reply {
    let parsed = post_request::<SetDcpRequest>(&shared, &headers, path::DCP_SET, &body);
    private(shared, parsed, |s, account, request| async move {
        let product = request.product.unwrap_or(DcpProduct::Options);
        if product != DcpProduct::Derivatives {
            return Err(Reply::param(format!("product {product} is not served by this venue (DERIVATIVES only)")));
        }
        let window = check_window(request.time_window).map_err(Reply::param)?;
        s.protection.set_window(account, window);
        // Bybit answers this endpoint with `retMsg` "success" and an empty result.
        Ok(Reply::envelope(0, "success", json!({})))
    })
    .await
}

/// `GET /v5/account/query-dcp-info`: the account's setting (none until one is set).
async fn dcp_info(State(shared): Shr, headers: HeaderMap, RawQuery(q): RawQuery) -> Reply {
    let parsed = get_request::<Map<String, Value>>(&shared, &headers, path::DCP_INFO, q.as_deref());
    private(shared, parsed, |s, account, _| async move {
        let dcp_infos = s
            .protection
            .window(account)
            .map(|w| DcpInfo { product: DcpProduct::Derivatives, dcp_status: "ON".into(), time_window: w.to_string() })
            .into_iter()
            .collect();
        Ok(Reply::ok(DcpInfoResult { dcp_infos }))
    })
    .await
}

/// `GET /apex/v1/book-checksum?symbol=&depth=&u=`: the checksum of the venue's top 50 levels of an order-book topic
/// at update `u` (while that topic has subscribers; the last 8192 updates), so a client can prove its rebuilt book.
async fn book_checksum(State(shared): Shr, RawQuery(q): RawQuery) -> Reply {
    #[derive(serde::Deserialize)]
    struct Request {
        symbol: String,
        depth: u32,
        u: u64,
    }
    result((|| {
        let request: Request = parse_query(q.as_deref().unwrap_or(""))?;
        let symbol = symbol_index(&shared, &request.symbol)?;
        let depth = apex_bybit::messages::ORDERBOOK_DEPTHS
            .iter()
            .position(|&d| d == request.depth)
            .ok_or_else(|| Reply::param(format!("depth {} is not served", request.depth)))?;
        let book = shared.symbols[symbol].books[depth].lock().expect("book state");
        let found = book.checksums.iter().rev().find(|(u, _)| *u == request.u).map(|(_, c)| *c);
        let current = book.u;
        drop(book);
        match found {
            Some(checksum) => Ok(Reply::ok(
                json!({"symbol": request.symbol, "depth": request.depth, "u": request.u, "checksum": checksum}),
            )),
            None => Ok(Reply {
                status: StatusCode::NOT_FOUND,
                ..Reply::error(
                    RetCode::ParamError.code(),
                    format!("no checksum for u={} (current u={current}; kept while subscribed, last 8192)", request.u),
                )
            }),
        }
    })())
}

/// `GET /apex/v1/faults`: how many faults of each kind were injected.
async fn fault_counts(State(shared): Shr) -> Reply {
    Reply::ok(shared.fault_log.counts())
}

/// Seeded fault draws of the REST gateway.
#[must_use]
pub fn rest_dice(seed: u64) -> Dice {
    Dice::new(seed, u64::MAX)
}
