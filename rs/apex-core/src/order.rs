//! Orders and what a matching engine answers with: the order and fill types the simulator, the venue and the live
//! engine share (so the live side never links the simulator).

use crate::Side;

/// Order ids are assigned by the engine, increasing from 1, one per submission (rejected ones included).
pub type OrderId = u64;
/// Accounts are named by the caller (an agent index, a strategy slot).
pub type AccountId = u32;
/// Trade ids are assigned by the engine, increasing from 1, one per maker/taker match.
pub type TradeId = u64;

/// How long a limit order may live and whether it may take liquidity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Good till cancelled: takes what it can, rests the remainder.
    Gtc,
    /// Immediate or cancel: takes what it can, cancels the remainder.
    Ioc,
    /// Fill or kill: fills completely at once or is rejected without touching the book.
    Fok,
    /// Rests only: rejected if any part of it would take liquidity on arrival.
    PostOnly,
}

/// Self-trade prevention: what happens when the incoming order would trade against a resting order of the same
/// account. The incoming (taker) order's mode decides, as on Bybit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StpMode {
    /// The incoming order's remainder is cancelled; the resting order keeps its place. The default, because it never
    /// disturbs liquidity already shown to others (an agent's own quotes stay in the book).
    #[default]
    CancelTaker,
    /// The resting order is cancelled and matching continues with the next one.
    CancelMaker,
    /// Both the resting order and the incoming remainder are cancelled.
    CancelBoth,
}

/// Price instruction of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderKind {
    Limit {
        price: i64,
        tif: TimeInForce,
    },
    /// An IOC limit at the protective band price around the best opposite price (see `InstrumentSpec::market_band`).
    Market,
}

/// A new order as the caller sends it; prices and quantities in the instrument's integer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewOrder {
    pub account: AccountId,
    pub side: Side,
    /// Quantity units, a multiple of the lot and at least the minimum.
    pub qty: i64,
    pub kind: OrderKind,
    /// May only decrease the absolute position of the account: trimmed on entry, and trimmed or cancelled when
    /// matched if the position has shrunk meanwhile.
    pub reduce_only: bool,
    pub stp: StpMode,
}

impl NewOrder {
    /// A limit order with the default self-trade prevention and without reduce-only.
    #[must_use]
    pub fn limit(account: AccountId, side: Side, price: i64, qty: i64, tif: TimeInForce) -> NewOrder {
        NewOrder {
            account,
            side,
            qty,
            kind: OrderKind::Limit { price, tif },
            reduce_only: false,
            stp: StpMode::default(),
        }
    }

    /// A market order with the default self-trade prevention and without reduce-only.
    #[must_use]
    pub fn market(account: AccountId, side: Side, qty: i64) -> NewOrder {
        NewOrder { account, side, qty, kind: OrderKind::Market, reduce_only: false, stp: StpMode::default() }
    }

    /// The same order, reduce-only.
    #[must_use]
    pub fn reduce_only(self) -> NewOrder {
        NewOrder { reduce_only: true, ..self }
    }

    /// The same order with another self-trade prevention mode.
    #[must_use]
    pub fn with_stp(self, stp: StpMode) -> NewOrder {
        NewOrder { stp, ..self }
    }
}

/// Why a request was refused. A rejected request leaves the book and the accounts untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Quantity not positive, not a multiple of the lot, under the minimum or over the maximum.
    InvalidQty,
    /// Price not positive, over `MAX_PRICE_UNITS`, or not a multiple of the tick.
    InvalidPrice,
    /// A market order while the opposite side of the book is empty.
    NoLiquidity,
    /// A PostOnly order (new or amended) whose price crosses the best opposite price.
    PostOnlyWouldTake,
    /// A FOK order that cannot be filled completely right now.
    FokUnfillable,
    /// A reduce-only order while the position is flat or on the order's side.
    ReduceOnlyWouldIncrease,
    /// Cancel or amend of an order that is not resting, or belongs to another account.
    UnknownOrder,
    /// An amend that changes nothing.
    NothingToAmend,
    /// An amend whose new total quantity is not above the quantity already filled.
    AmendBelowFilled,
    /// Take-profit/stop-loss for a position that is flat.
    NoPosition,
}

/// Why a resting order or the remainder of an incoming one was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The owner asked.
    User,
    /// The unfilled remainder of an IOC, FOK or market order (nothing more to take within its price).
    Unfilled,
    /// Self-trade prevention.
    SelfTrade,
    /// A reduce-only order with no position left to reduce.
    ReduceOnly,
}

/// Which side of a trade a fill was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liquidity {
    /// The resting side: pays the maker fee.
    Maker,
    /// The incoming side: pays the taker fee.
    Taker,
}

/// Everything the engine reports, in the order it happened. Quantities are the instrument's units; fees are cash
/// units (10^-(price decimals + qty decimals + 8) quote, see `apex_sim::Account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The order passed every check; fills, a resting level or a cancellation of the remainder follow. `price` is
    /// the effective limit (the band price for a market order), `qty` the quantity after reduce-only trimming.
    Accepted { order_id: OrderId, account: AccountId, side: Side, price: i64, qty: i64 },
    /// The request was refused; nothing changed.
    Rejected { order_id: OrderId, account: AccountId, reason: RejectReason },
    /// A public trade: one match of a taker against one maker, at the maker's price.
    Trade {
        trade_id: TradeId,
        ts_us: i64,
        taker_side: Side,
        price: i64,
        qty: i64,
        maker_order: OrderId,
        taker_order: OrderId,
    },
    /// One side of a trade as its account sees it.
    Fill {
        trade_id: TradeId,
        ts_us: i64,
        order_id: OrderId,
        account: AccountId,
        side: Side,
        price: i64,
        qty: i64,
        fee: i128,
        liquidity: Liquidity,
        /// Quantity of the order still open after this fill.
        leaves_qty: i64,
    },
    /// `leaves_qty` is the quantity that was open when the order was cancelled.
    Cancelled { order_id: OrderId, account: AccountId, leaves_qty: i64, reason: CancelReason },
    /// An amend took effect; `kept_priority` is false when the order moved to the back of its (new) level.
    Amended { order_id: OrderId, account: AccountId, price: i64, leaves_qty: i64, kept_priority: bool },
    /// The total resting quantity at one price changed; 0 means the level is gone.
    BookLevel { side: Side, price: i64, qty: i64 },
}

/// Where an order stands, in Bybit's terms (`orderStatus`): the state the live engine tracks and the venue reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Resting, nothing filled yet.
    New,
    /// Resting, partly filled.
    PartiallyFilled,
    Filled,
    Cancelled,
    /// An IOC/market remainder cancelled after a partial fill.
    PartiallyFilledCanceled,
    /// Refused on arrival; nothing happened.
    Rejected,
    /// A conditional order (take-profit, stop-loss) waiting for its trigger.
    Untriggered,
    /// A conditional order whose trigger fired; its market order is on its way.
    Triggered,
    /// A conditional order removed without firing.
    Deactivated,
}

impl OrderStatus {
    /// True while the order can still trade or trigger.
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::Untriggered | OrderStatus::Triggered
        )
    }
}
