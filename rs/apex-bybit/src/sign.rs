//! HMAC-SHA256 signatures of V5 REST requests (exact query string or raw body) and of the WebSocket `auth`, and
//! their constant-time verification for the venue.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// `X-BAPI-RECV-WINDOW` when none is given: Bybit's default.
pub const DEFAULT_RECV_WINDOW_MS: i64 = 5000;

pub const HEADER_API_KEY: &str = "X-BAPI-API-KEY";
pub const HEADER_TIMESTAMP: &str = "X-BAPI-TIMESTAMP";
pub const HEADER_SIGN: &str = "X-BAPI-SIGN";
pub const HEADER_RECV_WINDOW: &str = "X-BAPI-RECV-WINDOW";

/// An API key and its secret. `Debug` hides both, so a logged value never leaks them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    api_key: String,
    api_secret: String,
}

impl Credentials {
    #[must_use]
    pub fn new(api_key: impl Into<String>, api_secret: impl Into<String>) -> Credentials {
        Credentials { api_key: api_key.into(), api_secret: api_secret.into() }
    }

    #[must_use]
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The four auth headers of a REST request whose payload (query string for GET, raw body for POST) is `payload`.
    #[must_use]
    pub fn rest_headers(&self, timestamp_ms: i64, recv_window_ms: i64, payload: &str) -> AuthHeaders {
        AuthHeaders {
            api_key: self.api_key.clone(),
            timestamp: timestamp_ms.to_string(),
            recv_window: recv_window_ms.to_string(),
            sign: rest_signature(&self.api_secret, &self.api_key, timestamp_ms, recv_window_ms, payload),
        }
    }

    /// The signature of a WebSocket `auth` that expires at `expires_ms`.
    #[must_use]
    pub fn ws_auth_signature(&self, expires_ms: i64) -> String {
        ws_auth_signature(&self.api_secret, expires_ms)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("api_key", &"<hidden>").field("api_secret", &"<hidden>").finish()
    }
}

/// The auth headers of a signed REST request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeaders {
    pub api_key: String,
    pub timestamp: String,
    pub recv_window: String,
    pub sign: String,
}

impl AuthHeaders {
    /// `(header name, value)` pairs in Bybit's spelling.
    #[must_use]
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            (HEADER_API_KEY, &self.api_key),
            (HEADER_TIMESTAMP, &self.timestamp),
            (HEADER_SIGN, &self.sign),
            (HEADER_RECV_WINDOW, &self.recv_window),
        ]
    }
}

fn mac(secret: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length")
}

/// Lowercase hex HMAC-SHA256 of `message` under `secret`.
#[must_use]
pub fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = mac(secret);
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The string a REST request signs: `timestamp + api_key + recv_window + payload`, where `payload` is the query
/// string exactly as sent (GET) or the raw body exactly as sent (POST), `""` when there is none.
#[must_use]
pub fn rest_prehash(timestamp_ms: i64, api_key: &str, recv_window_ms: i64, payload: &str) -> String {
    format!("{timestamp_ms}{api_key}{recv_window_ms}{payload}")
}

/// `X-BAPI-SIGN` of a REST request.
#[must_use]
pub fn rest_signature(
    api_secret: &str,
    api_key: &str,
    timestamp_ms: i64,
    recv_window_ms: i64,
    payload: &str,
) -> String {
    hmac_hex(api_secret, &rest_prehash(timestamp_ms, api_key, recv_window_ms, payload))
}

/// The string a WebSocket `auth` signs: `"GET/realtime" + expires`.
#[must_use]
pub fn ws_auth_prehash(expires_ms: i64) -> String {
    format!("GET/realtime{expires_ms}")
}

/// Third argument of the WebSocket `auth` op.
#[must_use]
pub fn ws_auth_signature(api_secret: &str, expires_ms: i64) -> String {
    hmac_hex(api_secret, &ws_auth_prehash(expires_ms))
}

