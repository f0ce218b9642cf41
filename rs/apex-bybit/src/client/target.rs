//! Where the client connects: the local venue (URLs from its ready file), Bybit testnet, or Bybit mainnet, which
//! needs an explicit opt-in value; and where API keys come from (the environment or a 0600 file, never arguments).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::client::ClientError;
use crate::sign::Credentials;

/// Which exchange a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The local venue (`apexctl venue`), on loopback.
    Local,
    Testnet,
    Mainnet,
}

/// Proof that the caller asked for mainnet on purpose: the only way to build a mainnet [`Target`]. Spell it out at
/// the call site, e.g. `MainnetOptIn::REAL_MONEY`, after an explicit user flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainnetOptIn {
    _private: (),
}

impl MainnetOptIn {
    /// "Orders on this target trade real money."
    pub const REAL_MONEY: MainnetOptIn = MainnetOptIn { _private: () };
}

/// The three endpoints of an exchange: REST base URL, public linear WebSocket, private WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub network: Network,
    pub rest: String,
    pub ws_public: String,
    pub ws_private: String,
}

impl Target {
    /// Bybit testnet (the default remote target).
    #[must_use]
    pub fn testnet() -> Target {
        Target {
            network: Network::Testnet,
            rest: "https://api-testnet.bybit.com".into(),
            ws_public: "wss://stream-testnet.bybit.com/v5/public/linear".into(),
            ws_private: "wss://stream-testnet.bybit.com/v5/private".into(),
        }
    }

    /// Bybit mainnet. Takes [`MainnetOptIn`] so it can never be reached by a default.
    #[must_use]
    pub fn mainnet(_opt_in: MainnetOptIn) -> Target {
        Target {
            network: Network::Mainnet,
            rest: "https://api.bybit.com".into(),
            ws_public: "wss://stream.bybit.com/v5/public/linear".into(),
            ws_private: "wss://stream.bybit.com/v5/private".into(),
        }
    }

    /// The local venue described by its ready file.
    #[must_use]
    pub fn local(ready: &VenueReady) -> Target {
        Target {
            network: Network::Local,
            rest: ready.rest.trim_end_matches('/').to_owned(),
            ws_public: ready.ws_public.clone(),
            ws_private: ready.ws_private.clone(),
        }
    }
}

/// One account of the venue's ready file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueAccount {
    pub name: String,
    pub api_key: String,
    pub api_secret: String,
}

impl VenueAccount {
    #[must_use]
    pub fn credentials(&self) -> Credentials {
        Credentials::new(&self.api_key, &self.api_secret)
    }
}

impl std::fmt::Debug for VenueAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VenueAccount").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The venue's ready file: `{"rest","ws_public","ws_private","accounts":[{"name","api_key","api_secret"}]}`.
/// `ws_public` is the full URL of the public linear stream, `ws_private` of the private one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueReady {
    pub rest: String,
    pub ws_public: String,
    pub ws_private: String,
    #[serde(default)]
    pub accounts: Vec<VenueAccount>,
}

impl VenueReady {
    /// # Errors
    /// `Config` naming the file when it cannot be read or is not a ready file; URLs must be loopback
    /// (`127.0.0.1`, `[::1]` or `localhost`), since the venue never serves anything else.
    pub fn read(path: &Path) -> Result<VenueReady, ClientError> {
        let bad = |detail: String| ClientError::Config { detail: format!("{}: {detail}", path.display()) };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let ready: VenueReady = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        for (field, url) in [("rest", &ready.rest), ("ws_public", &ready.ws_public), ("ws_private", &ready.ws_private)]
        {
            if !is_loopback_url(url) {
                return Err(bad(format!("{field} '{url}' is not a loopback URL")));
            }
        }
        Ok(ready)
    }

