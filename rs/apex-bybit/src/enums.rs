//! The string enums of the V5 wire format (categories, order types and states, trigger sources, ...).
//!
//! Each keeps unknown values in `Other`, so a value Bybit adds later parses and round-trips; `""` is a variant
//! (`None`/`Unset`) where Bybit sends an empty string for "not set". Order and trade sides use `apex_core::Side`,
//! whose serde form is Bybit's `"Buy"`/`"Sell"`.

use crate::wire::wire_enum;

wire_enum! {
    /// Product type: `category` in requests and answers.
    pub enum Category {
        Spot = "spot",
        Linear = "linear",
        Inverse = "inverse",
        Option = "option",
    }
}

/// Linear: the category the engine trades (USDT perpetuals), so request types can derive `Default`.
impl Default for Category {
    fn default() -> Category {
        Category::Linear
    }
}

wire_enum! {
    /// `orderType`. `UNKNOWN` appears on executions that are not order fills (funding, delivery).
    pub enum OrderType {
        Market = "Market",
        Limit = "Limit",
        Unknown = "UNKNOWN",
    }
}

wire_enum! {
    /// `timeInForce`. Market orders are always IOC.
    pub enum TimeInForce {
        Gtc = "GTC",
        Ioc = "IOC",
        Fok = "FOK",
        PostOnly = "PostOnly",
        Rpi = "RPI",
    }
}

wire_enum! {
    /// `orderStatus`.
    pub enum OrderStatus {
        Created = "Created",
        New = "New",
        Rejected = "Rejected",
        PartiallyFilled = "PartiallyFilled",
        PartiallyFilledCanceled = "PartiallyFilledCanceled",
        Filled = "Filled",
        Cancelled = "Cancelled",
        Untriggered = "Untriggered",
        Triggered = "Triggered",
        Deactivated = "Deactivated",
        Active = "Active",
    }
}

impl OrderStatus {
    /// True while the order can still trade or trigger (it appears in `/v5/order/realtime`'s open orders).
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            OrderStatus::Created
                | OrderStatus::New
                | OrderStatus::PartiallyFilled
                | OrderStatus::Untriggered
                | OrderStatus::Triggered
                | OrderStatus::Active
        )
    }
}

wire_enum! {
    /// A position's `side`: `""` when flat.
    pub enum PositionSide {
        Buy = "Buy",
        Sell = "Sell",
        None = "",
    }
}

wire_enum! {
    /// `stopOrderType`: what kind of conditional order this is, `""` for a plain order.
    pub enum StopOrderType {
        None = "",
        Unknown = "UNKNOWN",
        TakeProfit = "TakeProfit",
        StopLoss = "StopLoss",
        TrailingStop = "TrailingStop",
        Stop = "Stop",
        PartialTakeProfit = "PartialTakeProfit",
        PartialStopLoss = "PartialStopLoss",
        TpslOrder = "tpslOrder",
        OcoOrder = "OcoOrder",
        MmRateClose = "MmRateClose",
        BidirectionalTpslOrder = "BidirectionalTpslOrder",
    }
}

wire_enum! {
    /// `triggerBy`, `tpTriggerBy`, `slTriggerBy`: the price a trigger watches.
    pub enum TriggerBy {
        None = "",
        LastPrice = "LastPrice",
        IndexPrice = "IndexPrice",
        MarkPrice = "MarkPrice",
    }
}

wire_enum! {
    /// `tpslMode`: whether TP/SL close the whole position or part of it.
    pub enum TpslMode {
        None = "",
        Full = "Full",
        Partial = "Partial",
    }
}

wire_enum! {
    /// `execType`.
    pub enum ExecType {
        Trade = "Trade",
        AdlTrade = "AdlTrade",
        Funding = "Funding",
        BustTrade = "BustTrade",
        Delivery = "Delivery",
        Settle = "Settle",
        BlockTrade = "BlockTrade",
        MovePosition = "MovePosition",
        Unknown = "UNKNOWN",
    }
}

