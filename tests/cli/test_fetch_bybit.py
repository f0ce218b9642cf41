"""`apexctl fetch --source bybit` against local V5-shaped HTTP and WebSocket servers on loopback (no internet)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pytest
from websockets.asyncio.server import serve

from apexctl.errors import NetworkError, RequestRefused, UsageError
from apexctl.forge import bybit_api
from apexctl.forge.bybit_archive import parse_lines_stream
from apexctl.forge.fetch import BybitFetch, fetch_bybit
from apexctl.forge.io import read_table
from apexctl.schemas.tables import BARS, BOOK, TRADES
from tests.conftest import BYBIT, replay_book, run_cli

MINUTE = 60_000
T0 = 1_733_011_200_000  # 2024-12-01T00:00Z
NOW = T0 + 250 * MINUTE + 30_000  # the bar starting at T0+250m is still forming


class FakeRest:
    """State of the fake REST venue: kline bars every minute from T0 up to NOW, plus scripted failures."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.http_429 = 0
        self.code_10006 = 0
        self.instruments = json.loads((BYBIT / "nautilus_fixtures/http_get_instruments_linear.json").read_text())

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, dict, dict[str, str]]:
        self.requests.append((path, query))
        envelope = {"retCode": 0, "retMsg": "OK", "retExtInfo": {}, "time": NOW}
        if path == "/v5/market/instruments-info":
            items = [i for i in self.instruments["result"]["list"] if i["symbol"] == query.get("symbol")]
            return 200, {**envelope, "result": {"category": query["category"], "list": items}}, {}
        if path != "/v5/market/kline":
            return 404, {}, {}
        if self.http_429:
            self.http_429 -= 1
            return 429, {"retCode": 0}, {}
        if self.code_10006:
            self.code_10006 -= 1
            reset = str(bybit_api.now_ms() + 20)
            headers = {"X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": reset}
            return 200, {**envelope, "retCode": 10006, "retMsg": "Too many visits!"}, headers
        if query["symbol"] == "BADUSDT":
            return 200, {**envelope, "retCode": 10001, "retMsg": "params error: symbol invalid"}, {}
        start, end = int(query["start"]), int(query["end"])
        # Sloppy anchoring, as users report: one bar before `start` comes back too (overlap, so dedupe matters).
        bars = [t for t in range(T0, NOW + 1, MINUTE) if start - MINUTE <= t <= end]
        rows = [
            [str(t), str(100 + k), str(101 + k), str(99 + k), f"{100.5 + k}", "1.5", "150.75"]
            for t in bars
            for k in [(t - T0) // MINUTE]
        ]
        return 200, {**envelope, "result": {"category": "linear", "symbol": query["symbol"], "list": rows[::-1]}}, {}


@pytest.fixture
def rest():
    state = FakeRest()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            status, body, headers = state.answer(url.path, dict(urllib.parse.parse_qsl(url.query)))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def fetch_config(rest, tmp_path, **kw) -> BybitFetch:
    base = {
        "symbols": ["BTCUSDT"],
        "category": "linear",
        "output": str(tmp_path / "out"),
        "start_ms": T0,
        "end_ms": T0 + 300 * MINUTE,
        "base_url": rest.url,
        "limit": 100,
        "backoff": 0.001,
    }
    return BybitFetch(**{**base, **kw})


def test_klines_paginate_sort_drop_forming_dedupe(rest, tmp_path):
    rest.http_429 = 1
    counts = fetch_bybit(fetch_config(rest, tmp_path))
    table = read_table(tmp_path / "out/bars.parquet", BARS)
    frame = table.frame
    assert counts == {"bars": 250}
    assert frame["ts"].to_list() == [(T0 + k * MINUTE) * 1_000_000 for k in range(250)]
    assert frame["open"].to_list() == [100.0 + k for k in range(250)]
    assert set(frame["interval"]) == {"1m"}
    assert table.instruments() == {"BTCUSDT": {"tick_size": "0.5", "qty_step": "0.001"}}
    klines = [q for p, q in rest.requests if p == "/v5/market/kline"]
    # One 429 retried, then 4 windows of 100 bars with both bounds: [0,99], [100,199], [200,299], [300,300].
    assert len(klines) == 5
    windows = [(int(q["start"]), int(q["end"])) for q in klines[1:]]
    assert windows == [
        (T0 + a * MINUTE, T0 + b * MINUTE + (MINUTE - 1 if b < 300 else 0))
        for a, b in ((0, 99), (100, 199), (200, 299), (300, 300))
    ]
    assert all(q["limit"] == "100" for q in klines)


def test_rate_limit_10006_waits_for_reset_then_succeeds(rest, tmp_path):
    rest.code_10006 = 2
    slept: list[float] = []
    client = bybit_api.RestClient(rest.url, max_attempts=3, backoff=0.001, sleep=slept.append)
    bars = client.klines("linear", "BTCUSDT", "1", T0, T0 + 10 * MINUTE, limit=100)
    assert bars.height == 11
    assert len(slept) == 2
    assert all(0 <= s <= 1 for s in slept)


def test_retcode_error_and_giving_up(rest, tmp_path):
    client = bybit_api.RestClient(rest.url, max_attempts=2, backoff=0.001)
    with pytest.raises(RequestRefused, match=r"retCode 10001: params error: symbol invalid"):
        client.klines("linear", "BADUSDT", "1", T0, T0 + MINUTE)
    rest.http_429 = 5
    with pytest.raises(NetworkError, match=r"gave up after 2 attempts \(last: HTTP 429\)") as failing:
        client.klines("linear", "BTCUSDT", "1", T0, T0 + MINUTE)
    assert not isinstance(failing.value, RequestRefused), "a venue that keeps failing is not a refused request"
    result = run_cli(
        "fetch", "--source", "bybit", "--symbol", "BADUSDT", "--start", str(T0), "--end", str(T0 + MINUTE),
        "--base-url", rest.url, "-o", str(tmp_path / "bad"),
    )  # fmt: skip
    assert result.returncode == 2, "the venue refused the request: the user must change it"
    assert "no linear instrument named BADUSDT" in result.stderr.decode()


def test_an_unreachable_venue_exits_1_for_a_retry_not_2(tmp_path):
    """Cron tells a failure worth retrying (exit 1: nothing listens, the venue keeps failing) from a request to fix
    (exit 2), as `apexctl trade` does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = run_cli(
        "fetch", "--source", "bybit", "--symbol", "BTCUSDT", "--start", str(T0), "--end", str(T0 + MINUTE),
        "--base-url", closed, "--max-attempts", "1", "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr.decode()
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("apexctl: error: GET /v5/market/"), lines
    assert "gave up after 1 attempts (last: network error:" in lines[0], lines
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------- WebSocket


def snapshot_and_deltas(symbol: str, count: int, later: int = 0) -> list[dict]:
    """An orderbook.50 stream shaped on the real tardis BTCPERP messages: one snapshot, then u+1 deltas."""
    real = [
        m
        for m in json.loads((BYBIT / "tardis/bybit_v5_derivatives_messages.json").read_text())
        if m["topic"] == "orderbook.50.BTCPERP"
    ]
    first = json.loads(json.dumps(real[0]).replace("BTCPERP", symbol))
    first["data"]["b"] += [["28555.00", "1.000"], ["28554.50", "2.500"]]
    first["data"]["a"] += [["28555.50", "0.300"]]
    # A stream opened `later` connections afterwards starts from a newer book state.
    first["ts"] += 10_000 * later
    first["data"]["u"] += 1_000 * later
    first["data"]["seq"] += 100_000 * later
    out = [first]
    for n in range(1, count):
        delta = json.loads(json.dumps(real[1]).replace("BTCPERP", symbol))
        delta["data"]["u"] = first["data"]["u"] + n
        delta["data"]["seq"] = first["data"]["seq"] + 3 * n
        delta["ts"] = first["ts"] + 20 * n
        delta["data"]["b"] = [["28555.20", f"{0.1 * (n % 7 + 1):.3f}"], ["28554.50", "0" if n % 2 else "2.000"]]
        delta["data"]["a"] = [] if n % 3 else [["28555.50", f"{n % 5}.000"]]
        out.append(delta)
    return out


def trade_message(symbol: str, n: int) -> dict:
    return {
        "topic": f"publicTrade.{symbol}",
        "type": "snapshot",
        "ts": 1680673822000 + n,
        "data": [
            {
                "T": 1680673822000 + n,
                "s": symbol,
                "S": "Buy" if n % 2 else "Sell",
                "v": "0.010",
                "p": "28555.30",
                "L": "PlusTick",
                "i": f"trade-{n}",
                "BT": False,
            }
        ],
    }


@contextlib.contextmanager
def ws_venue(
    refuse: bool = False,
    drop_first_after: int | None = None,
    drop_every_after: int | None = None,
    only_first: bool = False,
    first_message: dict | None = None,
):
    """A public-socket venue on loopback: acks subscribes (or refuses them), answers pings, streams book + trades.

    With `drop_first_after` (`drop_every_after`), the first (every) connection is closed after that many book
    messages (a venue-side drop). With `only_first`, every later connection is closed before it is answered (the
    venue is gone). `first_message` is sent before the stream.
    """
    seen: dict[str, list] = {"requests": [], "connections": []}

    async def handler(socket) -> None:
        streamer = None
        seen["connections"].append(socket)
        if only_first and len(seen["connections"]) > 1:
            await socket.close()
            return
        first = len(seen["connections"]) == 1
        drop_after = drop_first_after if first and drop_first_after is not None else drop_every_after

        async def stream(symbols: list[str]) -> None:
            books = {s: snapshot_and_deltas(s, 40, later=len(seen["connections"]) - 1) for s in symbols}
            if first_message is not None:
                await socket.send(json.dumps(first_message))
            for n in range(40):
                if n == drop_after:
                    await socket.close()
                    return
                for s in symbols:
                    await socket.send(json.dumps(books[s][n]))
                    if n % 4 == 0:
                        await socket.send(json.dumps(trade_message(s, n)))
                await asyncio.sleep(0.01)

        async for raw in socket:
            request = json.loads(raw)
            seen["requests"].append(request)
            if request["op"] == "ping":
                pong = {"success": True, "ret_msg": "pong", "conn_id": "c1", "req_id": request.get("req_id", "")}
                await socket.send(json.dumps({**pong, "op": "ping"}))
            elif request["op"] == "subscribe":
                if refuse:
                    fail = {"success": False, "ret_msg": f"error:handler not found,topic:{request['args'][0]}"}
                    await socket.send(json.dumps({**fail, "conn_id": "c1", "op": "subscribe"}))
                    continue
                ack = {"success": True, "ret_msg": "", "conn_id": "c1", "req_id": request.get("req_id", "")}
                await socket.send(json.dumps({**ack, "op": "subscribe"}))
                symbols = sorted({a.split(".")[-1] for a in request["args"]})
                streamer = asyncio.create_task(stream(symbols))
        if streamer is not None:
            streamer.cancel()

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict = {}

    async def main() -> None:
        box["stop"] = loop.create_future()
        async with serve(handler, "127.0.0.1", 0) as server:
            box["port"] = next(iter(server.sockets)).getsockname()[1]
            ready.set()
            await box["stop"]

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield f"ws://127.0.0.1:{box['port']}/v5/public/linear", seen
    finally:
        loop.call_soon_threadsafe(box["stop"].set_result, None)
        thread.join(5)


def recorded_frames(sink: io.BytesIO) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A recording's messages (one a line) parsed as `fetch --source file` parses them, stable-sorted by time."""
    parsed = parse_lines_stream(io.BytesIO(sink.getvalue()), "recording")
    assert parsed.book is not None
    assert parsed.trades is not None
    return parsed.book.sort("ts", maintain_order=True), parsed.trades.sort("ts", maintain_order=True)


def test_record_pings_and_acks():
    sink = io.BytesIO()
    with ws_venue() as (url, seen):
        recording = bybit_api.record_public(
            url, "linear", ["BTCUSDT"], bybit_api.Recording(sink), depth=50, duration=1.0, ping_seconds=0.3
        )
    assert recording.acks == 1
    assert recording.pongs >= 2
    assert recording.messages == 40 + 10
    lines = sink.getvalue().splitlines()
    assert len(lines) == 50
    assert all(json.loads(line)["topic"] for line in lines)
    subscribe = seen["requests"][0]
    assert subscribe["op"] == "subscribe"
    assert subscribe["args"] == ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]
    assert sum(r["op"] == "ping" for r in seen["requests"]) >= 2


