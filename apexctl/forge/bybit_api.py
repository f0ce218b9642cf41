"""Bybit V5 public API: REST market data with retries and rate limits, and a public WebSocket recorder."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

import polars as pl

from apexctl.console import safe
from apexctl.errors import NetworkError, RequestRefused, UsageError
from apexctl.forge import ranges
from apexctl.forge.durations import DAY, SECOND

MAINNET_REST = "https://api.bybit.com"
TESTNET_REST = "https://api-testnet.bybit.com"
MAINNET_WS = "wss://stream.bybit.com"
TESTNET_WS = "wss://stream-testnet.bybit.com"

CATEGORIES = ("spot", "linear", "inverse")
DEPTHS = (1, 50, 200, 1000)
#: --record-ws --duration: up to a day.
LONGEST_RECORDING_NS = DAY
RECORD_SECONDS = ranges.FloatRange(0.0, LONGEST_RECORDING_NS / SECOND, low_open=True)
#: --max-attempts per REST call.
ATTEMPTS = ranges.IntRange(1, 100)
#: Earliest and latest times accepted for --start/--end (Bybit's data starts in 2018; nothing comes from 2100).
EARLIEST_MS = 946_684_800_000  # 2000-01-01
LATEST_MS = 4_102_444_800_000  # 2100-01-01
# retCodes worth retrying (bybit-v5.md §4.8): 10006 too many visits, 10016 server error.
RETRY_CODES = {10006, 10016}
PING_SECONDS = 20.0
SPOT_ARGS_PER_SUBSCRIBE = 10

MINUTE_MS = 60_000
INTERVALS: dict[str, tuple[int, str]] = {
    **{m: (int(m) * MINUTE_MS, f"{m}m") for m in ("1", "3", "5", "15", "30")},
    **{m: (int(m) * MINUTE_MS, f"{int(m) // 60}h") for m in ("60", "120", "240", "360", "720")},
    "D": (1440 * MINUTE_MS, "1d"),
    "W": (7 * 1440 * MINUTE_MS, "1w"),
    # Months vary; 31 days per window step keeps windows at most `limit` bars, and dedupe handles overlap.
    "M": (31 * 1440 * MINUTE_MS, "1M"),
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_time_ms(text: str, option: str) -> int:
    """Milliseconds since the epoch from an integer or an ISO 8601 time (UTC when no offset is given), between
    2000 and 2100."""
    value = text.strip()
    if value.isdigit() and len(value) <= 15:
        ms = int(value)
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"{option} {safe(text)!r}: expected epoch milliseconds or an ISO time like 2024-12-01T00:00Z"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ms = int(moment.timestamp() * 1000)
    if not EARLIEST_MS <= ms <= LATEST_MS:
        raise UsageError(f"{option} {safe(text)!r}: outside 2000-01-01 .. 2100-01-01")
    return ms


def check_url(url: str, option: str, schemes: Sequence[str]) -> str:
    """`url` when it is an absolute URL of one of `schemes` with a host (no file://, no bare host name)."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in schemes or not parsed.hostname:
        raise UsageError(f"{option} {safe(url)!r}: expected a {' or '.join(schemes)} URL with a host")
    return url.strip()


def public_ws_url(rest_base: str, category: str) -> str:
    host = TESTNET_WS if "testnet" in rest_base else MAINNET_WS
    return f"{host}/v5/public/{category}"


@dataclass
class RestClient:
    """GETs public V5 endpoints; retries 429/5xx/10006/10016 and network errors with exponential backoff."""

    base_url: str = MAINNET_REST
    max_attempts: int = 5
    backoff: float = 0.5
    timeout: float = 15.0
    sleep: Callable[[float], None] = time.sleep
    max_wait: float = 30.0
    requests: int = field(default=0, init=False)

    def _wait_for_reset(self, headers, fallback: float) -> float:
        """Seconds until X-Bapi-Limit-Reset-Timestamp when the venue sent it, else the backoff."""
        reset = headers.get("X-Bapi-Limit-Reset-Timestamp") if headers else None
        if reset and str(reset).isdigit():
            return min(max((int(reset) - now_ms()) / 1000.0, 0.0), self.max_wait)
        return fallback

    def get(self, path: str, params: dict[str, str | int]) -> dict:
        """The `result` of a successful call; raises RequestRefused when the venue refuses the request, NetworkError
        naming the endpoint when it cannot be reached or keeps failing after the retries."""
        query = urllib.parse.urlencode(params)
        url = f"{self.base_url.rstrip('/')}{path}?{query}"
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            delay = self.backoff * 2 ** (attempt - 1)
            self.requests += 1
            headers = None
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "apexctl", "Accept": "application/json"})
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    headers = response.headers
                    body = response.read()
            except urllib.error.HTTPError as exc:
                if exc.code == 429 or exc.code >= 500:
                    problem = f"HTTP {exc.code}"
                    if attempt < self.max_attempts:
                        self.sleep(self._wait_for_reset(exc.headers, delay))
                    continue
                if exc.code == 403:  # Bybit's answer to an IP it limits or blocks: not the request's fault
                    hint = " (IP rate limit, or a US/mainland-China IP: wait 10 minutes)"
                    raise NetworkError(f"GET {path}: HTTP {exc.code} {exc.reason}{hint}") from None
                raise RequestRefused(f"GET {path}?{query}: HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"network error: {reason}"
                if attempt < self.max_attempts:
                    self.sleep(delay)
                continue
            try:
                payload = json.loads(body)
            except ValueError:
                raise NetworkError(f"GET {path}: answer is not JSON: {body[:100]!r}") from None
            code = payload.get("retCode")
            if code in RETRY_CODES:
                problem = f"retCode {code}: {payload.get('retMsg')}"
                if attempt < self.max_attempts:
                    self.sleep(self._wait_for_reset(headers, delay))
                continue
            if code != 0:
                raise RequestRefused(f"GET {path}?{query}: retCode {code}: {payload.get('retMsg')}")
            self._respect_limit(headers)
            result = payload.get("result") or {}
            result["_time"] = payload.get("time")
            return result
        raise NetworkError(f"GET {path}: gave up after {self.max_attempts} attempts (last: {problem})")

    def _respect_limit(self, headers) -> None:
        """When the venue says no requests remain in this window, wait for its reset before the next call."""
        remaining = headers.get("X-Bapi-Limit-Status") if headers else None
        if remaining is not None and str(remaining).strip() == "0":
            self.sleep(self._wait_for_reset(headers, self.backoff))

    def instruments(self, category: str, symbols: Sequence[str]) -> dict[str, dict[str, str]]:
        """tick_size and qty_step per symbol (spot: basePrecision is the size increment)."""
        out: dict[str, dict[str, str]] = {}
        for symbol in symbols:
            result = self.get("/v5/market/instruments-info", {"category": category, "symbol": symbol})
            items = [i for i in result.get("list") or [] if i.get("symbol") == symbol]
            if not items:
                raise RequestRefused(f"instruments-info: no {category} instrument named {symbol}")
            item = items[0]
            lot = item.get("lotSizeFilter") or {}
            out[symbol] = {
                "tick_size": str((item.get("priceFilter") or {}).get("tickSize", "")),
                "qty_step": str(lot.get("qtyStep") or lot.get("basePrecision") or ""),
            }
        return out

    def klines(
        self, category: str, symbol: str, interval: str, start_ms: int, end_ms: int, *, limit: int = 1000
    ) -> pl.DataFrame:
        """Closed bars with start in [start_ms, end_ms], ascending, deduplicated, as a `bars` frame.

        Windows of `limit` bars with both bounds (anchoring with one bound is undocumented); the venue answers newest
        first and includes the still-forming candle, which is dropped using the venue's own clock (`time`).
        """
        if interval not in INTERVALS:
            raise UsageError(f"--interval '{interval}': expected one of {', '.join(INTERVALS)}")
        step, label = INTERVALS[interval]
        rows: dict[int, list[str]] = {}
        server_ms = 0
        cursor = start_ms - start_ms % step if interval != "M" else start_ms
        while cursor <= end_ms:
            window_end = min(cursor + limit * step - 1, end_ms)
            params = {
                "category": category,
                "symbol": symbol,
                "interval": interval,
                "start": cursor,
                "end": window_end,
                "limit": limit,
            }
            result = self.get("/v5/market/kline", params)
            server_ms = max(server_ms, int(result.get("_time") or 0))
            for item in result.get("list") or []:
                rows[int(item[0])] = item
            cursor = window_end + 1
        server_ms = server_ms or now_ms()
        closed = [
            rows[t] for t in sorted(rows) if start_ms <= t <= end_ms and (interval == "M" or t + step <= server_ms)
        ]
        if interval == "M" and closed and int(closed[-1][0]) + 28 * 1440 * MINUTE_MS > server_ms:
            closed = closed[:-1]
        return pl.DataFrame(
            {
                "ts": [int(r[0]) * 1_000_000 for r in closed],
                "symbol": [symbol] * len(closed),
                "interval": [label] * len(closed),
                "open": [float(r[1]) for r in closed],
                "high": [float(r[2]) for r in closed],
                "low": [float(r[3]) for r in closed],
                "close": [float(r[4]) for r in closed],
                "volume": [float(r[5]) for r in closed],
                "turnover": [float(r[6]) for r in closed],
            },
            schema={
                "ts": pl.Int64,
                "symbol": pl.String,
                "interval": pl.String,
                **{c: pl.Float64 for c in ("open", "high", "low", "close", "volume", "turnover")},
            },
        )


# ---------------------------------------------------------------------------------------------------- WebSocket


@dataclass
class Recording:
    """A recording in progress: its data messages go to `sink`, one per line, as they arrive (a day of an ob200
    feed is gigabytes, and whatever came before a network give-up must survive it)."""

    sink: BinaryIO
    messages: int = 0
    pongs: int = 0
    acks: int = 0
    reconnects: int = 0
    #: Reconnects since the last data message: the recorder gives up when these pass its limit.
    failing: int = 0
    on_message: Callable[[Recording], None] | None = None

    def keep(self, data: bytes) -> None:
        # Raw newlines in valid JSON are whitespace between tokens (inside strings they are escaped): one line each.
        self.sink.write(data.replace(b"\n", b" ") + b"\n")
        self.messages += 1
        self.failing = 0
        if self.on_message is not None:
            self.on_message(self)


def topics_for(symbols: Sequence[str], depth: int) -> list[str]:
    return [t for s in symbols for t in (f"orderbook.{depth}.{s}", f"publicTrade.{s}")]


class _Dropped(Exception):
    """The socket closed or went silent before the end of the recording; the caller reconnects."""


async def _session(
    url: str,
    category: str,
    topics: list[str],
    deadline: float,
    ping_seconds: float,
    open_timeout: float,
    out: Recording,
) -> None:
    """One connection: subscribe (spot in batches of 10 args), ping, keep data messages until `deadline`."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    batch = SPOT_ARGS_PER_SUBSCRIBE if category == "spot" else len(topics)
    loop = asyncio.get_running_loop()
    async with connect(url, open_timeout=open_timeout, ping_interval=None, max_size=2**24) as socket:
        try:
            for n, first in enumerate(range(0, len(topics), batch)):
                args = topics[first : first + batch]
                await socket.send(json.dumps({"req_id": f"apexctl-sub-{n}", "op": "subscribe", "args": args}))
            next_ping = loop.time() + ping_seconds
            # A silent socket is a dead one (pybit#13, bybit-java-api#47): nothing for two ping periods -> reconnect.
            last_heard = loop.time()
            while (now := loop.time()) < deadline:
                if now - last_heard > 2 * ping_seconds:
                    raise _Dropped(f"no message for {now - last_heard:.0f} s")
                if now >= next_ping:
                    await socket.send(json.dumps({"req_id": "apexctl-ping", "op": "ping"}))
                    next_ping = now + ping_seconds
                    out.sink.flush()  # a killed recorder loses at most one ping period
                try:
                    raw = await asyncio.wait_for(socket.recv(), timeout=max(min(deadline, next_ping) - now, 0.001))
                except TimeoutError:
                    continue
                last_heard = loop.time()
                data = raw.encode() if isinstance(raw, str) else raw
                if b'"topic"' in data:
                    out.keep(data)
                    continue
                reply = json.loads(data)
                if reply.get("ret_msg") == "pong" or reply.get("op") == "pong":
                    out.pongs += 1
                elif reply.get("op") == "subscribe" or "success" in reply:
                    if reply.get("success") is False:
                        raise RequestRefused(f"{url}: subscribe to {', '.join(topics)} refused: {reply.get('ret_msg')}")
                    out.acks += 1
        except ConnectionClosed as exc:
            raise _Dropped(str(exc)) from None


async def _record(
    url: str,
    category: str,
    topics: list[str],
    duration: float,
    ping_seconds: float,
    open_timeout: float,
    max_reconnects: int,
    out: Recording,
) -> None:
    """Records until the duration is over; a dropped socket is reopened and resubscribed (its snapshot rebases).
    Only reconnects in a row count against `max_reconnects`: a day-long recording outlives many routine drops."""
    from websockets.exceptions import InvalidHandshake, InvalidURI

    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    while True:
        try:
            await _session(url, category, topics, deadline, ping_seconds, open_timeout, out)
            return
        except _Dropped as exc:
            problem = f"connection dropped ({exc})"
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            problem = f"cannot connect: {exc}"
        except InvalidURI as exc:
            raise UsageError(f"{url}: {exc}") from None
        if out.failing >= max_reconnects or loop.time() >= deadline:
            raise NetworkError(f"{url}: {problem}; gave up after {out.failing} reconnects in a row")
        out.reconnects += 1
        out.failing += 1
        await asyncio.sleep(min(0.5 * 2 ** (out.failing - 1), 5.0))


def record_public(
    url: str,
    category: str,
    symbols: Sequence[str],
    out: Recording,
    *,
    depth: int,
    duration: float,
    ping_seconds: float = PING_SECONDS,
    open_timeout: float = 10.0,
    max_reconnects: int = 3,
) -> Recording:
    """Subscribes orderbook.{depth}.{symbol} and publicTrade.{symbol} and writes every data message of `duration`
    s to `out.sink`, one per line (what `fetch --source file` reads). `out` holds the counts, also when this raises."""
    if depth not in DEPTHS:
        raise UsageError(f"--depth {depth}: Bybit serves {', '.join(map(str, DEPTHS))} for {category}")
    topics = topics_for(symbols, depth)
    try:
        asyncio.run(_record(url, category, topics, duration, ping_seconds, open_timeout, max_reconnects, out))
    finally:
        out.sink.flush()
    return out
