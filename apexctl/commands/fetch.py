"""`apexctl fetch`: parse options into a FileFetch/BybitFetch config and call the Forge."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from apexctl.commands import _options
from apexctl.errors import UsageError
from apexctl.forge import bybit_api, outputs
from apexctl.forge.durations import run_seconds
from apexctl.forge.fetch import BybitFetch, FileFetch, fetch_bybit, fetch_files, fetch_sim
from apexctl.forge.sim import CADENCE_MS, DEFAULT_CADENCE_MS, DEFAULT_DEPTH, DEFAULT_SYMBOLS, MarketSim


class Source(StrEnum):
    file = "file"
    bybit = "bybit"
    sim = "sim"


class Kind(StrEnum):
    book = "book"
    trades = "trades"


def _one_symbol_option(values: list[str] | None) -> str | None:
    """The value of --symbol/--symbols (one option, two spellings), refused when given more than once: the last one
    was taken, so `--symbols BTCUSDT --symbol ETHUSDT` fetched ETHUSDT alone."""
    if not values:
        return None
    if len(values) > 1:
        raise UsageError(
            f"--symbol/--symbols given {len(values)} times ({', '.join(map(repr, values))}): they are one option and "
            f"only the last would count; give it once, comma separated (--symbols {','.join(values)})"
        )
    return values[0]


def fetch(
    ctx: typer.Context,
    output: Annotated[
        str,
        _options.output(
            "file source: the Parquet table ('-' = stdout); the parsed rows wait in a hidden scratch folder beside "
            "it while the inputs are merged (about the compressed inputs' size). bybit and sim sources: a folder of "
            "tables.",
            text=True,
        ),
    ],
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="--source file: Bybit trade CSV(.gz), order-book archive (*_ob200.data.zip, .data, .jsonl) or '-'."
        ),
    ] = None,
    source: Annotated[Source, typer.Option("--source", help="Where the data comes from.")] = Source.file,
    kind: Annotated[
        Kind | None, typer.Option("--kind", help="file source: the table to keep when inputs hold both.")
    ] = None,
    symbol_given: Annotated[
        list[str] | None,  # a list only to see it given twice (click keeps the last value silently)
        typer.Option(
            "--symbol",
            "--symbols",
            metavar="<str>",
            show_default=False,
            help="bybit/sim: symbols, comma separated (BTCUSDT,ETHUSDT); file: symbol of a spot CSV. "
            "sim default: BTCUSDT,ETHUSDT,SOLUSDT.",
        ),
    ] = None,
    category: Annotated[str, typer.Option("--category", help="bybit: spot, linear or inverse.")] = "linear",
    start: Annotated[
        str | None, typer.Option("--start", help="bybit klines: first bar, ISO time (UTC) or epoch ms.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="bybit klines: last bar start, ISO time or epoch ms (default now).")
    ] = None,
    interval: Annotated[
        str, typer.Option("--interval", help="bybit klines: 1 3 5 15 30 60 120 240 360 720 D W M.")
    ] = "1",
    record_ws: Annotated[
        bool,
        typer.Option(
            "--record-ws",
            help="bybit: record the public order book and trades. Messages go to disk as they arrive; a recording "
            "that cannot finish (network gone, Ctrl-C) is kept in DIR.recording.jsonl, for --source file.",
        ),
    ] = False,
    duration: Annotated[
        str,
        typer.Option(
            "--duration",
            help="bybit --record-ws: how long to record, in seconds or with a unit ms, s, m, h or d (90, 1.5s, 10m), "
            "at most 1d.",
        ),
    ] = "60s",
    depth: Annotated[
        int, typer.Option("--depth", help="bybit --record-ws and sim: order-book depth. Accepts 1, 50, 200 or 1000.")
    ] = DEFAULT_DEPTH,
    testnet: Annotated[bool, typer.Option("--testnet", help="bybit: use the testnet hosts.")] = False,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="bybit: REST host, e.g. https://api.bytick.com.")
    ] = None,
    ws_url: Annotated[str | None, typer.Option("--ws-url", help="bybit: full public WebSocket URL.")] = None,
    max_attempts: Annotated[
        int, _options.ranged(bybit_api.ATTEMPTS, "--max-attempts", help="bybit: attempts per REST call.")
    ] = 5,
    dsg: Annotated[
        str | None, _options.dsg("sim: DSG JSON document of the agent populations (default built in).")
    ] = None,
    seed: Annotated[int, _options.seed("sim: random seed; same seed and DSG, same tables.")] = _options.SEED_DEFAULT,
    hours: Annotated[float, _options.hours("sim: simulated hours per symbol.")] = 1.0,
    cadence_ms: Annotated[
        int, _options.ranged(CADENCE_MS, "--cadence-ms", help="sim: order-book publication interval, milliseconds.")
    ] = DEFAULT_CADENCE_MS,
    force: Annotated[bool, _options.force("bybit and sim sources: replace a non-empty output folder.")] = False,
) -> None:
    """Market data into tables: Bybit archive files, the Bybit V5 API, or the simulator (the pipeline's default)."""
    symbol = _one_symbol_option(symbol_given)
    if source is Source.sim:
        if paths or start or end or record_ws or testnet or base_url or ws_url:
            raise UsageError("--source sim takes no PATH and none of the bybit options; see --dsg/--seed/--hours")
        if output == "-":
            raise UsageError("-o -: --source sim writes a folder of tables (book, trades, bars); give a folder")
        outputs.check([outputs.OutFolder(output, replace=force)], [dsg])
        symbols = [
            s.strip().upper() for s in (",".join(DEFAULT_SYMBOLS) if symbol is None else symbol).split(",") if s.strip()
        ]
        config = MarketSim(symbols=symbols, dsg_path=dsg, seed=seed, hours=hours, depth=depth, cadence_ms=cadence_ms)
        fetch_sim(config, output, force=force)
        return
    if source is Source.file:
        if start or end or record_ws or testnet or base_url or ws_url:
            raise UsageError("--start/--end/--record-ws/--testnet/--base-url/--ws-url apply to --source bybit only")
        if force:
            raise UsageError("--force applies to the folder outputs of --source bybit/sim; a file is replaced anyway")
        others = _options.given(ctx, exclude=("source", "paths", "output", "kind", "symbol_given"))
        if others:
            raise UsageError(
                f"{', '.join(others)}: not used by --source file (it reads the files as they are); drop them"
            )
        outputs.check([outputs.OutFile(output)], list(paths or []))
        fetch_files(FileFetch(list(paths or []), output, kind.value if kind else None, symbol))
        return
    if paths:
        raise UsageError(f"--source bybit takes no PATH arguments (got {', '.join(paths)})")
    if not symbol or not [s for s in symbol.split(",") if s.strip()]:
        raise UsageError("--source bybit needs --symbol (e.g. BTCUSDT or BTCUSDT,ETHUSDT)")
    if category not in bybit_api.CATEGORIES:
        raise UsageError(f"--category '{category}': expected one of {', '.join(bybit_api.CATEGORIES)}")
    if depth not in bybit_api.DEPTHS:
        raise UsageError(f"--depth {depth}: Bybit serves {', '.join(map(str, bybit_api.DEPTHS))} for {category}")
    if output == "-":
        raise UsageError("-o -: --source bybit writes a folder of tables (bars, book, trades); give a folder")
    outputs.check([outputs.OutFolder(output, replace=force)], [])
    rest = bybit_api.check_url(base_url, "--base-url", ("http", "https")) if base_url else None
    rest = rest or (bybit_api.TESTNET_REST if testnet else bybit_api.MAINNET_REST)
    socket = bybit_api.check_url(ws_url, "--ws-url", ("ws", "wss")) if ws_url else None
    socket = socket or f"{bybit_api.TESTNET_WS if testnet else bybit_api.MAINNET_WS}/v5/public/{category}"
    fetch_bybit(
        BybitFetch(
            symbols=[s.strip().upper() for s in symbol.split(",") if s.strip()],
            category=category,
            output=output,
            start_ms=bybit_api.parse_time_ms(start, "--start") if start else None,
            end_ms=bybit_api.parse_time_ms(end, "--end") if end else None,
            interval=interval,
            record_ws=record_ws,
            duration=run_seconds(duration, "--duration", bybit_api.LONGEST_RECORDING_NS),
            depth=depth,
            base_url=rest,
            ws_url=socket,
            max_attempts=max_attempts,
        ),
        force=force,
    )