def test_refused_subscribe_is_a_clear_error():
    with ws_venue(refuse=True) as (url, _), pytest.raises(NetworkError, match="refused: error:handler not found"):
        bybit_api.record_public(url, "linear", ["BTCUSDT"], bybit_api.Recording(io.BytesIO()), depth=50, duration=1.0)


def test_cli_records_book_and_trades_that_replay_cleanly(rest, tmp_path):
    out = tmp_path / "ws"
    with ws_venue() as (url, _):
        result = run_cli(
            "fetch", "--source", "bybit", "--symbol", "BTCUSDT,ETHUSDT", "--record-ws", "--duration", "3",
            "--base-url", rest.url, "--ws-url", url, "-o", str(out),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    book = read_table(out / "book.parquet", BOOK)
    trades = read_table(out / "trades.parquet", TRADES)
    assert set(book.instruments()) == {"BTCUSDT", "ETHUSDT"}
    assert book.metadata["apex.params"]["depth"] == 50
    summary = replay_book(book.frame)
    assert summary["incidents"] == []
    assert summary["messages"] == 80
    for code in (0, 1):
        assert summary["books"][code]["synced"]
        assert summary["books"][code]["deltas"] == 39
    assert trades.frame.height == 20
    assert set(trades.frame["symbol"]) == {"BTCUSDT", "ETHUSDT"}
    assert not (tmp_path / "bars.parquet").exists()


def test_cli_klines_iso_times_and_labels(rest, tmp_path):
    result = run_cli(
        "fetch", "--source", "bybit", "--symbol", "btcusdt,ETHUSDT", "--start", "2024-12-01T00:00Z",
        "--end", "2024-12-01T01:00:00+00:00", "--base-url", rest.url, "-o", str(tmp_path / "k"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    table = read_table(tmp_path / "k/bars.parquet", BARS)
    assert table.frame.group_by("symbol").len().sort("symbol").rows() == [("BTCUSDT", 61), ("ETHUSDT", 61)]
    assert table.instruments()["ETHUSDT"] == {"tick_size": "0.05", "qty_step": "0.01"}
    assert table.metadata["apex.params"]["start_ms"] == T0


def test_time_and_interval_parsing():
    assert bybit_api.parse_time_ms("2024-12-01T00:00Z", "--start") == T0
    assert bybit_api.parse_time_ms("2024-12-01 00:00", "--start") == T0
    assert bybit_api.parse_time_ms(str(T0), "--start") == T0
    with pytest.raises(UsageError, match="--end 'yesterday'"):
        bybit_api.parse_time_ms("yesterday", "--end")
    assert {k: v[1] for k, v in bybit_api.INTERVALS.items()} == {
        "1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "120": "2h", "240": "4h",
        "360": "6h", "720": "12h", "D": "1d", "W": "1w", "M": "1M",
    }  # fmt: skip
    assert bybit_api.public_ws_url(bybit_api.TESTNET_REST, "spot") == "wss://stream-testnet.bybit.com/v5/public/spot"


def test_dropped_connection_reconnects_and_resubscribes():
    sink = io.BytesIO()
    with ws_venue(drop_first_after=10) as (url, seen):
        recording = bybit_api.record_public(
            url, "linear", ["BTCUSDT"], bybit_api.Recording(sink), depth=50, duration=4.0, ping_seconds=0.3
        )
    assert recording.reconnects == 1
    assert len(seen["connections"]) == 2
    assert [r["op"] for r in seen["requests"]].count("subscribe") == 2
    book, _ = recorded_frames(sink)
    summary = replay_book(book)
    # The second connection's snapshot rebases the book: no gap, no incident, two snapshots.
    assert summary["incidents"] == []
    assert summary["books"][0]["snapshots"] == 2
    assert summary["books"][0]["deltas"] == 9 + 39


def test_reconnects_count_against_the_limit_only_in_a_row():
    # Every connection drops after 5 book messages: a long recording outlives more drops than the limit.
    sink = io.BytesIO()
    with ws_venue(drop_every_after=5) as (url, seen):
        recording = bybit_api.record_public(
            url,
            "linear",
            ["BTCUSDT"],
            bybit_api.Recording(sink),
            depth=50,
            duration=3.0,
            ping_seconds=0.3,
            max_reconnects=1,
        )
    assert recording.reconnects >= 2  # more than max_reconnects, each after data came
    book, _ = recorded_frames(sink)
    summary = replay_book(book)
    assert summary["incidents"] == []
    # Each connection's snapshot rebased the book (one at the deadline may have had no time to send any).
    assert summary["books"][0]["snapshots"] in (len(seen["connections"]) - 1, len(seen["connections"]))


def ws_fetch(rest, url: str, out, *more: str) -> list[str]:
    return [
        sys.executable, "-m", "apexctl", "fetch", "--source", "bybit", "--symbol", "BTCUSDT,ETHUSDT", "--record-ws",
        "--base-url", rest.url, "--ws-url", url, "-o", str(out), *more,
    ]  # fmt: skip


def assert_kept_recording_makes_the_book(tmp_path, stderr: str, book_messages: int) -> None:
    kept = tmp_path / "ws.recording.jsonl"
    assert f"kept in {kept}" in stderr, stderr
    assert not (tmp_path / "ws").exists()
    assert not list(tmp_path.glob(".apexctl-fetch-*"))
    result = run_cli("fetch", "--source", "file", str(kept), "--kind", "book", "-o", str(tmp_path / "b.parquet"))
    assert result.returncode == 0, result.stderr.decode()
    summary = replay_book(read_table(tmp_path / "b.parquet", BOOK).frame)
    assert summary["incidents"] == []
    assert summary["messages"] == book_messages


def test_a_network_give_up_keeps_what_was_recorded(rest, tmp_path):
    # The venue drops the first connection after 10 messages of each book and then is gone.
    with ws_venue(drop_first_after=10, only_first=True) as (url, _):
        result = subprocess.run(
            ws_fetch(rest, url, tmp_path / "ws", "--duration", "60"), capture_output=True, check=False
        )
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "gave up after 3 reconnects in a row; the 26 messages recorded are kept in" in stderr, stderr
    assert_kept_recording_makes_the_book(tmp_path, stderr, 20)


def test_ctrl_c_keeps_what_was_recorded(rest, tmp_path):
    with ws_venue() as (url, _):
        process = subprocess.Popen(
            ws_fetch(rest, url, tmp_path / "ws", "--duration", "60"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "200"},
        )
        try:
            deadline = time.monotonic() + 60
            while not list(tmp_path.glob(".apexctl-fetch-*/recording.jsonl")) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.5)  # the whole stream (0.4 s) has arrived
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    stderr = err.decode()
    assert process.returncode == 130, stderr
    assert "the 100 messages recorded are kept in" in stderr, stderr
    assert_kept_recording_makes_the_book(tmp_path, stderr, 80)


def test_a_malformed_message_is_named_and_the_recording_kept(rest, tmp_path):
    bad = {"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1680673822000, "data": {"s": "BTCUSDT"}}
    with ws_venue(first_message=bad) as (url, _):
        result = subprocess.run(
            ws_fetch(rest, url, tmp_path / "ws", "--duration", "2"), capture_output=True, check=False
        )
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert stderr.count("\n") == 1, stderr
    assert "the WebSocket recording: line 1" in stderr, stderr
    kept = tmp_path / "ws.recording.jsonl"
    assert f"the 101 messages recorded are kept in {kept}; the line number is that file's" in stderr
    assert json.loads(kept.read_text().splitlines()[0]) == bad
