//! Golden tests: real V5 messages (tests/data/bybit) and documented real lines parsed into `book`/`trades` rows.

use std::path::PathBuf;

use apex_bybit::{
    KIND_DELTA, KIND_SNAPSHOT, LineParser, MessageKind, OpResponse, OrderbookMessage, ParseError, PublicTradeMessage,
    TakerSide,
};
use serde_json::Value;

fn data_text(path: &str) -> String {
    let file = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../../tests/data/bybit")
        .join(path);
    std::fs::read_to_string(&file).unwrap()
}

/// A tardis file (a JSON array of messages) as archive-style lines, one compact message per line.
fn as_lines(path: &str) -> Vec<u8> {
    let messages: Vec<Value> = serde_json::from_str(&data_text(path)).unwrap();
    messages.iter().map(|m| serde_json::to_string(m).unwrap() + "\n").collect::<String>().into_bytes()
}

fn parse(data: &[u8]) -> LineParser {
    let mut parser = LineParser::new();
    parser.push_lines(data, 1).unwrap();
    parser
}

#[test]
fn tardis_derivatives_messages() {
    let parser = parse(&as_lines("tardis/bybit_v5_derivatives_messages.json"));
    assert_eq!(parser.lines, 15);
    let book = &parser.book;
    let symbols: Vec<&str> = book.symbol.iter().map(|&c| parser.symbols[c as usize].as_str()).collect();
    // orderbook.1.BTCUSDT snapshot (1 bid, 1 ask), delta (1 bid, no asks), BTCPERP snapshot + delta (2 each),
    // the later BTCUSDT delta (2 bids, 2 asks).
    assert_eq!(
        symbols,
        [
            "BTCUSDT", "BTCUSDT", "BTCUSDT", "BTCPERP", "BTCPERP", "BTCPERP", "BTCPERP", "BTCUSDT", "BTCUSDT",
            "BTCUSDT", "BTCUSDT"
        ]
    );
    assert_eq!(book.kind[..5], [KIND_SNAPSHOT, KIND_SNAPSHOT, KIND_DELTA, KIND_SNAPSHOT, KIND_SNAPSHOT]);
    assert_eq!(book.side, [1, -1, 1, 1, -1, 1, -1, 1, 1, -1, -1]);
    assert_eq!(book.price[..3], [28552.00, 28552.10, 28552.00]);
    assert_eq!(book.size[..3], [0.047, 25.433, 0.012]);
    assert_eq!(book.ts[0], 1_680_673_820_717_000_000);
    assert_eq!(book.update_id[..3], [7_003_305, 7_003_305, 7_003_306]);
    assert_eq!(book.seq[0], 50_193_540_681);
    assert_eq!(book.price[7..], [27994.60, 27991.70, 27994.40, 27994.80]);
    assert_eq!(book.size[7..], [0.0, 0.777, 0.058, 0.0]);

    let trades = &parser.trades;
    let first_trade_symbol = &parser.symbols[trades.symbol[0] as usize];
    assert_eq!(first_trade_symbol, "BTCUSD");
    assert_eq!(trades.ts[0], 1_680_673_823_564_000_000);
    assert_eq!((trades.side[0], trades.price[0], trades.size[0]), (1, 28560.50, 5823.0));
    assert_eq!(trades.trade_id(0), "0cbf2330-952d-5d03-a462-4bf826c867af");
    let last = trades.len() - 1;
    assert_eq!(parser.symbols[trades.symbol[last] as usize], "LTCUSDT");
    assert_eq!((trades.side[last], trades.price[last], trades.size[last]), (1, 94.53, 0.4));
    assert_eq!(trades.trade_id(last), "4c7b6bdc-b4a3-5716-9c7b-bbe01dc7072f");
    // 2 publicTrade and 5 orderbook messages; tickers x5, liquidation x2, allLiquidation x1 are skipped.
    assert_eq!(parser.skipped, 8);
}

#[test]
fn tardis_spot_messages() {
    let parser = parse(&as_lines("tardis/bybit_v5_spot_messages.json"));
    assert_eq!((parser.lines, parser.skipped), (6, 0));
    let trades = &parser.trades;
    assert_eq!(trades.trade_id(0), "2290000000050703789");
    assert_eq!((trades.side[0], trades.price[0], trades.size[0]), (-1, 28165.38, 0.041732));
    assert_eq!(parser.symbols[trades.symbol[trades.len() - 1] as usize], "BTCUSDC");
    let book = &parser.book;
    // orderbook.1 snapshot (2 rows) + delta (1 row) + orderbook.50 snapshot (2) + delta (3).
    assert_eq!(book.len(), 8);
    assert_eq!(book.size[2], 0.166754);
    assert_eq!(book.update_id[7], 59_438_061);
}