/// True when `signature` (hex, either case) is the HMAC-SHA256 of `message` under `secret`; compared in constant
/// time so a venue does not leak how much of a guess was right.
#[must_use]
pub fn verify(secret: &str, message: &str, signature: &str) -> bool {
    let Ok(bytes) = hex::decode(signature) else { return false };
    let mut mac = mac(secret);
    mac.update(message.as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // reference/bybit-v5.md §0 and §4.3 (nautilus_trader's credential tests, re-verified with Python hmac).
    const SECRET: &str = "test_secret";
    const KEY: &str = "test_api_key";
    const TS: i64 = 1_700_000_000_000;

    #[test]
    fn rest_get_vector() {
        let query = "category=linear&symbol=BTCUSDT";
        assert_eq!(rest_prehash(TS, KEY, 5000, query), "1700000000000test_api_key5000category=linear&symbol=BTCUSDT");
        let expected = "fd4f31228a46109dc6673062328693696df9a96c7ff04e6491a45e7f63a0fdd7";
        assert_eq!(rest_signature(SECRET, KEY, TS, 5000, query), expected);
        let headers = Credentials::new(KEY, SECRET).rest_headers(TS, 5000, query);
        assert_eq!(
            headers.pairs(),
            [
                ("X-BAPI-API-KEY", KEY),
                ("X-BAPI-TIMESTAMP", "1700000000000"),
                ("X-BAPI-SIGN", expected),
                ("X-BAPI-RECV-WINDOW", "5000")
            ]
        );
        assert!(verify(SECRET, &rest_prehash(TS, KEY, 5000, query), expected));
        assert!(verify(SECRET, &rest_prehash(TS, KEY, 5000, query), &expected.to_uppercase()));
    }

    #[test]
    fn ws_auth_vector() {
        assert_eq!(ws_auth_prehash(TS), "GET/realtime1700000000000");
        let expected = "bacffe7500499eb829bb58c45d36d1b3e5ac67c14eaeba91df5e99ccee013925";
        assert_eq!(ws_auth_signature(SECRET, TS), expected);
        assert_eq!(Credentials::new(KEY, SECRET).ws_auth_signature(TS), expected);
        assert!(verify(SECRET, "GET/realtime1700000000000", expected));
    }

    #[test]
    fn any_changed_byte_fails_verification() {
        let body = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001"}"#;
        let message = rest_prehash(TS, KEY, 5000, body);
        let good = hmac_hex(SECRET, &message);
        assert!(verify(SECRET, &message, &good));
        // Whitespace in the body is part of what is signed (reference §4.2, pitfall 14).
        let spaced = body.replace(',', ", ");
        assert!(!verify(SECRET, &rest_prehash(TS, KEY, 5000, &spaced), &good));
        assert!(!verify("other", &message, &good));
        assert!(!verify(SECRET, &message, &good[1..]));
        assert!(!verify(SECRET, &message, "zz"));
        assert!(!verify(SECRET, &message, ""));
    }

    /// RFC 2104 written out over plain SHA-256: the reference the library HMAC is checked against.
    fn reference_hmac_hex(secret: &[u8], message: &[u8]) -> String {
        use sha2::Digest;
        let mut key = [0u8; 64];
        if secret.len() > 64 {
            key[..32].copy_from_slice(&Sha256::digest(secret));
        } else {
            key[..secret.len()].copy_from_slice(secret);
        }
        let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
        let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
        hex::encode(Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
    }

    proptest::proptest! {
        #[test]
        fn matches_the_reference_hmac(secret in ".{0,80}", key in "[a-zA-Z0-9]{0,20}", ts in 0i64..1 << 50,
                                      recv in 0i64..100_000, payload in ".{0,200}") {
            let expected = reference_hmac_hex(secret.as_bytes(), rest_prehash(ts, &key, recv, &payload).as_bytes());
            let sign = rest_signature(&secret, &key, ts, recv, &payload);
            proptest::prop_assert_eq!(&sign, &expected);
            proptest::prop_assert!(verify(&secret, &rest_prehash(ts, &key, recv, &payload), &sign));
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let text = format!("{:?}", Credentials::new("key-123", "s3cr3t"));
        assert!(!text.contains("key-123") && !text.contains("s3cr3t"), "{text}");
    }
}
