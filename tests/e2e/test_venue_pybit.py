"""pybit, Bybit's official SDK, against the local venue: HTTP place/amend/cancel/query, an order book rebuilt from
pybit's public stream equal to the venue's, and the private order/execution topics. pybit is pointed at the venue by
setting its endpoint attributes, never by changing the venue."""

from __future__ import annotations

import threading
import time

import pytest
from pybit import unified_trading
from pybit.exceptions import InvalidRequestError

from tests.support.venue_helpers import ACCOUNTS, book_checksum, running_venue, venue_checksum, wait_for


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    with running_venue(tmp_path_factory.mktemp("venue"), "--speed", "5", "--seed", "3") as document:
        yield document


@pytest.fixture
def http(venue):
    session = unified_trading.HTTP(testnet=False, api_key=ACCOUNTS[0]["api_key"], api_secret=ACCOUNTS[0]["api_secret"])
    session.endpoint = venue["rest"]
    return session


@pytest.fixture
def point_pybit_websockets(venue, monkeypatch):
    """pybit builds its WebSocket URLs from these module attributes; the venue's URLs replace them."""
    public = venue["ws_public"].replace("/linear", "/{CHANNEL_TYPE}")
    monkeypatch.setattr(unified_trading, "PUBLIC_WSS", public)
    monkeypatch.setattr(unified_trading, "PRIVATE_WSS", venue["ws_private"])


def test_http_place_amend_cancel_and_query(http):
    assert abs(int(http.get_server_time()["result"]["timeSecond"]) - time.time()) < 5
    instruments = http.get_instruments_info(category="linear")["result"]["list"]
    assert [i["symbol"] for i in instruments] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    book = http.get_orderbook(category="linear", symbol="ETHUSDT", limit=5)["result"]
    best_bid = float(book["b"][0][0])
    price = f"{best_bid * 0.9:.2f}"
    order = dict(category="linear", symbol="ETHUSDT", side="Buy", orderType="Limit", price=price, orderLinkId="pybit-1")
    placed = http.place_order(**order, qty="0.10")
    order_id = placed["result"]["orderId"]
    assert placed["result"]["orderLinkId"] == "pybit-1"
    with pytest.raises(InvalidRequestError) as duplicate:
        http.place_order(**order, qty="0.1")
    assert duplicate.value.status_code == 110072

    def resting():
        rows = http.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"]
        return [r for r in rows if r["orderId"] == order_id and r["orderStatus"] == "New"]

    row = wait_for(resting)[0]
    assert (row["price"], row["qty"], row["orderLinkId"], row["side"]) == (price, "0.10", "pybit-1", "Buy")
    new_price = f"{best_bid * 0.89:.2f}"
    http.amend_order(category="linear", symbol="ETHUSDT", orderLinkId="pybit-1", price=new_price, qty="0.2")
    wait_for(lambda: [r for r in resting() if r["price"] == new_price and r["qty"] == "0.20"])
    http.cancel_order(category="linear", symbol="ETHUSDT", orderId=order_id)
    history = wait_for(
        lambda: [
            r
            for r in http.get_order_history(category="linear", symbol="ETHUSDT")["result"]["list"]
            if r["orderId"] == order_id and r["orderStatus"] == "Cancelled"
        ]
    )
    assert history[0]["cancelType"] == "CancelByUser"
    with pytest.raises(InvalidRequestError) as gone:
        http.cancel_order(category="linear", symbol="ETHUSDT", orderId=order_id)
    assert gone.value.status_code == 110001

    http.place_order(category="linear", symbol="SOLUSDT", side="Sell", orderType="Market", qty="1.0")
    position = wait_for(
        lambda: [
            p for p in http.get_positions(category="linear", symbol="SOLUSDT")["result"]["list"] if p["size"] == "1.0"
        ]
    )[0]
    assert position["side"] == "Sell"
    assert float(position["avgPrice"]) > 0
    executions = http.get_executions(category="linear", symbol="SOLUSDT")["result"]["list"]
    assert sum(float(e["execQty"]) for e in executions) == pytest.approx(1.0)
    wallet = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    fees = sum(float(e["execFee"]) for e in executions)
    assert float(wallet["totalWalletBalance"]) == pytest.approx(10_000 - fees, abs=1e-6)
    with pytest.raises(InvalidRequestError) as too_big:
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="50")
    assert too_big.value.status_code == 110007


def test_bad_signature_and_stale_timestamp_are_refused(venue):
    wrong = unified_trading.HTTP(testnet=False, api_key=ACCOUNTS[0]["api_key"], api_secret="not-the-secret")
    wrong.endpoint = venue["rest"]
    with pytest.raises(InvalidRequestError) as sign:
        wrong.get_wallet_balance(accountType="UNIFIED")
    assert sign.value.status_code == 10004
    unknown = unified_trading.HTTP(testnet=False, api_key="nobody", api_secret="x")
    unknown.endpoint = venue["rest"]
    with pytest.raises(InvalidRequestError) as key:
        unknown.get_wallet_balance(accountType="UNIFIED")
    assert key.value.status_code == 10003


@pytest.mark.usefixtures("point_pybit_websockets")
def test_orderbook_rebuilt_from_pybit_equals_the_venues(venue):
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def on_book(message):
        data = message["data"]
        # pybit hands over its merged book; sort it (pybit does not promise order) and take the top 50.
        bids = sorted(data["b"], key=lambda level: -float(level[0]))[:50]
        asks = sorted(data["a"], key=lambda level: float(level[0]))[:50]
        with lock:
            seen.append((data["u"], book_checksum(bids, asks)))

    ws = unified_trading.WebSocket(testnet=False, channel_type="linear")
    try:
        ws.orderbook_stream(50, "BTCUSDT", on_book)
        wait_for(lambda: len(seen) >= 60, timeout=30)
    finally:
        ws.exit()
    with lock:
        states = list(seen)
    compared = 0
    for u, checksum in states[10:60]:
        expected = venue_checksum(venue["rest"], "BTCUSDT", 50, u)
        if expected is not None:
            assert checksum == expected, f"pybit's book differs from the venue's at u={u}"
            compared += 1
    assert compared >= 40, f"only {compared} states could be compared"


@pytest.mark.usefixtures("point_pybit_websockets")
def test_private_order_and_execution_topics(venue, http):
    orders: list[dict] = []
    executions: list[dict] = []
    ws = unified_trading.WebSocket(
        testnet=False, channel_type="private", api_key=ACCOUNTS[0]["api_key"], api_secret=ACCOUNTS[0]["api_secret"]
    )
    try:
        ws.order_stream(lambda m: orders.extend(m["data"]))
        ws.execution_stream(lambda m: executions.extend(m["data"]))
        time.sleep(0.5)
        http.place_order(
            category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.002", orderLinkId="pybit-ws"
        )
        filled = wait_for(
            lambda: [o for o in orders if o["orderLinkId"] == "pybit-ws" and o["orderStatus"] == "Filled"]
        )
        assert filled[0]["cumExecQty"] == "0.002"
        assert filled[0]["category"] == "linear"
        fills = wait_for(lambda: [e for e in executions if e["orderLinkId"] == "pybit-ws"])
        assert sum(float(e["execQty"]) for e in fills) == pytest.approx(0.002)
        assert all(e["isMaker"] is False and e["execType"] == "Trade" for e in fills)
    finally:
        ws.exit()
