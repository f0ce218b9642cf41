//! The private WebSocket (`/v5/private`): its topics and the message envelope around orders, executions,
//! positions and wallets. Authentication is an `OpRequest::auth` signed by `sign::ws_auth_signature`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::enums::Category;
use crate::messages::TopicError;
use crate::records::{Execution, FastExecution, Order, Position, Wallet};

/// What a private topic streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrivateStream {
    Order,
    Execution,
    ExecutionFast,
    Position,
    Wallet,
}

/// A private topic: all-in-one (`order`) or per category (`order.linear`). Bybit refuses a subscribe that mixes the
/// two forms of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrivateTopic {
    pub stream: PrivateStream,
    pub category: Option<Category>,
}

impl PrivateTopic {
    #[must_use]
    pub fn all(stream: PrivateStream) -> PrivateTopic {
        PrivateTopic { stream, category: None }
    }

    /// # Errors
    /// `TopicError` for an unknown stream or a category the stream does not have (`wallet` has none; `position`
    /// has no spot).
    pub fn parse(topic: &str) -> Result<PrivateTopic, TopicError> {
        let bad = || TopicError { topic: topic.to_owned() };
        // `execution.fast` before `execution`, which is its prefix.
        const STREAMS: [(&str, PrivateStream); 5] = [
            ("execution.fast", PrivateStream::ExecutionFast),
            ("execution", PrivateStream::Execution),
            ("order", PrivateStream::Order),
            ("position", PrivateStream::Position),
            ("wallet", PrivateStream::Wallet),
        ];
        let (stream, rest) = STREAMS
            .iter()
            .find_map(|(name, stream)| topic.strip_prefix(name).map(|rest| (*stream, rest)))
            .ok_or_else(bad)?;
        let category = match rest {
            "" => None,
            _ => {
                let category = Category::from(rest.strip_prefix('.').ok_or_else(bad)?);
                let allowed = match stream {
                    PrivateStream::Wallet => false,
                    PrivateStream::Position => {
                        matches!(category, Category::Linear | Category::Inverse | Category::Option)
                    }
                    _ => matches!(category, Category::Spot | Category::Linear | Category::Inverse | Category::Option),
                };
                if !allowed {
                    return Err(bad());
                }
                Some(category)
            }
        };
        Ok(PrivateTopic { stream, category })
    }
}

impl fmt::Display for PrivateTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stream = match self.stream {
            PrivateStream::Order => "order",
            PrivateStream::Execution => "execution",
            PrivateStream::ExecutionFast => "execution.fast",
            PrivateStream::Position => "position",
            PrivateStream::Wallet => "wallet",
        };
        match &self.category {
            None => f.write_str(stream),
            Some(category) => write!(f, "{stream}.{category}"),
        }
    }
}

/// A private topic's message: `{"id","topic","creationTime","data":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateMessage<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub topic: String,
    /// Ms when the message was created.
    pub creation_time: i64,
    pub data: Vec<T>,
}

pub type OrderMessage = PrivateMessage<Order>;
pub type ExecutionMessage = PrivateMessage<Execution>;
pub type FastExecutionMessage = PrivateMessage<FastExecution>;
pub type PositionMessage = PrivateMessage<Position>;
pub type WalletMessage = PrivateMessage<Wallet>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_print() {
        for name in ["order", "order.linear", "execution", "execution.spot", "execution.fast", "execution.fast.linear"]
        {
            assert_eq!(PrivateTopic::parse(name).unwrap().to_string(), name);
        }
        for name in ["position", "position.linear", "wallet"] {
            assert_eq!(PrivateTopic::parse(name).unwrap().to_string(), name);
        }
        for bad in ["wallet.linear", "position.spot", "order.perp", "orders", "order.", "greeks", ""] {
            assert!(PrivateTopic::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PrivateTopic::parse("order.linear").unwrap(),
            PrivateTopic { stream: PrivateStream::Order, category: Some(Category::Linear) }
        );
    }
}
