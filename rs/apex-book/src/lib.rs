//! L2 order book: integer price/qty units, O(log n) level updates, O(1) best bid/ask, Bybit V5 sequencing.

mod book;
pub mod columns;
pub mod naive;
mod occupancy;
pub mod synthetic;

pub use book::{Applied, BookError, BookStats, L2Book, Level, SyncState, UpdateKind};
pub use columns::{BookColumns, ColumnError, MessageHeader, Replay, replay};
