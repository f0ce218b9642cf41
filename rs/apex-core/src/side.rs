//! Order and trade sides with the sign convention of the `trades` table (+1 buy, -1 sell).

use serde::{Deserialize, Serialize};

/// The side of an order, a book level or a taker trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// +1 for buy, -1 for sell: the `side` column of the `trades` and `book` tables.
    #[must_use]
    pub fn sign(self) -> i8 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    /// Side from the table sign convention; `None` for anything other than +1/-1.
    #[must_use]
    pub fn from_sign(sign: i8) -> Option<Side> {
        match sign {
            1 => Some(Side::Buy),
            -1 => Some(Side::Sell),
            _ => None,
        }
    }

    #[must_use]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}
