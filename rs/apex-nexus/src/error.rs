//! The engine's error type, and the process exit code each kind of failure maps to (documented for cron).

use std::path::PathBuf;

use thiserror::Error;

/// Exit code: the run ended as asked (duration reached, or SIGINT/SIGTERM) and the ledger is flushed.
pub const EXIT_OK: u8 = 0;
/// Exit code: the engine failed while running (venue unreachable past the retry budget, ledger write failure...).
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: bad input (config, bundle, keys, arguments); nothing was connected or sent.
pub const EXIT_INPUT: u8 = 2;
/// Exit code: another engine holds the run folder (its `nexus.pid` names a live process).
pub const EXIT_LOCKED: u8 = 3;

/// Why the engine could not start or stopped. Messages are one line and never contain an API key or secret.
#[derive(Debug, Error)]
pub enum NexusError {
    /// The config file or a command-line option is unusable; `path` names the file.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// A slot's bundle is missing, tampered with, or needs features the engine does not compute.
    #[error("slot {slot}: bundle {path}: {message}")]
    Bundle { slot: String, path: PathBuf, message: String },
    /// API credentials are missing or unreadable.
    #[error("{0}")]
    Keys(String),
    /// The run folder is held by a running engine.
    #[error("{path}: another engine (pid {pid}) is running in this folder")]
    Locked { path: PathBuf, pid: u32 },
    /// The ledger could not be opened, read or written.
    #[error("ledger {path}: {message}")]
    Ledger { path: PathBuf, message: String },
    /// The exchange or the network failed beyond what the engine retries.
    #[error("{0}")]
    Venue(String),
    /// Anything else that stops the engine (an I/O error on the run folder...).
    #[error("{0}")]
    Runtime(String),
}

impl NexusError {
    /// The process exit code of this failure (see the `EXIT_*` constants).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            NexusError::Config { .. } | NexusError::Bundle { .. } | NexusError::Keys(_) => EXIT_INPUT,
            NexusError::Locked { .. } => EXIT_LOCKED,
            NexusError::Ledger { .. } | NexusError::Venue(_) | NexusError::Runtime(_) => EXIT_RUNTIME,
        }
    }
}