#[test]
fn nautilus_ws_fixtures() {
    let snapshot: Value = serde_json::from_str(&data_text("nautilus_fixtures/ws_orderbook_snapshot.json")).unwrap();
    let delta: Value = serde_json::from_str(&data_text("nautilus_fixtures/ws_orderbook_delta.json")).unwrap();
    let lines = format!("{}\n{}\n", serde_json::to_string(&snapshot).unwrap(), serde_json::to_string(&delta).unwrap());
    let parser = parse(lines.as_bytes());
    assert_eq!(parser.book.len(), 6);
    assert_eq!(parser.book.price, [27450.0, 27449.5, 27451.0, 27451.5, 27450.0, 27451.0]);
    assert_eq!(parser.book.size[5], 0.0);
    assert_eq!(parser.book.update_id[4], 123_456_790);

    // Typed messages: the pretty-printed fixtures deserialize directly (strings then owned, not borrowed).
    let text = data_text("nautilus_fixtures/ws_orderbook_snapshot.json");
    let message: OrderbookMessage<'_> = serde_json::from_str(&text).unwrap();
    assert_eq!((message.kind, message.data.u, message.cts), (MessageKind::Snapshot, 123_456_789, None));
    let text = data_text("nautilus_fixtures/ws_public_trade.json");
    let trade: PublicTradeMessage<'_> = serde_json::from_str(&text).unwrap();
    assert_eq!(trade.data[0].S, TakerSide::Buy);
    // The fixture's topic `trade.linear.BTCUSDT` does not exist on the venue, so the line parser skips it.
    let parser = parse(serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap().as_bytes());
    assert_eq!((parser.trades.len(), parser.skipped), (0, 1));

    let ack: OpResponse = serde_json::from_str(&data_text("nautilus_fixtures/ws_subscription_ack.json")).unwrap();
    assert_eq!((ack.success, ack.op.as_deref()), (Some(true), Some("subscribe")));
    let failure: OpResponse =
        serde_json::from_str(&data_text("nautilus_fixtures/ws_subscription_failure.json")).unwrap();
    assert_eq!(failure.success, Some(false));
    assert!(!failure.is_pong());
}

/// Real lines quoted in reference/bybit-v5.md §2.3 (hftbacktest recording, key order as sent).
#[test]
fn recorded_lines_with_varied_key_order() {
    let lines = concat!(
        r#"{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1758841134603,"data":{"s":"BTCUSDT","b":[["109378.80","1.273"]],"a":[["109378.90","6.278"]],"u":14869255,"seq":457514742271},"cts":1758841134598}"#,
        "\r\n\n",
        r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1758841135824,"data":[{"T":1758841135823,"s":"BTCUSDT","S":"Buy","v":"0.020","p":"109378.90","L":"ZeroPlusTick","i":"2a74ac78-691c-5b54-9dbe-5aafe8364627","BT":false,"RPI":false,"seq":457514743450}]}"#,
        "\n",
        r#"{"ts":1758845431663,"data":{"seq":457538796406,"u":21111423,"a":[["109148.00","0"]],"b":[["109147.80","1.687"]],"s":"BTCUSDT"},"cts":1758845431662,"type":"delta","topic":"orderbook.50.BTCUSDT"}"#,
        "\n",
        r#"{"success":true,"ret_msg":"pong","conn_id":"465772b1","req_id":"","op":"ping"}"#,
    );
    let parser = parse(lines.as_bytes());
    assert_eq!((parser.lines, parser.skipped), (4, 1));
    assert_eq!(parser.book.len(), 4);
    assert_eq!(parser.book.kind[2..], [KIND_DELTA, KIND_DELTA]);
    assert_eq!(parser.book.side[2..], [1, -1]);
    assert_eq!(parser.book.seq[3], 457_538_796_406);
    assert_eq!(parser.trades.ts, [1_758_841_135_823_000_000]);
}

#[test]
fn errors_name_the_line_and_the_problem() {
    let good = r#"{"topic":"orderbook.50.X","type":"delta","ts":1,"data":{"s":"X","b":[],"a":[],"u":1,"seq":1}}"#;
    let cases = [
        (
            r#"{"topic":"orderbook.50.X","type":"delta","ts":1,"da"#,
            "line 3: malformed JSON at column 51: EOF while parsing a string",
        ),
        (
            r#"{"topic":"orderbook.50.X","type":"delta","ts":1,"data":{"s":"X","b":[],"a":[],"seq":1}}"#,
            "line 3: orderbook.50.X: data: missing field `u`",
        ),
        (
            r#"{"topic":"orderbook.50.X","type":"delta","data":{"s":"X","b":[],"a":[],"u":1,"seq":1}}"#,
            "line 3: orderbook.50.X: missing field `ts`",
        ),
        (
            r#"{"topic":"orderbook.50.X","type":"delta","ts":1,"data":{"s":"X","b":[["1.5","abc"]],"a":[],"u":1,"seq":1}}"#,
            "line 3: orderbook.50.X: non-numeric size in data.b[0] 'abc'",
        ),
        (
            r#"{"topic":"orderbook.50.X","type":"delta","ts":1,"data":{"s":"X","b":[["NaN","1"]],"a":[],"u":1,"seq":1}}"#,
            "line 3: orderbook.50.X: non-numeric price in data.b[0] 'NaN'",
        ),
        (
            r#"{"topic":"orderbook.50.X","type":"update","ts":1,"data":{"s":"X","b":[],"a":[],"u":1,"seq":1}}"#,
            "line 3: orderbook.50.X: message type 'update', expected 'snapshot' or 'delta'",
        ),
        (
            r#"{"topic":"publicTrade.X","type":"snapshot","ts":1,"data":[{"T":1,"s":"X","S":"Hold","v":"1","p":"2","i":"a"}]}"#,
            "line 3: publicTrade.X: data: unknown variant `Hold`, expected `Buy` or `Sell`",
        ),
    ];
    for (bad, expected) in cases {
        let text = format!("{good}\n\n{bad}\n{good}\n");
        let mut parser = LineParser::new();
        let err = parser.push_lines(text.as_bytes(), 1).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(parser.book.len(), 1, "rows of line 1 stay, nothing from the bad line");
        for pieces in 1..6 {
            let split = LineParser::parse_in_pieces(text.as_bytes(), 1, pieces).unwrap_err();
            assert_eq!(split.to_string(), expected);
        }
    }
    let mut parser = LineParser::new();
    assert_eq!(parser.push_lines(b"\xff\xfe\n", 41).unwrap_err(), ParseError::Utf8 { line: 41 });
}
