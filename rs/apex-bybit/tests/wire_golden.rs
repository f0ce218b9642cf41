//! Golden tests of the wire types: every relevant real or fixture V5 message in tests/data/bybit parses into its
//! type, serializes back to the same values (no field altered, none invented), and parses again to an equal value.

use std::collections::BTreeSet;
use std::path::PathBuf;

use apex_bybit::rest::Response;
use apex_bybit::rest::account::{ExecutionListResult, PositionListResult, WalletBalanceResult};
use apex_bybit::rest::market::{InstrumentsInfoResult, KlineResult, OrderbookResult, RecentTradeResult, ServerTime};
use apex_bybit::rest::order::{OrderIdResult, OrderListResult};
use apex_bybit::{
    ExecutionMessage, FastExecutionMessage, KlineMessage, OpResponse, OrderMessage, OrderbookMessage, Position,
    PositionMessage, PublicTradeMessage, TickerMessage, WalletMessage,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../tests/data/bybit")
}

/// Keys written under another spelling than some captures use: (ours, theirs).
const ALIASES: [(&str, &str); 1] = [("totalPerpUPL", "totalPerpUpl")];

/// Every key we write exists in `original` with an equal value (`null` and `""` count as equal: both are "unset");
/// the only key we may add is an empty `retExtInfo`, which Bybit always sends. Returns the original keys we drop.
fn check_faithful(original: &Value, ours: &Value, path: &str, dropped: &mut BTreeSet<String>) {
    match (original, ours) {
        (Value::Object(orig), Value::Object(mine)) => {
            for (key, value) in mine {
                let theirs =
                    orig.get(key).or_else(|| ALIASES.iter().find(|(o, _)| o == key).and_then(|(_, t)| orig.get(*t)));
                match theirs {
                    Some(theirs) => check_faithful(theirs, value, &format!("{path}.{key}"), dropped),
                    None if key == "retExtInfo" && value == &Value::Object(Default::default()) => {}
                    None => panic!("{path}: we wrote {key} = {value}, which the original does not have"),
                }
            }
            for key in orig.keys() {
                let aliased = ALIASES.iter().any(|(o, t)| t == key && mine.contains_key(*o));
                // A dropped null is an unset value we leave out, not a lost field.
                if !mine.contains_key(key) && !aliased && !orig[key].is_null() {
                    dropped.insert(format!("{path}.{key}"));
                }
            }
        }
        (Value::Array(orig), Value::Array(mine)) => {
            assert_eq!(orig.len(), mine.len(), "{path}: array length");
            for (i, (o, m)) in orig.iter().zip(mine).enumerate() {
                check_faithful(o, m, &format!("{path}[{i}]"), dropped);
            }
        }
        (Value::Null, Value::String(s)) if s.is_empty() => {}
        _ => assert_eq!(original, ours, "{path}"),
    }
}

/// Parse → serialize → parse, checking the serialized form against the original; returns the dropped keys.
/// Parsing goes through text, as on the socket, so the borrowing types (order book, trades) are covered too.
macro_rules! roundtrip_text {
    ($t:ty, $name:expr, $original:expr) => {{
        let name: &str = $name;
        let original: &Value = $original;
        let text = original.to_string();
        let parsed: $t = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let written_text = serde_json::to_string(&parsed).unwrap();
        let written: Value = serde_json::from_str(&written_text).unwrap();
        let mut dropped = BTreeSet::new();
        check_faithful(original, &written, name, &mut dropped);
        let again: $t = serde_json::from_str(&written_text).unwrap_or_else(|e| panic!("{name} (re-read): {e}"));
        assert_eq!(parsed, again, "{name}: round trip");
        dropped
    }};
}

fn roundtrip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    name: &str,
    original: &Value,
) -> BTreeSet<String> {
    roundtrip_text!(T, name, original)
}