wire_enum! {
    /// `cancelType`: who or what cancelled the order.
    pub enum CancelType {
        None = "",
        Unknown = "UNKNOWN",
        CancelByUser = "CancelByUser",
        CancelByReduceOnly = "CancelByReduceOnly",
        CancelByPrepareLiq = "CancelByPrepareLiq",
        CancelAllBeforeLiq = "CancelAllBeforeLiq",
        CancelByPrepareAdl = "CancelByPrepareAdl",
        CancelAllBeforeAdl = "CancelAllBeforeAdl",
        CancelByAdmin = "CancelByAdmin",
        CancelBySettle = "CancelBySettle",
        CancelByTpSlTsClear = "CancelByTpSlTsClear",
        CancelBySmp = "CancelBySmp",
        CancelByDcp = "CancelByDCP",
    }
}

wire_enum! {
    /// `rejectReason`, Bybit's `EC_*` codes; `""`/`EC_NoError` when not rejected.
    pub enum RejectReason {
        None = "",
        Unknown = "UNKNOWN",
        NoError = "EC_NoError",
        Others = "EC_Others",
        DuplicatedClOrdId = "EC_DuplicatedClOrdID",
        OrigClOrdIdDoesNotExist = "EC_OrigClOrdIDDoesNotExist",
        TooLateToCancel = "EC_TooLateToCancel",
        LimitOrderInvalidPrice = "EC_LimitOrderInvalidPrice",
        NoEnoughQtyToFill = "EC_NoEnoughQtyToFill",
        NoImmediateQtyToFill = "EC_NoImmediateQtyToFill",
        PerCancelRequest = "EC_PerCancelRequest",
        MarketOrderCannotBePostOnly = "EC_MarketOrderCannotBePostOnly",
        PostOnlyWillTakeLiquidity = "EC_PostOnlyWillTakeLiquidity",
        CancelForNoFullFill = "EC_CancelForNoFullFill",
        BySelfMatch = "EC_BySelfMatch",
        QtyCannotBeZero = "EC_QtyCannotBeZero",
        InvalidPriceScale = "EC_InvalidPriceScale",
        ReachRiskPriceLimit = "EC_ReachRiskPriceLimit",
        OrderNotExist = "EC_OrderNotExist",
        InsufficientMargin = "INSUFFICIENT_MARGIN",
    }
}

wire_enum! {
    /// `createType`: how the order came to exist.
    pub enum CreateType {
        None = "",
        CreateByUser = "CreateByUser",
        CreateByClosing = "CreateByClosing",
        CreateByAdminClosing = "CreateByAdminClosing",
        CreateByStopOrder = "CreateByStopOrder",
        CreateByTakeProfit = "CreateByTakeProfit",
        CreateByPartialTakeProfit = "CreateByPartialTakeProfit",
        CreateByStopLoss = "CreateByStopLoss",
        CreateByPartialStopLoss = "CreateByPartialStopLoss",
        CreateByTrailingStop = "CreateByTrailingStop",
        CreateByLiq = "CreateByLiq",
        CreateByAdlPassThrough = "CreateByAdl_PassThrough",
        CreateByTakeOverPassThrough = "CreateByTakeOver_PassThrough",
        CreateBySettle = "CreateBySettle",
    }
}

wire_enum! {
    /// `smpType`: self-match prevention.
    pub enum SmpType {
        None = "None",
        CancelMaker = "CancelMaker",
        CancelTaker = "CancelTaker",
        CancelBoth = "CancelBoth",
    }
}

wire_enum! {
    /// `positionStatus`.
    pub enum PositionStatus {
        Normal = "Normal",
        Liq = "Liq",
        Adl = "Adl",
    }
}

wire_enum! {
    /// An instrument's `status`.
    pub enum InstrumentStatus {
        PreLaunch = "PreLaunch",
        Trading = "Trading",
        Delivering = "Delivering",
        Closed = "Closed",
    }
}

wire_enum! {
    /// `contractType` of a derivative instrument.
    pub enum ContractType {
        LinearPerpetual = "LinearPerpetual",
        LinearFutures = "LinearFutures",
        InversePerpetual = "InversePerpetual",
        InverseFutures = "InverseFutures",
    }
}

wire_enum! {
    /// `accountType` of a wallet.
    pub enum AccountType {
        Unified = "UNIFIED",
        Contract = "CONTRACT",
        Spot = "SPOT",
    }
}

wire_enum! {
    /// `tickDirection` of a ticker or trade.
    pub enum TickDirection {
        PlusTick = "PlusTick",
        ZeroPlusTick = "ZeroPlusTick",
        MinusTick = "MinusTick",
        ZeroMinusTick = "ZeroMinusTick",
    }
}
