"""Benchmark: the live engine's tick-to-order latency on the local venue (60x), next to a pybit client in the same run.

apex-nexus trades six slots (the end-to-end test's bundles) for `--seconds`; its status file gives two histograms:
tick-to-order (frame received by the WebSocket supervisor -> the order request handed to the REST client, including
the queue, the sync of the intent to disk and the task hand-off) and the engine's own path (frame received -> order
staged: queue, book, features, GP, IEL, rule; no disk, no network). The baseline is the leanest Python client a
user could write: websocket-client on the same venue, at each bar boundary one pybit market order, timed from the
frame's callback to the moment pybit hands the signed request to `requests` (no features, no model, no ledger).
It also prints the CPU time the engine process used over its run (user + system, all its threads): on 2 cores a
busy engine thread takes time from the venue and from the engine's own loop.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import websocket
from common import arguments
from pybit import unified_trading

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from apexctl import _ort  # noqa: E402
from apexctl.forge.trade import find_binary  # noqa: E402
from tests.e2e import test_trade  # noqa: E402  (the end-to-end test's bundles and config)
from tests.support.venue_helpers import running_venue  # noqa: E402


def quantiles(values_us: list[float]) -> str:
    ordered = sorted(values_us)
    if not ordered:
        return "no samples"
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {at(0.5):9.1f} us  p99 {at(0.99):9.1f} us  ({len(ordered)} orders)"


def engine_run(root: Path, venue_ready: Path, seconds: float) -> dict:
    bundles = {
        (symbol, slot): test_trade.make_bundle(root, symbol, slot, seed)
        for seed, (symbol, slot) in enumerate((s, k) for s in test_trade.SYMBOLS for k in ("a", "b"))
    }
    config = test_trade.write_config(root / "nexus.toml", bundles)
    _ort.use_wheel_library()
    out = root / "run"
    command = [str(find_binary()), "--config", str(config), "--venue-ready", str(venue_ready), "--out", str(out)]
    command += ["--duration", f"{seconds:g}s"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    status = json.loads((out / "status.json").read_text())
    # Only the engine is waited for in between (the venue runs on): the difference is the engine's CPU time.
    status["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return status


def baseline_run(venue: dict, seconds: float) -> list[float]:
    account = test_trade.ACCOUNTS[0]
    session = unified_trading.HTTP(testnet=False, api_key=account["api_key"], api_secret=account["api_secret"])
    session.endpoint = venue["rest"]
    latencies: list[float] = []
    frame_at = [0.0]
    send = session.client.send

    def timed_send(request, **kwargs):
        latencies.append((time.perf_counter() - frame_at[0]) * 1e6)
        return send(request, **kwargs)

    session.client.send = timed_send
    state = {"minute": None, "side": "Buy"}

    def on_message(app, text):
        frame_at[0] = time.perf_counter()
        message = json.loads(text)
        if not message.get("topic", "").startswith("publicTrade."):
            return
        minute = message["data"][-1]["T"] // 60_000
        if state["minute"] is not None and minute != state["minute"]:
            session.place_order(
                category="linear", symbol="BTCUSDT", side=state["side"], orderType="Market", qty="0.001"
            )
            state["side"] = "Sell" if state["side"] == "Buy" else "Buy"
        state["minute"] = minute

    def on_open(app):
        app.send(json.dumps({"op": "subscribe", "args": ["publicTrade.BTCUSDT", "orderbook.50.BTCUSDT"]}))

    app = websocket.WebSocketApp(venue["ws_public"], on_message=on_message, on_open=on_open)
    thread = threading.Thread(target=app.run_forever, daemon=True)
    thread.start()
    time.sleep(seconds)
    app.close()
    thread.join(timeout=5)
    return latencies


def main() -> None:
    parser = arguments(__doc__, seed=None)
    parser.add_argument("--seconds", type=float, default=20.0, help="wall-clock seconds per side (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-nexus-") as tmp:
        root = Path(tmp)
        venue_args = ("--speed", "60", "--seed", "4")
        with running_venue(root, *venue_args, accounts=test_trade.venue_accounts()) as venue:
            status = engine_run(root, root / "ready.json", args.seconds)
            baseline = baseline_run(venue, args.seconds)
    total, work = status["latency_us"], status["decision_us"]
    print(f"tick-to-order on the local venue (60x, six slots, {args.seconds:g} s each side)")
    print(
        f"  apex-nexus, frame -> order request : p50 {total['p50']:9.1f} us  p99 {total['p99']:9.1f} us  "
        f"({total['count']} orders)"
    )
    print(f"  apex-nexus, frame -> order staged  : p50 {work['p50']:9.1f} us  p99 {work['p99']:9.1f} us")
    # The staged figure's first part: the bar-closing frame's wait behind the frames the engine took up before it.
    queue = status["queue_us"]
    print(f"    of which queued before taken up  : p50 {queue['p50']:9.1f} us  p99 {queue['p99']:9.1f} us")
    print(f"  apex-nexus, CPU time over its run  : {status['cpu_s']:9.2f} s  ({args.seconds:g} s wall)")
    print(f"  pybit client, frame -> request     : {quantiles(baseline)}")
    if baseline and total["count"]:
        ordered = sorted(baseline)
        print(f"  ratio (p50, baseline / apex-nexus) : {ordered[len(ordered) // 2] / total['p50']:9.2f}x")


if __name__ == "__main__":
    main()