fn roundtrip_book(name: &str, original: &Value) -> BTreeSet<String> {
    roundtrip_text!(OrderbookMessage<'_>, name, original)
}

fn roundtrip_trades(name: &str, original: &Value) -> BTreeSet<String> {
    roundtrip_text!(PublicTradeMessage<'_>, name, original)
}

/// Which type each nautilus fixture is; `None` for endpoints apexctl does not use.
fn nautilus_kind(file: &str) -> Option<fn(&str, &Value) -> BTreeSet<String>> {
    let kind: fn(&str, &Value) -> BTreeSet<String> = match file {
        "http_get_executions.json" => roundtrip::<Response<ExecutionListResult>>,
        f if f.starts_with("http_get_instruments_") => roundtrip::<Response<InstrumentsInfoResult>>,
        "http_get_klines_linear.json" => roundtrip::<Response<KlineResult>>,
        f if f.starts_with("http_get_order_") || f.starts_with("http_get_orders_") => {
            roundtrip::<Response<OrderListResult>>
        }
        "http_get_orderbook.json" => roundtrip::<Response<OrderbookResult>>,
        f if f.starts_with("http_get_positions") => roundtrip::<Response<PositionListResult>>,
        "http_get_trades_recent.json" => roundtrip::<Response<RecentTradeResult>>,
        f if f.starts_with("http_get_wallet_balance") => roundtrip::<Response<WalletBalanceResult>>,
        f if f.starts_with("ws_account_execution_fast") => roundtrip::<FastExecutionMessage>,
        f if f.starts_with("ws_account_execution") => roundtrip::<ExecutionMessage>,
        f if f.starts_with("ws_account_order") => roundtrip::<OrderMessage>,
        "ws_account_position_with_open_time.json" => roundtrip::<Position>,
        f if f.starts_with("ws_account_position") => roundtrip::<PositionMessage>,
        f if f.starts_with("ws_account_wallet") => roundtrip::<WalletMessage>,
        "ws_auth_failure.json" | "ws_auth_success.json" | "ws_order_response.json" => roundtrip::<OpResponse>,
        "ws_subscription_ack.json" | "ws_subscription_failure.json" => roundtrip::<OpResponse>,
        "ws_kline.json" => roundtrip::<KlineMessage>,
        "ws_orderbook_delta.json" | "ws_orderbook_snapshot.json" => roundtrip_book,
        "ws_public_trade.json" => roundtrip_trades,
        f if f.starts_with("ws_ticker_") => roundtrip::<TickerMessage>,
        // Account info, fee rate, funding history, sub-accounts and API-key management: not endpoints we use.
        "http_get_account_info.json" | "http_get_fee_rate.json" | "http_get_funding_history.json" => return None,
        f if f.starts_with("http_get_user_") || f.starts_with("http_post_user_") => return None,
        other => panic!("fixture {other} is not classified: say which type it is, or why it is not used"),
    };
    Some(kind)
}

#[test]
fn nautilus_fixtures_parse_and_roundtrip() {
    let dir = data_dir().join("nautilus_fixtures");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files.len(), 64);
    let mut checked = 0;
    let mut dropped = BTreeSet::new();
    for file in &files {
        let Some(kind) = nautilus_kind(file) else { continue };
        let original: Value = serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        dropped.extend(kind(file, &original));
        checked += 1;
    }
    assert_eq!(checked, 54);
    // The only fields not modelled: option tickers' greeks and quotes (the engine trades linear perpetuals).
    let unexpected: Vec<&String> = dropped.iter().filter(|p| !p.starts_with("ws_ticker_option.json.data.")).collect();
    assert!(unexpected.is_empty(), "fields dropped: {unexpected:#?}");
}

#[test]
fn tardis_messages_parse_and_roundtrip() {
    let mut counts = [0usize; 3];
    for file in ["tardis/bybit_v5_derivatives_messages.json", "tardis/bybit_v5_spot_messages.json"] {
        let messages: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(data_dir().join(file)).unwrap()).unwrap();
        for (i, message) in messages.iter().enumerate() {
            let topic = message["topic"].as_str().unwrap();
            let name = format!("{file}[{i}] {topic}");
            let dropped = if topic.starts_with("orderbook.") {
                counts[0] += 1;
                roundtrip_book(&name, message)
            } else if topic.starts_with("publicTrade.") {
                counts[1] += 1;
                roundtrip_trades(&name, message)
            } else if topic.starts_with("tickers.") {
                counts[2] += 1;
                roundtrip::<TickerMessage>(&name, message)
            } else {
                // Liquidation streams: not a topic apexctl subscribes to.
                assert!(topic.contains("iquidation"), "{name}");
                continue;
            };
            assert!(dropped.is_empty(), "{name}: dropped {dropped:?}");
        }
    }
    assert_eq!(counts, [9, 4, 5]);
}

