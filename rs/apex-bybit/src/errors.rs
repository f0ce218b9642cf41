//! V5 `retCode`s the engine and the venue act on, with Bybit's messages (docs/v5/error.mdx, reference §4.8).

macro_rules! ret_codes {
    ($( $(#[$meta:meta])* $name:ident = $code:literal, $message:literal; )+) => {
        /// A `retCode` with a meaning of its own. Codes outside this list still travel as plain `i64`s.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RetCode {
            $( $(#[$meta])* $name, )+
        }

        impl RetCode {
            /// Every code of the list, in order.
            pub const ALL: &'static [RetCode] = &[$( RetCode::$name, )+];

            /// The numeric code.
            #[must_use]
            pub const fn code(self) -> i64 {
                match self { $( RetCode::$name => $code, )+ }
            }

            /// Bybit's message for the code (the generic wording; some answers add details, see the helpers).
            #[must_use]
            pub const fn message(self) -> &'static str {
                match self { $( RetCode::$name => $message, )+ }
            }

            /// The code's meaning, if it has one here.
            #[must_use]
            pub const fn from_code(code: i64) -> Option<RetCode> {
                match code { $( $code => Some(RetCode::$name), )+ _ => None }
            }
        }
    };
}

ret_codes! {
    Ok = 0, "OK";
    /// Missing or malformed request parameter.
    ParamError = 10001, "Request parameter error.";
    /// `X-BAPI-TIMESTAMP` outside `[server - recv_window, server + 1000)`; see [`recv_window_message`].
    RecvWindow = 10002, "The request time exceeds the time window range.";
    /// Unknown key, or a key of another environment (mainnet, testnet and demo keys are separate).
    InvalidApiKey = 10003, "API key is invalid.";
    /// The signature does not match; see [`sign_error_message`].
    SignError = 10004, "Error sign, please check your signature generation algorithm.";
    PermissionDenied = 10005, "Permission denied, please check your API key permissions.";
    /// Per-UID endpoint limit hit; wait until `X-Bapi-Limit-Reset-Timestamp`.
    TooManyVisits = 10006, "Too many visits!";
    UnmatchedIp = 10010, "Unmatched IP, please check your API key's bound IP addresses.";
    DuplicateRequest = 10014, "Invalid duplicate request.";
    ServerError = 10016, "Server error.";
    RouteNotFound = 10017, "Route not found.";
    TransactionsBanned = 10027, "Transactions are banned.";
    /// WS order entry: repeated auth.
    RepeatAuth = 20001, "Repeat auth.";
    OrderNotExists = 110001, "Order does not exist.";
    PriceOutOfRange = 110003, "Order price exceeds the allowable range.";
    WalletInsufficient = 110004, "Wallet balance is insufficient.";
    MarginNotCovered = 110006, "The assets are estimated to be unable to cover the position margin.";
    AvailableInsufficient = 110007, "Available balance is insufficient.";
    OrderFinished = 110008, "The order has been finished or cancelled.";
    OrderCancelled = 110010, "The order has been cancelled.";
    InsufficientAvailable = 110012, "Insufficient available balance.";
    QtyTruncatedToZero = 110017, "orderQty will be truncated to zero.";
    TooManyActiveOrders = 110020, "Not allowed to have more than 500 active orders.";
    OpenInterestLimit = 110021, "Not allowed to exceeded position limits due to Open Interest.";
    LeverageNotModified = 110043, "Set leverage has not been modified.";
    MarginInsufficient = 110044, "Available margin is insufficient.";
    WalletBalanceInsufficient = 110045, "Wallet balance is insufficient.";
    /// `orderLinkId` already used by an order of this account: a retried create that already went through.
    DuplicateOrderLinkId = 110072, "OrderLinkedID is duplicate.";
    OrderProcessing = 110079, "The order is processing and can not be operated, please try again later.";
    NotionalTooLow = 110094, "Order does not meet minimum order value.";
}

/// The 10002 message Bybit sends, with the three numbers it compared.
#[must_use]
pub fn recv_window_message(req_timestamp: i64, server_timestamp: i64, recv_window: i64) -> String {
    format!(
        "invalid request, please check your server timestamp or recv_window param. \
         req_timestamp[{req_timestamp}],server_timestamp[{server_timestamp}],recv_window[{recv_window}]"
    )
}

/// The 10004 message Bybit sends, echoing the string it signed with the secret masked, which is how a client finds
/// which bytes differ.
#[must_use]
pub fn sign_error_message(origin_string: &str) -> String {
    format!("Error sign, please check your signature generation algorithm: origin_string[{origin_string}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_both_ways_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for &code in RetCode::ALL {
            assert!(seen.insert(code.code()), "{code:?} twice");
            assert_eq!(RetCode::from_code(code.code()), Some(code));
            assert!(!code.message().is_empty());
        }
        assert_eq!(RetCode::from_code(10006), Some(RetCode::TooManyVisits));
        assert_eq!(RetCode::TooManyVisits.message(), "Too many visits!");
        assert_eq!(RetCode::from_code(12345), None);
        assert!(recv_window_message(2, 1, 5000).ends_with("req_timestamp[2],server_timestamp[1],recv_window[5000]"));
    }
}
