//! Bybit's error envelope for the answers the HTTP stack writes on its own, so a client always finds
//! `{"retCode", "retMsg", "result", "retExtInfo", "time"}` whatever went wrong (the HTTP status is kept):
//!
//! * a method a path does not take (405), a body over the limit (413), a failed WebSocket upgrade: axum answers these
//!   with plain text or nothing; [`errors_in_envelope`] rewrites them (and refuses a GET with a body, as Bybit does);
//! * a request head hyper cannot parse (400), a URL over 65534 bytes (414), a head over about 400 KB (431): hyper
//!   answers these itself, with an empty body, before any handler or middleware runs; [`EnvelopedListener`] wraps
//!   every connection and replaces those automatic answers on their way out.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use apex_bybit::errors::RetCode;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::clock::wall_ms;

/// The envelope's JSON bytes for an error.
#[must_use]
pub fn error_body(code: RetCode, message: &str) -> Vec<u8> {
    let body = apex_bybit::rest::Response {
        ret_code: code.code(),
        ret_msg: message.to_owned(),
        result: json!({}),
        ret_ext_info: Map::new(),
        time: wall_ms(),
    };
    serde_json::to_vec(&body).expect("the envelope serializes")
}

/// The retCode and message of an error status the framework produced for `method path`.
fn describe(status: StatusCode, method: &str, path: &str, allow: Option<&str>) -> (RetCode, String) {
    match status {
        // The path exists but not for this method: for the client it is a route that is not there, like a path
        // that is unknown (10017, as the fallback answers).
        StatusCode::METHOD_NOT_ALLOWED => {
            // `Allow` is added outside this middleware, so it is seldom known here; the header still reaches the client.
            let allowed = allow.map_or_else(String::new, |a| format!(" (it takes {a})"));
            (RetCode::RouteNotFound, format!("Route not found: {path} does not take {method}{allowed}"))
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            (RetCode::ParamError, format!("Request parameter error: the body is over the {MAX_BODY_TEXT} limit"))
        }
        StatusCode::URI_TOO_LONG => {
            (RetCode::ParamError, "Request parameter error: the URL is over the 65534-byte limit".to_owned())
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            RetCode::ParamError,
            "Request parameter error: the request line and headers are over the 400 KB limit (or over 100 headers)"
                .to_owned(),
        ),
        status if status.is_server_error() => (RetCode::ServerError, RetCode::ServerError.message().to_owned()),
        status => {
            let reason = status.canonical_reason().unwrap_or("bad request");
            (RetCode::ParamError, format!("Request parameter error: {reason} ({method} {path})"))
        }
    }
}

/// The body limit axum applies to every extractor (its default `DefaultBodyLimit`), in bytes and as users read it.
const MAX_BODY_BYTES: u64 = 2 * 1024 * 1024;
const MAX_BODY_TEXT: &str = "2 MB";

/// Middleware: an error answer that is not already JSON (axum's own 405, 413, WebSocket upgrade rejections) gets
/// Bybit's envelope, keeping its status and headers such as `Allow`.
pub async fn errors_in_envelope(request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && carries_body(request.headers()) {
        // Bybit refuses a GET with a body, even an empty JSON one, with HTTP 403 (docs/v5/error.mdx "HTTP Code",
        // reference §4.2): a client that sends one works here and fails there, so it fails here too.
        let message = format!("Request parameter error: GET {path} must not carry a body (parameters go in the query)");
        return envelope_response(StatusCode::FORBIDDEN, RetCode::ParamError, &message);
    }
    if content_length(request.headers()).is_some_and(|n| n > MAX_BODY_BYTES) {
        // Refused from its announced length, before any of it is read (the extractor would read 2 MB first).
        let (code, message) = describe(StatusCode::PAYLOAD_TOO_LARGE, &method, &path, None);
        return envelope_response(StatusCode::PAYLOAD_TOO_LARGE, code, &message);
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (code, message) = describe(status, &method, &path, allow.as_deref());
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.insert("Timenow", HeaderValue::from_str(&wall_ms().to_string()).expect("digits"));
    Response::from_parts(parts, Body::from(error_body(code, &message)))
}

/// The announced `Content-Length` (hyper has already refused a malformed one).
fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

/// True when a request announces a body: a non-zero `Content-Length` or any `Transfer-Encoding`.
fn carries_body(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING) || content_length(headers).is_some_and(|n| n > 0)
}

/// A response of `status` carrying the envelope.
fn envelope_response(status: StatusCode, code: RetCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(error_body(code, message)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert("Timenow", HeaderValue::from_str(&wall_ms().to_string()).expect("digits"));
    response
}

/// The venue's TCP listener: like axum's, with each connection wrapped in [`EnvelopedStream`].
#[derive(Debug)]
pub struct EnvelopedListener(pub TcpListener);

impl axum::serve::Listener for EnvelopedListener {
    type Io = EnvelopedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, address) = axum::serve::Listener::accept(&mut self.0).await;
        (EnvelopedStream { inner: stream, replacement: Vec::new(), written: 0 }, address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose automatic error answers from hyper are replaced with the envelope.
///
/// hyper writes those answers (400, 414, 431 with `content-length: 0` and no content type) as one head, then closes
/// the connection. The stream reports no vectored writes, so hyper flattens every response into one buffer and a
/// head always starts a write; a head of one of those statuses without a content type can only be hyper's own (every
/// answer of the venue's handlers and middleware carries `content-type`).
#[derive(Debug)]
pub struct EnvelopedStream {
    inner: TcpStream,
    /// A replacement answer still being written, and how much of it is out.
    replacement: Vec<u8>,
    written: usize,
}

impl EnvelopedStream {
    /// Writes what is left of a replacement; ready once all of it is out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.replacement.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.replacement[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The enveloped answer replacing a head hyper wrote for a request it could not parse, if `head` is one.
fn replacement_for(head: &[u8]) -> Option<Vec<u8>> {
    // Every write of every connection (WebSocket frames included) passes here: a prefix test, no allocation.
    let status = [
        (b"HTTP/1.1 400 ", StatusCode::BAD_REQUEST),
        (b"HTTP/1.1 414 ", StatusCode::URI_TOO_LONG),
        (b"HTTP/1.1 431 ", StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
    ]
    .into_iter()
    .find_map(|(prefix, status)| head.starts_with(prefix).then_some(status))?;
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let lines = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    if lines.contains("\r\ncontent-type:") || !lines.contains("\r\ncontent-length: 0") {
        return None;
    }
    let message = match status {
        StatusCode::BAD_REQUEST => "Request parameter error: the request is not valid HTTP/1.1".to_owned(),
        status => describe(status, "", "", None).1,
    };
    let body = error_body(RetCode::ParamError, &message);
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

impl AsyncRead for EnvelopedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for EnvelopedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(answer) = replacement_for(buf) {
            // The whole automatic head is taken; the replacement goes out in its place.
            self.replacement = answer;
            self.written = 0;
            // The write is reported done even if the socket is not ready yet: flush and shutdown drain the rest.
            let _ = self.drain(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_automatic_error_heads_are_replaced() {
        let automatic = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(replacement_for(automatic).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        let body: serde_json::Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["retCode"], 10001);
        // The venue's own answers carry a content type and are left alone, as is any other status.
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement_for(own).is_none());
        assert!(replacement_for(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement_for(b"{\"retCode\":0}").is_none());
    }
}