/// Verbatim examples of reference/bybit-v5.md (from Bybit's docs and real captures).
#[test]
fn reference_examples_parse_and_roundtrip() {
    let ops = [
        r#"{"success": true, "ret_msg": "subscribe", "conn_id": "2324d924-aa4d-45b0-a858-7b8be29ab52b", "req_id": "10001", "op": "subscribe"}"#,
        r#"{"success": true, "ret_msg": "", "conn_id": "3cd84cb1-4d06-4a05-930a-2efe5fc70f0f", "req_id": "", "op": "subscribe"}"#,
        r#"{"success": true, "conn_id": "aa01fbfffe80af37-00000001-000b37b9-7147f432704fd28c-00e1c172", "data": {"failTopics": [], "successTopics": ["orderbook.100.BTC-6JAN23-18000-C"]}, "type": "COMMAND_RESP"}"#,
        r#"{"success": true, "ret_msg": "", "op": "subscribe", "conn_id": "cejreassvfrsfvb9v1a0-2m"}"#,
        r#"{"success":false,"ret_msg":"error:handler not found,topic:orderbook.500.BTCUSDT","op":"subscribe"}"#,
        r#"{"success":false,"ret_msg":"error:already subscribed,topic:publicTrade.BTCUSDT","req_id":"2"}"#,
        r#"{"success": true, "ret_msg": "pong", "conn_id": "0970e817-426e-429a-a679-ff7f55e0b16a", "op": "ping"}"#,
        r#"{"success": true, "ret_msg": "pong", "conn_id": "465772b1-7630-4fdc-a492-e003e6f0f260", "req_id": "", "op": "ping"}"#,
        r#"{"args": ["1672916271846"], "op": "pong"}"#,
        r#"{"req_id": "test", "op": "pong", "args": ["1675418560633"], "conn_id": "cfcb4ocsvfriu23r3er0-1b"}"#,
        r#"{"success": true, "ret_msg": "", "op": "auth", "conn_id": "cejreaspqfh3sjdnldmg-p"}"#,
        r#"{"success":false,"ret_msg":"Params Error","op":"auth","conn_id":"x"}"#,
    ];
    let pongs = ops.iter().filter(|text| {
        let v: Value = serde_json::from_str(text).unwrap();
        assert!(roundtrip::<OpResponse>(text, &v).is_empty());
        serde_json::from_value::<OpResponse>(v).unwrap().is_pong()
    });
    assert_eq!(pongs.count(), 4);

    let data = [
        (
            "orderbook",
            r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30245.40","0.224"],["30242.10","1.593"],["30240.30","1.305"],["30240.00","0"]],"a":[["30248.70","0"],["30249.30","0.892"],["30249.50","1.778"],["30249.60","0"],["30251.90","2.947"],["30252.20","0.659"],["30252.50","4.591"]],"u":177400507,"seq":66544703342},"cts":1687940967464}"#,
        ),
        (
            "orderbook",
            r#"{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1758841134603,"data":{"s":"BTCUSDT","b":[["109378.80","1.273"]],"a":[["109378.90","6.278"]],"u":14869255,"seq":457514742271},"cts":1758841134598}"#,
        ),
        (
            "trade",
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1758841135824,"data":[{"T":1758841135823,"s":"BTCUSDT","S":"Buy","v":"0.020","p":"109378.90","L":"ZeroPlusTick","i":"2a74ac78-691c-5b54-9dbe-5aafe8364627","BT":false,"RPI":false,"seq":457514743450}]}"#,
        ),
        (
            "kline",
            r#"{"topic":"kline.5.BTCUSDT","data":[{"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677","high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,"timestamp":1672324988882}],"ts":1672324988882,"type":"snapshot"}"#,
        ),
        (
            "ticker",
            r#"{"topic":"tickers.BTCUSD","type":"delta","data":{"symbol":"BTCUSD","price24hPcnt":"0.023362","openInterest":"449736674","fundingRate":"0.0001","bid1Price":"28560.00","bid1Size":"340549","ask1Price":"28560.50","ask1Size":"70817"},"cs":20856433603,"ts":1680673822776}"#,
        ),
        (
            "time",
            r#"{"retCode":0,"retMsg":"OK","result":{"timeSecond":"1688639403","timeNano":"1688639403423213947"},"retExtInfo":{},"time":1688639403423}"#,
        ),
        (
            "create",
            r#"{"retCode":0,"retMsg":"OK","result":{"orderId":"1321003749386327552","orderLinkId":"spot-test-postonly"},"retExtInfo":{},"time":1672211918471}"#,
        ),
        (
            "rest-orderbook",
            r#"{"retCode":0,"retMsg":"OK","result":{"s":"BTCUSDT","a":[["65557.7","16.606555"]],"b":[["65485.47","47.081829"]],"ts":1716863719031,"u":230704,"seq":1432604333,"cts":1716863718905},"retExtInfo":{},"time":1716863719100}"#,
        ),
        (
            "rest-kline",
            r#"{"retCode":0,"retMsg":"OK","result":{"category":"inverse","symbol":"BTCUSD","list":[["1670608800000","17071","17073","17027","17055.5","268611","15.74462667"]]},"retExtInfo":{},"time":1672025956592}"#,
        ),
    ];
    for (kind, text) in data {
        let v: Value = serde_json::from_str(text).unwrap();
        let dropped = match kind {
            "orderbook" => roundtrip_book(text, &v),
            "trade" => roundtrip_trades(text, &v),
            "kline" => roundtrip::<KlineMessage>(text, &v),
            "ticker" => roundtrip::<TickerMessage>(text, &v),
            "time" => roundtrip::<Response<ServerTime>>(text, &v),
            "create" => roundtrip::<Response<OrderIdResult>>(text, &v),
            "rest-orderbook" => roundtrip::<Response<OrderbookResult>>(text, &v),
            "rest-kline" => roundtrip::<Response<KlineResult>>(text, &v),
            _ => unreachable!(),
        };
        assert!(dropped.is_empty(), "{kind}: dropped {dropped:?}");
    }
}

