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

/// An empty folder of one test under the system's temp folder, removed with its contents when dropped (runs of the
/// suite used to leave one folder per test behind).
#[cfg(test)]
pub(crate) struct Scratch(tempfile::TempDir);

#[cfg(test)]
impl std::ops::Deref for Scratch {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        self.0.path()
    }
}

#[cfg(test)]
impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        self.0.path()
    }
}

/// A new [`Scratch`] folder whose name starts with `tag` (for whoever looks while a test runs).
#[cfg(test)]
pub(crate) fn scratch(tag: &str) -> Scratch {
    Scratch(tempfile::Builder::new().prefix(&format!("apex-nexus-{tag}-")).tempdir().expect("a temp folder"))
}