    /// The account named `name`.
    #[must_use]
    pub fn account(&self, name: &str) -> Option<&VenueAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

fn is_loopback_url(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let host_port = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost") || host.starts_with("127.")
}

/// Environment variable holding the API key.
pub const ENV_API_KEY: &str = "BYBIT_API_KEY";
/// Environment variable holding the API secret.
pub const ENV_API_SECRET: &str = "BYBIT_API_SECRET";

/// Credentials from `BYBIT_API_KEY` and `BYBIT_API_SECRET`; `None` when neither is set.
///
/// # Errors
/// `Config` when only one of the two is set or one is empty (the message names the variable, never its value).
pub fn credentials_from_env() -> Result<Option<Credentials>, ClientError> {
    credentials_from_vars(std::env::var(ENV_API_KEY).ok(), std::env::var(ENV_API_SECRET).ok())
}

fn credentials_from_vars(key: Option<String>, secret: Option<String>) -> Result<Option<Credentials>, ClientError> {
    match (key, secret) {
        (None, None) => Ok(None),
        (Some(key), Some(secret)) if !key.is_empty() && !secret.is_empty() => Ok(Some(Credentials::new(key, secret))),
        (key, _) => {
            let missing = if key.is_none_or(|k| k.is_empty()) { ENV_API_KEY } else { ENV_API_SECRET };
            Err(ClientError::Config { detail: format!("{missing} is not set (or empty) while its pair is") })
        }
    }
}

/// Credentials from a JSON file `{"api_key": …, "api_secret": …}` that only its owner can read (mode 0600 or
/// stricter), like ssh's private keys.
///
/// # Errors
/// `Config` naming the file when it is readable by group or others, unreadable, or malformed.
pub fn credentials_from_file(path: &Path) -> Result<Credentials, ClientError> {
    let bad = |detail: String| ClientError::Config { detail: format!("{}: {detail}", path.display()) };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(bad(format!("mode {:o} lets others read the key; chmod 600 it", mode & 0o777)));
        }
    }
    #[derive(Deserialize)]
    struct KeyFile {
        api_key: String,
        api_secret: String,
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    // serde_json's message could quote the secret's bytes; name only the position.
    let file: KeyFile = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a key file (line {}, column {})", e.line(), e.column())))?;
    Ok(Credentials::new(file.api_key, file.api_secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_only() {
        for ok in ["http://127.0.0.1:8080", "ws://127.0.0.1:1/v5/public/linear", "ws://[::1]:9/x", "http://localhost:5"]
        {
            assert!(is_loopback_url(ok), "{ok}");
        }
        for bad in ["http://0.0.0.0:80", "https://api.bybit.com", "ws://10.0.0.1:5/x", "127.0.0.1:80", "ws://[::]:1"] {
            assert!(!is_loopback_url(bad), "{bad}");
        }
    }

    #[test]
    fn env_pairs() {
        assert!(credentials_from_vars(None, None).unwrap().is_none());
        let c = credentials_from_vars(Some("k".into()), Some("s".into())).unwrap().unwrap();
        assert_eq!(c.api_key(), "k");
        let err = credentials_from_vars(Some("k".into()), None).unwrap_err().to_string();
        assert!(err.contains(ENV_API_SECRET), "{err}");
        let err = credentials_from_vars(Some(String::new()), Some("secret-value".into())).unwrap_err().to_string();
        assert!(err.contains(ENV_API_KEY) && !err.contains("secret-value"), "{err}");
    }

    #[test]
    fn key_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("apex-bybit-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.json");
        std::fs::write(&path, r#"{"api_key":"k1","api_secret":"hush"}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = credentials_from_file(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600") && !err.contains("hush"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(credentials_from_file(&path).unwrap().api_key(), "k1");
        std::fs::write(&path, r#"{"api_key":"k1","api_secret":"hush"#).unwrap();
        let err = credentials_from_file(&path).unwrap_err().to_string();
        assert!(err.contains("not a key file") && !err.contains("hush"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ready_file() {
        let dir = std::env::temp_dir().join(format!("apex-bybit-ready-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ready.json");
        std::fs::write(
            &path,
            r#"{"rest":"http://127.0.0.1:4000/","ws_public":"ws://127.0.0.1:4000/v5/public/linear",
               "ws_private":"ws://127.0.0.1:4000/v5/private","accounts":[{"name":"a","api_key":"k","api_secret":"s"}]}"#,
        )
        .unwrap();
        let ready = VenueReady::read(&path).unwrap();
        let target = Target::local(&ready);
        assert_eq!((target.network, target.rest.as_str()), (Network::Local, "http://127.0.0.1:4000"));
        assert_eq!(ready.account("a").unwrap().credentials().api_key(), "k");
        assert!(!format!("{:?}", ready).contains("\"s\""));
        std::fs::write(
            &path,
            r#"{"rest":"http://1.2.3.4:1","ws_public":"ws://127.0.0.1:1","ws_private":"ws://127.0.0.1:1"}"#,
        )
        .unwrap();
        assert!(VenueReady::read(&path).unwrap_err().to_string().contains("not a loopback URL"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn remote_targets() {
        assert_eq!(Target::testnet().network, Network::Testnet);
        let main = Target::mainnet(MainnetOptIn::REAL_MONEY);
        assert_eq!((main.network, main.rest.as_str()), (Network::Mainnet, "https://api.bybit.com"));
    }
}