#[test]
fn typed_values_of_the_fixtures() {
    use apex_bybit::{Category, Dec, OrderStatus, PositionSide, StopOrderType};
    use apex_core::{Scale, Side};
    let read = |f: &str| std::fs::read_to_string(data_dir().join("nautilus_fixtures").join(f)).unwrap();

    let order: OrderMessage = serde_json::from_str(&read("ws_account_order_filled.json")).unwrap();
    let o = &order.data[0];
    assert_eq!((o.side, &o.order_status, &o.category), (Side::Buy, &OrderStatus::Filled, &Some(Category::Linear)));
    assert_eq!(o.avg_price.to_units(Scale::new(2).unwrap()).unwrap(), 3_000_050);
    assert_eq!(o.stop_order_type, StopOrderType::Stop);
    assert_eq!(o.created_time, 1_672_364_262_444);

    let rest: Response<OrderListResult> = serde_json::from_str(&read("http_get_orders_realtime.json")).unwrap();
    assert!(rest.result.list[0].avg_price.is_empty(), "null avgPrice reads as unset");
    assert!(rest.result.list.iter().all(|o| o.order_status.is_open()));

    let positions: Response<PositionListResult> = serde_json::from_str(&read("http_get_positions.json")).unwrap();
    let flat = &positions.result.list[2];
    assert_eq!((&flat.side, flat.size.is_zero(), flat.liq_price.is_empty()), (&PositionSide::None, true, true));
    assert_eq!(positions.result.list[0].avg_price, Some(Dec::new("50000.00").unwrap()));

    let wallet: WalletMessage = serde_json::from_str(&read("ws_account_wallet.json")).unwrap();
    assert_eq!(wallet.data[0].coin("USDT").unwrap().wallet_balance.as_str(), "9647.75537647");
    assert_eq!(wallet.data[0].total_perp_upl.as_str(), "0");

    let instruments: Response<InstrumentsInfoResult> =
        serde_json::from_str(&read("http_get_instruments_linear.json")).unwrap();
    let btc = &instruments.result.list[0];
    assert_eq!((btc.price_scale().unwrap().decimals(), btc.qty_scale().unwrap().decimals()), (1, 3));
    let spot: Response<InstrumentsInfoResult> = serde_json::from_str(&read("http_get_instruments_spot.json")).unwrap();
    assert_eq!(spot.result.list[1].qty_scale().unwrap().decimals(), 5);
}
