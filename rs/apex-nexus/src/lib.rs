//! apex-nexus: the live engine. It trades the bundles `apexctl export` writes, one slot per bundle, on the local
//! venue, Bybit's testnet or (with an explicit opt-in) mainnet, and books everything in a crash-safe SQLite ledger.

pub mod config;
pub mod cwo;
pub mod durable;
pub mod engine;
mod error;
pub mod kept;
pub mod ledger;
pub mod metrics;
pub mod models;
pub mod pitcrew;
pub mod protection;
pub mod slot;
pub mod status;
pub mod watch;
pub mod watchtower;

pub use error::{EXIT_INPUT, EXIT_LOCKED, EXIT_OK, EXIT_RUNTIME, NexusError};

/// An empty folder for one test under the system's temp folder (tests run concurrently: each passes its own tag).
#[cfg(test)]
pub(crate) fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("apex-nexus-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
