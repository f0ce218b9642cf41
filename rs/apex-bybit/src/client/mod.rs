//! The async client: REST ([`rest::RestClient`]) and the WebSocket supervisors ([`public::PublicFeed`],
//! [`private::PrivateFeed`]) for the local venue, testnet or mainnet, with the clock, rate-limit and reconnect
//! machinery they share.

pub mod backoff;
pub mod clock;
pub mod private;
pub mod public;
pub mod ratelimit;
pub mod rest;
pub mod target;
pub mod ws;

use thiserror::Error;

use crate::errors::RetCode;

/// Everything the client can fail with. Messages never contain an API secret; an API key echoed by the exchange
/// (a 10004's `origin_string`) is masked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    /// A bad target, ready file, key file or environment.
    #[error("{detail}")]
    Config { detail: String },
    /// The exchange answered with a non-zero `retCode`.
    #[error("{endpoint}: retCode {code}: {message}")]
    Api { endpoint: String, code: i64, message: String },
    /// An HTTP status other than 2xx (403 IP limit, 404, 5xx...).
    #[error("{endpoint}: HTTP {status}: {body}")]
    Http { endpoint: String, status: u16, body: String },
    /// No answer in time: the request may or may not have been executed.
    #[error("{endpoint}: no answer within {timeout_ms} ms")]
    Timeout { endpoint: String, timeout_ms: u64 },
    /// The connection failed. `sent` is false only when it failed before the request could leave.
    #[error("{endpoint}: {detail}")]
    Transport { endpoint: String, detail: String, sent: bool },
    /// An answer that is not the V5 shape expected.
    #[error("{endpoint}: unreadable answer: {detail}")]
    Decode { endpoint: String, detail: String },
    #[error("{endpoint} is a signed endpoint and no API credentials were given")]
    NoCredentials { endpoint: String },
    #[error("{endpoint}: cannot encode the request: {detail}")]
    Encode { endpoint: String, detail: String },
    /// A create whose outcome stayed unknown after every retry and lookup; it may exist on the exchange.
    #[error("order {order_link_id}: outcome unknown after {attempts} attempts: {last}")]
    UnknownOutcome { order_link_id: String, attempts: u32, last: String },
}

impl ClientError {
    /// The `retCode` of an exchange error.
    #[must_use]
    pub fn ret_code(&self) -> Option<i64> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when `self` is the exchange error `code`.
    #[must_use]
    pub fn is(&self, code: RetCode) -> bool {
        self.ret_code() == Some(code.code())
    }

    /// True when the request may have been executed although no answer says so: a timeout, a connection lost after
    /// sending, a server error (HTTP 5xx, or retCode 10016 "Server error", which pybit also retries), or a success
    /// status whose body cannot be read. A create in this state must be looked up before it is retried.
    #[must_use]
    pub fn outcome_unknown(&self) -> bool {
        match self {
            ClientError::Timeout { .. } | ClientError::Decode { .. } => true,
            ClientError::Api { code, .. } => *code == RetCode::ServerError.code(),
            ClientError::Transport { sent, .. } => *sent,
            ClientError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}
