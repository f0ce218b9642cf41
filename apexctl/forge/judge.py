"""`apexctl judge`: reads live ledgers (read-only, while an engine may still write them) and judges each slot and model
against the Forge's backtest: equity and drawdown, time to target live vs. the bundle's held-out estimate, deaths,
swaps, capital weights, realized slippage and fees vs. the backtest's cost model, and the recycling requests no swap
has answered yet. Writes one apex.judgment JSON document and a report folder (PNGs, one self-contained HTML page, the
pending requests under recycle/), each published atomically.

The backtest's assumptions come from `BacktestParams` (the defaults apex-backtest and evolve use): a fill pays
`fee` of its notional (maker or taker alike) and slips `spread_bps / 2 + impact * notional / depth * 1e4` bps from the
mid. Live slippage is measured from `orders.mid` (the mid the engine priced the order off: for a stop or take leg,
the mid when the bracket triggered), signed so that a worse price is positive.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import html
import itertools
import math
import re
import shutil
import sqlite3
import statistics
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from apexctl import __version__
from apexctl.console import safe
from apexctl.errors import InputError, SchemaError, UsageError, first_line
from apexctl.forge import io, outputs
from apexctl.forge.backtest import BacktestParams
from apexctl.schemas.json_schema import validation_error

SCHEMA = "apex.judgment"
VERSION = 1
LEDGER_SCHEMA = "apex.ledger"
#: Ledger versions this judge reads (a version-1 ledger has no Crucible tables: they are reported empty).
LEDGER_VERSIONS = (1, 2)
RECYCLE_SCHEMA = "apex.recycle"
SQLITE_HEADER = b"SQLite format 3\x00"
#: Largest recycling request read (a GP tree of 4096 nodes is well under a megabyte).
REQUEST_MAX_BYTES = 8 << 20

#: Exit statuses of `apexctl judge` (documented in its --help and the README).
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_LOCKED = 3
EXIT_PENDING = 4


# ------------------------------------------------------------------------------------------------- reading a ledger


@dataclass
class Ledger:
    """The rows of one ledger `judge` uses, read in one read transaction (a consistent snapshot of a live ledger)."""

    path: Path
    version: int
    runs: list[dict[str, Any]]
    slots: list[dict[str, Any]]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    _by_slot: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for table, rows in self.tables.items():
            for row in rows:
                if "slot" in row:
                    self._by_slot.setdefault((table, row["slot"]), []).append(row)

    def rows(self, table: str, slot: str | None = None) -> list[dict[str, Any]]:
        """A table's rows in their order, all or one slot's."""
        return self.tables.get(table, []) if slot is None else self._by_slot.get((table, slot), [])

    @functools.cached_property
    def orders(self) -> dict[str, dict[str, Any]]:
        """The orders by orderLinkId."""
        return {o["order_link_id"]: o for o in self.rows("orders")}


@dataclass(frozen=True)
class Kind:
    """What a ledger column must hold. SQLite is dynamically typed (a REAL column keeps text it cannot convert, any
    column a blob, and a literal like 9e999 stores an infinity), so every value read is checked against its column's
    kind: the measures then never meet a value they cannot compute with."""

    what: str
    types: tuple[type, ...]
    nullable: bool = False
    choices: tuple[str, ...] = ()
    limit: float = math.inf

    @property
    def or_null(self) -> Kind:
        return replace(self, nullable=True)

    def of(self, *choices: str) -> Kind:
        """The same kind restricted to these values (text the judge branches on, or the judgment's enums)."""
        return replace(self, choices=choices)

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if type(value) not in self.types:  # type(), not isinstance(): a bool is no ledger integer
            return False
        if isinstance(value, int | float):
            return abs(value) <= self.limit  # False for NaN, which compares false to everything
        return not self.choices or value in self.choices

    def describe(self) -> str:
        what = f"one of {', '.join(repr(c) for c in self.choices)}" if self.choices else self.what
        return f"{what} or NULL" if self.nullable else what


TEXT = Kind("text", (str,))
#: Timestamps (ns), ids and counts.
INTEGER = Kind("an integer", (int,))
#: Money, quantities, prices, weights: SQLite hands back an int for a whole number stored without REAL affinity. No
#: amount, price or quantity comes near 1e30; a larger value is corrupt, and the measures and plots would overflow on
#: it (matplotlib fails on an axis range near 1e308).
NUMBER = Kind("a finite number between -1e30 and 1e30", (int, float), limit=1e30)

#: Columns read per table, in order, with what each must hold (the types and NOT NULLs of the DDL in
#: rs/apex-nexus/src/ledger.rs); a column a version-1 ledger lacks reads as NULL, a table it lacks as empty.
COLUMNS: dict[str, dict[str, Kind]] = {
    "runs": {
        "run_id": INTEGER, "venue": TEXT, "started_local": INTEGER, "ended_local": INTEGER.or_null,
        "exit": TEXT.or_null,
    },
    "slots": {
        "slot": TEXT, "symbol": TEXT, "account": TEXT, "capital": NUMBER, "bundle": TEXT, "bundle_sha256": TEXT,
        "model": TEXT, "state": TEXT.of("live", "dead").or_null,
    },
    "equity": {
        "slot": TEXT, "equity": NUMBER, "position": NUMBER, "ts_exchange": INTEGER.or_null,
        "ts_local": INTEGER.or_null,
    },
    "decisions": {
        "slot": TEXT, "bar_ts": INTEGER, "equity": NUMBER, "model_id": TEXT.or_null, "ts_local": INTEGER.or_null,
    },
    "fills": {
        "slot": TEXT, "order_link_id": TEXT, "side": TEXT.of("Buy", "Sell"), "price": NUMBER, "qty": NUMBER,
        "fee": NUMBER, "is_maker": INTEGER.or_null,
    },
    "orders": {"order_link_id": TEXT, "tactic": TEXT, "purpose": TEXT, "mid": NUMBER.or_null},
    "weights": {
        "slot": TEXT, "weight": NUMBER, "capital": NUMBER, "base": NUMBER.or_null, "ts_exchange": INTEGER.or_null,
        "ts_local": INTEGER.or_null,
    },
    "models": {
        "slot": TEXT, "model_id": TEXT, "bundle": TEXT, "label": TEXT, "role": TEXT, "detail": TEXT.or_null,
        "ts_exchange": INTEGER.or_null,
    },
    "shadow_equity": {
        "slot": TEXT, "model_id": TEXT, "equity": NUMBER, "decisions": INTEGER, "ts_exchange": INTEGER.or_null,
    },
    "swaps": {
        "id": INTEGER, "slot": TEXT, "from_model": TEXT.or_null, "to_model": TEXT, "reason": TEXT, "position": TEXT,
        "ts_exchange": INTEGER.or_null, "ts_local": INTEGER,
    },
    "deaths": {
        "id": INTEGER, "slot": TEXT, "symbol": TEXT, "model_id": TEXT.or_null, "reason": TEXT, "equity": NUMBER,
        "threshold": NUMBER, "request": TEXT.or_null, "ts_exchange": INTEGER.or_null, "ts_local": INTEGER,
    },
}  # fmt: skip
#: Row order of each table (its insertion order: ids, or rowid where the table has no id).
ORDER = {"decisions": "decision_id", "equity": "id", "weights": "id", "shadow_equity": "id", "swaps": "id"}


def _connect(path: Path) -> sqlite3.Connection:
    """A read-only connection (SQLite URI `mode=ro`: never creates or changes the file; a WAL ledger an engine is
    writing is read through its shared memory, so a judge sees the last committed bar)."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=10.0)


def read_ledger(path: str | Path) -> Ledger:
    """Reads a ledger; InputError/SchemaError (one line naming the file) for a missing file, a file that is not SQLite
    or not a ledger, a corrupt one, or a ledger of a version this judge does not read."""
    path = Path(path)
    name = safe(path)
    if not path.is_file():
        raise InputError(f"{name}: no such ledger file" if not path.exists() else f"{name}: not a file")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise InputError(f"{name}: cannot read the ledger ({exc.strerror or first_line(exc)})") from None
    if header != SQLITE_HEADER:
        raise SchemaError(f"{name}: not a SQLite file, so not an {LEDGER_SCHEMA} ledger")
    try:
        db = _connect(path)
    except sqlite3.Error as exc:
        raise InputError(f"{name}: cannot open the ledger ({first_line(exc)})") from None
    try:
        with contextlib.closing(db):
            db.execute("BEGIN")  # one snapshot for every query below, however the engine writes meanwhile
            return _read(db, path, name)
    except sqlite3.Error as exc:
        raise InputError(f"{name}: unreadable ledger ({first_line(exc)})") from None


def _read(db: sqlite3.Connection, path: Path, name: str) -> Ledger:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        raise SchemaError(f"{name}: a SQLite file but not an {LEDGER_SCHEMA} ledger (no meta table)")
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("schema") != LEDGER_SCHEMA:
        raise SchemaError(f"{name}: not an {LEDGER_SCHEMA} ledger (meta schema {safe(meta.get('schema'))!r})")
    if "version" not in meta:
        raise SchemaError(f"{name}: an {LEDGER_SCHEMA} ledger without a version (no version key in its meta table)")
    raw = meta["version"]
    try:
        version = int(raw) if isinstance(raw, int | str) else None  # a REAL, a blob or NULL is no version
    except ValueError:
        version = None
    if version is None:
        raise SchemaError(f"{name}: ledger version {_shown(raw)} is not a number")
    if version not in LEDGER_VERSIONS:
        newer = " (newer than this apexctl; update it)" if version > max(LEDGER_VERSIONS) else ""
        raise SchemaError(
            f"{name}: {LEDGER_SCHEMA} version {version}{newer}; this judge reads versions "
            f"{min(LEDGER_VERSIONS)} to {max(LEDGER_VERSIONS)}"
        )
    for required in ("slots", "equity", "decisions", "fills", "orders"):
        if required not in tables:
            raise SchemaError(f"{name}: {LEDGER_SCHEMA} version {version} without its {required} table")
    read: dict[str, list[dict[str, Any]]] = {}
    for table, columns in COLUMNS.items():
        read[table] = _rows(db, name, table, columns) if table in tables else []
    return Ledger(path, version, read.pop("runs"), read.pop("slots"), read)


def _rows(db: sqlite3.Connection, name: str, table: str, columns: dict[str, Kind]) -> list[dict[str, Any]]:
    """A table's rows in their order, every value checked against its column's kind: the one place ledger values
    enter the judge, so a wrong one is a SchemaError naming the table, the row (its rowid) and the column, raised
    before anything is computed or written."""
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    select = ", ".join(c if c in present else f"NULL AS {c}" for c in columns)
    order = ORDER.get(table, "rowid")
    cursor = db.execute(f"SELECT rowid, {select} FROM {table} ORDER BY {order}")  # the names are ours, never input
    checks = list(columns.items())
    rows = []
    for rowid, *values in cursor:
        for (column, kind), value in zip(checks, values, strict=True):
            if not kind.accepts(value):
                if column not in present:
                    raise SchemaError(f"{name}: table {table} has rows but no {column} column")
                raise SchemaError(
                    f"{name}: table {table}, row {rowid}: {column} must be {kind.describe()}, got {_shown(value)}"
                )
        rows.append(dict(zip(columns, values, strict=True)))
    return rows


def _shown(value: Any) -> str:
    """A ledger value as a message quotes it: NULL, a blob's size, a number, or text (escaped, cut at 40
    characters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"a blob of {len(value)} byte(s)"
    if isinstance(value, str):
        text = safe(value)
        return repr(text if len(text) <= 40 else text[:40] + "...")
    return repr(value)


# ------------------------------------------------------------------------------------------------- measures


def iso(ns: int | None) -> str | None:
    """UTC ISO 8601 of a nanosecond timestamp."""
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def max_drawdown(values: Sequence[float], start: float | None = None) -> float:
    """Largest fall from a running peak, as a share of the peak (0 for a curve that never falls); `start` is the
    first peak (the starting capital, as the backtest counts it)."""
    peak = start if start is not None and start > 0 else -math.inf
    worst = 0.0
    for value in values:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, 1.0 - value / peak)
    return worst


def log_growth(start: float, end: float) -> float | None:
    """ln(end / start); None when either is not positive (a ruined slot has no finite growth). A difference of logs:
    the quotient of a tiny and a huge amount would underflow to 0."""
    return math.log(end) - math.log(start) if start > 0 and end > 0 else None


def bar_seconds(times: Sequence[int]) -> float | None:
    """The bar length of a series of bar opens (the median step, in seconds)."""
    steps = [(b - a) / 1e9 for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(steps) if steps else None


def time_to_target(times: Sequence[int], values: Sequence[float], target: float, bar: float | None) -> dict[str, Any]:
    """Live TTT as the backtest measures it: from the first bar's open to the end of the first bar whose closing
    equity is at or above `target` (its open plus one bar length); null and the share of the target reached when
    never."""
    best = max(values, default=0.0)
    fraction = best / target if target > 0 else None
    for when, value in zip(times, values, strict=True):
        if value >= target:
            return {"reached": True, "seconds": (when - times[0]) / 1e9 + (bar or 0.0), "fraction_reached": fraction}
    return {"reached": False, "seconds": None, "fraction_reached": fraction}


def curve(times: Sequence[int], values: Sequence[float], start: float, final: float | None = None) -> dict[str, Any]:
    """Summary of an equity curve that starts from `start`. `final`, when given, is the money held at the end (the
    raw equity) where `values` are the transfer-free equity (see `trading_equity`); growth, drawdown, max and min
    are of `values`."""
    last = values[-1] if values else start
    return {
        "start": start,
        "final": last if final is None else final,
        "max": max([start, *values]),
        "min": min([start, *values]),
        "max_drawdown": max_drawdown(values, start),
        "log_growth": log_growth(start, last),
        "points": len(values),
        "first": iso(times[0]) if times else None,
        "last": iso(times[-1]) if times else None,
    }


@dataclass(frozen=True)
class Transfer:
    """Capital the CWO moved into a slot (negative: out of it), from a `weights` row."""

    amount: float
    ts_exchange: int | None
    ts_local: int | None


def transfers(ledger: Ledger, slot: dict[str, Any]) -> list[Transfer]:
    """The capital moved into the slot by each `weights` row: the change of `base` (the slot's accounting capital
    after the row) from the slot's previous row, the first row's against the configured capital. The engine moves
    capital only so (a reweight, a restart's configured split), so this is every transfer; a row without `base` (a
    version-1 ledger) moves nothing known, and is skipped."""
    previous = float(slot["capital"])
    moved = []
    for row in ledger.rows("weights", slot["slot"]):
        if row["base"] is None:
            continue
        amount, previous = row["base"] - previous, float(row["base"])
        if amount != 0.0:
            moved.append(Transfer(amount, row["ts_exchange"], row["ts_local"]))
    return moved


def _lands(move: Transfer, points: Sequence[tuple[int | None, int | None, float]], bar: float | None) -> int:
    """The index of the first point (ts_exchange, ts_local, equity) whose equity includes the transfer (len(points)
    when none does). By the engine's clock (ts_local) when the ledger has it: the reweight is written before the
    bar's equity. Else by market time: a reweight at time R runs at the close of the bar that closes at R, and that
    bar's point (its open R - bar) already holds the moved capital; a point with no bar time (the stop snapshot)
    comes after every reweight; the start's configured split (no market time) before every point."""
    step = (bar or 0.0) * 1e9
    for index, (ts_exchange, ts_local, _) in enumerate(points):
        if move.ts_local is not None and ts_local is not None:
            if ts_local >= move.ts_local:
                return index
        elif move.ts_exchange is None or ts_exchange is None or ts_exchange + step >= move.ts_exchange:
            return index
    return len(points)


def trading_equity(
    points: Sequence[tuple[int | None, int | None, float]], moves: Sequence[Transfer], start: float, bar: float | None
) -> list[float]:
    """The slot's equity with the capital the CWO moved taken out (a time-weighted index in units of `start`, the
    configured capital): each step's return is E_t / (E_t-1 + T), T the capital moved in between the two points (the
    first point's step runs from `start`), so growth, drawdown and TTT measure trading only. Without a transfer the
    values are the equity itself. A transfer that leaves the slot nothing to trade with (a dead slot giving its
    equity back) freezes the record where it was: that equity left by transfer, not by a loss."""
    incoming = [0.0] * (len(points) + 1)
    for move in moves:
        incoming[_lands(move, points, bar)] += move.amount
    values: list[float] = []
    anchor: tuple[float, float] | None = None  # (index, equity) at the last transfer: index = level * E / base
    frozen = False
    level, before = start, start
    for (_, _, equity), moved in zip(points, incoming, strict=False):
        if moved:
            base = before + moved
            frozen = base <= 0 or (moved < 0 and equity <= 1e-9 * -moved)
            anchor = None if frozen else (level, base)
        if frozen:
            value = level
        elif anchor is None:
            value = equity
        else:
            value = anchor[0] * (equity / anchor[1])
        values.append(value)
        level, before = value, equity
    return values


@dataclass(frozen=True)
class Assumptions:
    """The backtest's target and cost model (BacktestParams' defaults: what apex-backtest scores with)."""

    target_multiple: float
    fee: float
    spread_bps: float
    impact: float
    depth: float

    @classmethod
    def of(cls, params: BacktestParams) -> Assumptions:
        return cls(params.target_multiple, params.fee, params.spread_bps, params.impact, params.depth)

    def slippage_bps(self, notional: float) -> float:
        return self.spread_bps / 2.0 + self.impact * notional / self.depth * 1e4

    def describe(self) -> dict[str, Any]:
        return asdict(self) | {
            "source": "apexctl.forge.backtest.BacktestParams (the apex-backtest parameters evolve scores with)",
            "slippage_model": "spread_bps / 2 + impact * notional / depth * 1e4 bps from the mid, against the trader",
            "fee_model": "fee * notional per fill, maker and taker alike",
        }


def slippage_bps(side: str, price: float, mid: float) -> float:
    """Fill price against the mid in bps, positive when worse for the trader (a buy above, a sell below)."""
    sign = 1.0 if side == "Buy" else -1.0
    return sign * (price - mid) / mid * 1e4


def _cost_group(rows: list[tuple[float, float, float]]) -> dict[str, Any]:
    """(realized bps, notional, assumed bps) rows -> counts and notional-weighted means."""
    notional = sum(r[1] for r in rows)
    weighted = (lambda i: sum(r[i] * r[1] for r in rows) / notional) if notional > 0 else (lambda i: None)
    return {
        "fills": len(rows),
        "notional": notional,
        "realized_bps": weighted(0),
        "realized_median_bps": statistics.median(r[0] for r in rows) if rows else None,
        "assumed_bps": weighted(2),
    }


def costs(ledger: Ledger, slot: str, assume: Assumptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """Realized slippage (by tactic and by purpose) and fees (maker vs taker) of a slot's fills."""
    orders = ledger.orders
    by_tactic: dict[str, list[tuple[float, float, float]]] = {}
    by_purpose: dict[str, list[tuple[float, float, float]]] = {}
    fees: dict[str, list[float]] = {"maker": [0, 0.0, 0.0], "taker": [0, 0.0, 0.0], "unknown": [0, 0.0, 0.0]}
    unpriced = 0
    for fill in ledger.rows("fills", slot):
        notional = abs(fill["price"] * fill["qty"])
        kind = {1: "maker", 0: "taker"}.get(fill["is_maker"], "unknown")
        fees[kind][0] += 1
        fees[kind][1] += notional
        fees[kind][2] += fill["fee"]
        order = orders.get(fill["order_link_id"])
        if order is None or order["mid"] is None or not order["mid"] > 0:
            unpriced += 1  # a version-1 order (no mid) or a fill of an order the ledger lacks
            continue
        row = (slippage_bps(fill["side"], fill["price"], order["mid"]), notional, assume.slippage_bps(notional))
        by_tactic.setdefault(order["tactic"], []).append(row)
        by_purpose.setdefault(order["purpose"], []).append(row)
    every = [r for rows in by_tactic.values() for r in rows]
    slippage = {
        "all": _cost_group(every),
        "by_tactic": {k: _cost_group(v) for k, v in sorted(by_tactic.items())},
        "by_purpose": {k: _cost_group(v) for k, v in sorted(by_purpose.items())},
        "fills_without_mid": unpriced,
    }
    fee_report: dict[str, Any] = {"assumed_rate": assume.fee}
    for kind, (count, notional, paid) in fees.items():
        if kind == "unknown" and not count:
            continue
        fee_report[kind] = {
            "fills": count,
            "notional": notional,
            "fees": paid,
            "rate": paid / notional if notional > 0 else None,
        }
    return slippage, fee_report


# ------------------------------------------------------------------------------------------------- the Forge's estimate


def _resolve(text: str, ledger: Path) -> Path:
    """A path the engine recorded: absolute as is; relative, against the run folder holding the ledger (the
    engine's --out), else the current folder."""
    path = Path(text)
    if path.is_absolute():
        return path
    beside = ledger.parent / path
    return beside if beside.exists() else path


def forge_estimate(bundle: str | None, model_id: str, ledger: Path) -> dict[str, Any]:
    """The held-out backtest TTT export recorded in the bundle's manifest (the signal model's
    `info.held_out.ttt_seconds`), or null with the reason. The manifest must still be the model's (its SHA-256 is
    the model id): a slot's folder refilled with a new bundle no longer describes the model it replaced."""
    from apexctl.forge.export import GP_MODEL, MANIFEST

    empty = {"seconds": None, "reached": None, "fitness": None, "source": None}
    if not bundle:
        return empty | {"note": "the ledger names no bundle for this model"}
    manifest_path = _resolve(bundle, ledger) / MANIFEST
    if not manifest_path.is_file():
        return empty | {"note": f"no bundle manifest at {manifest_path}"}
    if io.sha256_file(manifest_path) != model_id:
        return empty | {"note": f"{manifest_path} now holds another model (its SHA-256 is not the model id)"}
    try:
        manifest = io.read_json(manifest_path, "an apex.bundle manifest")
    except InputError as exc:
        return empty | {"note": str(exc)}
    models = manifest.get("models") if isinstance(manifest, dict) else None
    signal = next((m for m in models or [] if isinstance(m, dict) and m.get("name") == GP_MODEL), None)
    held = ((signal or {}).get("info") or {}).get("held_out")
    source = f"{manifest_path}: models[name={GP_MODEL}].info.held_out"
    if not isinstance(held, dict) or "ttt_seconds" not in held:
        return empty | {"note": f"{manifest_path}: the signal model records no held-out backtest TTT"}
    seconds = held.get("ttt_seconds")
    seconds = float(seconds) if isinstance(seconds, int | float) and math.isfinite(seconds) else None
    note = None if seconds is not None else "the held-out backtest never reached the target"
    return {
        "seconds": seconds,
        "reached": bool(held["reached"]) if isinstance(held.get("reached"), int | float | bool) else None,
        "fitness": held.get("fitness") if isinstance(held.get("fitness"), int | float) else None,
        "source": source,
        "note": note,
    }


# ------------------------------------------------------------------------------------------------- per slot and model


def _model_runs(decisions: list[dict[str, Any]], default: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """The slot's decisions cut into tenures: consecutive decisions by one model (a version-1 row names none: the
    slot's starting bundle decided it)."""
    runs: list[tuple[str, list[dict[str, Any]]]] = []
    for row in decisions:
        model = row["model_id"] or default
        if not runs or runs[-1][0] != model:
            runs.append((model, []))
        runs[-1][1].append(row)
    return runs


def judge_models(
    ledger: Ledger, slot: dict[str, Any], target: float, bar: float | None, moves: Sequence[Transfer] = ()
) -> list[dict[str, Any]]:
    """Per model of a slot: its live tenures (equity from its decisions, the capital the CWO moved taken out: see
    `trading_equity`), TTT against the target, the Forge's estimate, and its shadow record as a challenger."""
    name = slot["slot"]
    registered = {m["model_id"]: m for m in ledger.rows("models", name)}
    decisions = ledger.rows("decisions", name)
    points = [(r["bar_ts"], r["ts_local"], r["equity"]) for r in decisions]
    trading = trading_equity(points, moves, float(slot["capital"]), bar)
    decisions = [r | {"trading": t} for r, t in zip(decisions, trading, strict=True)]
    runs = _model_runs(decisions, slot["bundle_sha256"])
    shadows: dict[str, list[dict[str, Any]]] = {}
    for row in ledger.rows("shadow_equity", name):
        shadows.setdefault(row["model_id"], []).append(row)
    order = list(dict.fromkeys([m for m, _ in runs] + list(registered) + list(shadows)))
    judged = []
    for model_id in order:
        info = registered.get(model_id, {})
        times: list[int] = []
        values: list[float] = []
        final = 0.0
        growth: float | None = 0.0
        starts: list[float] = []
        previous = slot["capital"]
        for run_model, rows in runs:
            if run_model == model_id:
                starts.append(previous)
                times += [r["bar_ts"] for r in rows]
                values += [r["trading"] for r in rows]
                final = rows[-1]["equity"]
                step = log_growth(previous, rows[-1]["trading"])
                growth = growth + step if step is not None and growth is not None else None
            previous = rows[-1]["trading"]
        bundle = info.get("bundle") or (slot["bundle"] if model_id == slot["bundle_sha256"] else None)
        live = None
        if values:
            live = curve(times, values, starts[0], final) | {
                "decisions": len(values),
                "tenures": len(starts),
                "log_growth": growth,
                "ttt": time_to_target(times, values, target, bar),
            }
        shadow = None
        if model_id in shadows:
            rows = shadows[model_id]
            shadow_values = [r["equity"] for r in rows]
            shadow_times = [r["ts_exchange"] for r in rows if r["ts_exchange"] is not None]
            shadow = curve(shadow_times, shadow_values, shadow_values[0]) | {
                "decisions": max(int(r["decisions"]) for r in rows)
            }
        judged.append(
            {
                "model_id": model_id,
                "label": info.get("label"),
                "role": info.get("role") or ("champion" if model_id == slot["bundle_sha256"] else None),
                "detail": info.get("detail"),
                "bundle": bundle,
                "live": live,
                "shadow": shadow,
                "forge_estimate": forge_estimate(bundle, model_id, ledger.path),
            }
        )
    return judged


def _after(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether row `a` happened after row `b` (exchange time when both have it, else the engine's clock)."""
    if a["ts_exchange"] is not None and b["ts_exchange"] is not None:
        return a["ts_exchange"] > b["ts_exchange"]
    return a["ts_local"] > b["ts_local"]


def judge_slot(ledger: Ledger, slot: dict[str, Any], assume: Assumptions) -> dict[str, Any]:
    name = slot["slot"]
    capital = float(slot["capital"])
    target = assume.target_multiple * capital
    equity = ledger.rows("equity", name)
    timed = [r for r in equity if r["ts_exchange"] is not None]
    times = [r["ts_exchange"] for r in timed]
    bar = bar_seconds(times)
    # Growth, drawdown and TTT measure trading: the capital the CWO moved in or out is taken out of the curve.
    moves = transfers(ledger, slot)
    trading = trading_equity([(r["ts_exchange"], r["ts_local"], r["equity"]) for r in equity], moves, capital, bar)
    values = [t for r, t in zip(equity, trading, strict=True) if r["ts_exchange"] is not None]
    summary = curve(times, values, capital)
    if equity:  # the stop snapshot (no bar time) is the last word on the final equity
        summary["final"] = equity[-1]["equity"]  # the money the slot holds, transfers included
        summary["log_growth"] = log_growth(capital, trading[-1])
    summary |= {
        "trading_final": trading[-1] if equity else capital,
        "transfers": len(moves),
        "transferred": math.fsum(m.amount for m in moves),
    }
    swaps = ledger.rows("swaps", name)
    deaths = [
        {k: v for k, v in d.items() if k != "ts_local"}
        | {"time": iso(d["ts_exchange"]), "pending": not any(_after(s, d) for s in swaps)}
        for d in ledger.rows("deaths", name)
    ]
    slippage, fees = costs(ledger, name, assume)
    weights = ledger.rows("weights", name)
    return {
        "slot": name,
        "symbol": slot["symbol"],
        "account": slot["account"],
        "capital": capital,
        "state": slot["state"] or "live",
        "bundle": slot["bundle"],
        "model": slot["model"],
        "bar_seconds": bar,
        "equity": summary,
        "target": {"multiple": assume.target_multiple, "equity": target},
        "ttt": time_to_target(times, values, target, bar) if values else None,
        "models": judge_models(ledger, slot, target, bar, moves),
        "deaths": deaths,
        "swaps": [
            {k: v for k, v in s.items() if k not in ("ts_local", "slot")} | {"time": iso(s["ts_exchange"])}
            for s in swaps
        ],
        "weights": {
            "count": len(weights),
            "last": {"weight": weights[-1]["weight"], "capital": weights[-1]["capital"]} if weights else None,
            "series": [[w["ts_exchange"], w["weight"], w["capital"]] for w in weights],
        },
        "slippage": slippage,
        "fees": fees,
    }


# ------------------------------------------------------------------------------------------------- recycling requests


def pending_request(ledger: Ledger, death: dict[str, Any]) -> dict[str, Any]:
    """A pending death's recycling request: the file the ledger names, read and validated against apex.recycle."""
    entry: dict[str, Any] = {
        "ledger": str(ledger.path),
        "slot": death["slot"],
        "symbol": death["symbol"],
        "death_id": death["id"],
        "time": iso(death["ts_exchange"]),
        "path": death["request"],
        "status": "missing",
        "error": None,
        "request": None,
        "copied_to": None,
    }
    if not death["request"]:
        entry["error"] = "the deaths row names no request file"
        return entry
    path = _resolve(death["request"], ledger.path)
    entry["path"] = str(path)
    if not path.is_file():
        entry["error"] = f"{path}: the request file is gone"
        return entry
    try:
        document = io.read_json(path, "an apex.recycle request", max_bytes=REQUEST_MAX_BYTES)
    except InputError as exc:
        entry |= {"status": "invalid", "error": str(exc)}
        return entry
    problem = validation_error(document, "recycle")
    if problem is not None:
        entry |= {"status": "invalid", "error": f"{path}: not a valid {RECYCLE_SCHEMA} request ({problem})"}
        return entry
    entry |= {"status": "ok", "request": document}
    return entry


# ------------------------------------------------------------------------------------------------- the judgment


@dataclass(frozen=True)
class JudgeOptions:
    """What `apexctl judge` reads and writes."""

    ledgers: tuple[Path, ...]
    output: str | None
    report: Path | None


@dataclass
class Judgment:
    document: dict[str, Any]
    ledgers: list[Ledger]

    @property
    def pending(self) -> list[dict[str, Any]]:
        return self.document["pending_recycle"]


def judge(
    paths: Sequence[Path], assume: Assumptions | None = None, on_ledger: Callable[[Path], None] | None = None
) -> Judgment:
    """Reads every ledger (all of them first: a bad one stops the run before anything is written) and judges it."""
    assume = assume or Assumptions.of(BacktestParams())
    ledgers = []
    for path in paths:
        ledgers.append(read_ledger(path))
        if on_ledger is not None:
            on_ledger(path)
    judged, pending = [], []
    for ledger in ledgers:
        slots = [judge_slot(ledger, slot, assume) for slot in ledger.slots]
        for slot in slots:
            pending += [pending_request(ledger, {"slot": slot["slot"], **d}) for d in slot["deaths"] if d["pending"]]
        judged.append(
            {
                "path": str(ledger.path),
                "version": ledger.version,
                "runs": ledger.runs,
                "slots": slots,
            }
        )
    document = {
        "schema": SCHEMA,
        "version": VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "apexctl_version": __version__,
        "assumptions": assume.describe(),
        "ledgers": judged,
        "pending_recycle": pending,
    }
    return Judgment(io.jsonable(document), ledgers)


# ------------------------------------------------------------------------------------------------- writing


def is_report(folder: Path) -> bool:
    """Whether `folder` is one a judge may replace: missing, empty, or an earlier report (it holds report.html and
    judgment.json). Any other folder is refused, so a mistyped --report never replaces someone's files."""
    if not folder.is_dir():
        return True
    return not any(folder.iterdir()) or all((folder / n).is_file() for n in ("report.html", "judgment.json"))


@contextlib.contextmanager
def locked(options: JudgeOptions) -> Iterator[None]:
    """The judge's lock (non-blocking): on the report folder, else on the -o file. A second judge on the same
    outputs stops at once with exit 3 (see `apexctl.errors.Busy`)."""
    target = options.report if options.report is not None else options.output
    if target is None or str(target) == outputs.STDIO:
        yield
        return
    with outputs.lock(Path(target), busy=True):
        yield


def refuse_repeated(ledgers: list[Path]) -> None:
    """A ledger given twice (by the same path, another path to the same file, or a copy: the same bytes in the
    database and its write-ahead log) would be judged twice and its recycling requests listed twice: a usage error
    naming it. Only ledgers of equal sizes are hashed."""
    seen: dict[object, Path] = {}
    by_size: dict[tuple[int, int], list[tuple[Path, Path | None]]] = {}
    for path in ledgers:
        try:
            info = path.stat()
            identity: object = (info.st_dev, info.st_ino)
        except OSError:  # missing, unreadable or a link loop: reading it says why; only its spelling can repeat
            identity = str(path)
            info = None
        if identity in seen:
            first = seen[identity]
            also = "" if first == path else f" (the same file as {safe(first)})"
            raise UsageError(f"{safe(path)}: ledger given twice{also}; give each ledger once")
        seen[identity] = path
        if info is not None:
            wal = Path(f"{path}-wal")
            wal_size = wal.stat().st_size if wal.is_file() else -1
            by_size.setdefault((info.st_size, wal_size), []).append((path, wal if wal_size >= 0 else None))
    for same_size in (group for group in by_size.values() if len(group) > 1):
        digests: dict[str, str] = {}
        for path, wal in same_size:
            digest = io.sha256_file(path) + (io.sha256_file(wal) if wal is not None else "")
            io.refuse_same_data(digests, str(path), digest)


def write(judgment: Judgment, options: JudgeOptions) -> None:
    """The report folder (plots, report.html, judgment.json, recycle/) staged, then the -o document (atomic; `-` =
    stdout), then the folder published in one rename. The -o document comes after the folder's files (it records
    where the requests were copied to) but before the folder is published, so a failure while building either (a
    plot, a copy, a full disk) leaves neither in place. The caller holds the lock."""
    if options.report is None:
        if options.output is not None:
            io.write_json(judgment.document, options.output)
        return
    with outputs.staged_folder(options.report, replace=True, locked=True) as staging:
        recycle = staging / "recycle"
        recycle.mkdir()
        for entry in judgment.pending:
            if entry["status"] == "ok":
                name = Path(entry["path"]).name
                shutil.copyfile(entry["path"], recycle / name)
                entry["copied_to"] = str(options.report / "recycle" / name)
        write_report(judgment, staging)
        io.write_json(judgment.document, staging / "judgment.json")
        if options.output is not None:
            io.write_json(judgment.document, options.output)


def exit_code(judgment: Judgment) -> int:
    """0, or 4 when recycling requests are pending (a cron job evolves replacements on exit 4)."""
    return EXIT_PENDING if judgment.pending else EXIT_OK


def _slug(text: str) -> str:
    """A slot name as part of a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80] or "_"


def _number(value: Any, digits: int = 2, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def _percent(share: float | None) -> str:
    """A share as a percentage; `-` for null (a drawdown from a tiny peak can overflow, and the document holds null
    for it)."""
    return _number(None if share is None else 100 * share, 2, " %")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(path: Path, alt: str) -> str:
    return f'<figure><img alt="{escape(alt)}" src="{embed_png(path)}"><figcaption>{escape(alt)}</figcaption></figure>'


def write_report(judgment: Judgment, folder: Path) -> list[Path]:
    """Writes the PNGs (equity and drawdown per slot, weights over time, slippage) and report.html, which embeds them
    as data: URIs (one self-contained file: no external asset, no script). Returns the PNGs."""
    from apexctl.forge import plots

    doc = judgment.document
    several = len(judgment.ledgers) > 1
    pngs: list[Path] = []
    sections: list[str] = []
    weights: dict[str, list[tuple[int, float]]] = {}
    slippage_rows: list[tuple[str, float | None, float | None]] = []
    for number, (ledger, judged) in enumerate(zip(judgment.ledgers, doc["ledgers"], strict=True), 1):
        sections.append(f"<h2>Ledger {escape(judged['path'])} (version {judged['version']})</h2>")
        for slot in judged["slots"]:
            name = slot["slot"]
            label = f"{number}:{name}" if several else name
            timed = [r for r in ledger.rows("equity", name) if r["ts_exchange"] is not None]
            png = folder / (f"equity-{number}-{_slug(name)}.png" if several else f"equity-{_slug(name)}.png")
            plots.equity_png(
                [r["ts_exchange"] for r in timed],
                [r["equity"] for r in timed],
                slot["capital"],
                slot["target"]["equity"],
                f"{label} ({slot['symbol']}): equity held (CWO transfers included) and drawdown",
                png,
            )
            pngs.append(png)
            weights[label] = [(w[0], w[1]) for w in slot["weights"]["series"] if w[0] is not None]
            for tactic, group in slot["slippage"]["by_tactic"].items():
                slippage_rows.append((f"{label} {tactic}", group["realized_bps"], group["assumed_bps"]))
            sections.append(_slot_html(slot, label, png))
    weights_png = folder / "weights.png"
    plots.weights_png(weights, weights_png)
    slippage_png = folder / "slippage.png"
    plots.slippage_png(slippage_rows, slippage_png)
    pngs += [weights_png, slippage_png]
    assume = doc["assumptions"]
    pending = doc["pending_recycle"]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>apexctl judge</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f3f3f3; }}
td:first-child, th:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
figure {{ margin: 1em 0; }}
.pending {{ color: #a00; font-weight: bold; }}
</style></head><body>
<h1>apexctl judge</h1>
<p>{escape(doc["created"])} by apexctl {escape(doc["apexctl_version"])}: {len(doc["ledgers"])} ledger(s),
{sum(len(j["slots"]) for j in doc["ledgers"])} slot(s).</p>
<h2>Backtest assumptions</h2>
{_table(["target multiple", "fee", "spread (bps)", "impact", "depth"],
        [[assume["target_multiple"], assume["fee"], assume["spread_bps"], assume["impact"], assume["depth"]]])}
<p>Slippage model: {escape(assume["slippage_model"])}. Fees: {escape(assume["fee_model"])}.</p>
<h2 class="{"pending" if pending else ""}">Pending recycling requests: {len(pending)}</h2>
{_table(["slot", "symbol", "died", "status", "request"],
        [[p["slot"], p["symbol"], p["time"], p["status"], p["copied_to"] or p["error"] or p["path"]]
         for p in pending]) if pending else "<p>None: every death has been answered by a swap.</p>"}
{"".join(sections)}
<h2>Capital weights</h2>
{_image(weights_png, "capital weights over time")}
<h2>Slippage</h2>
{_image(slippage_png, "realized against assumed slippage by slot and tactic")}
</body></html>
"""  # fmt: skip
    with io.atomic_output(folder / "report.html") as handle:
        handle.write(page.encode())
    return pngs


def _slot_html(slot: dict[str, Any], label: str, png: Path) -> str:
    equity, ttt = slot["equity"], slot["ttt"] or {}
    summary = _table(
        ["slot", "symbol", "state", "capital", "final", "moved by the CWO", "log growth (trading)",
         "max drawdown (trading)", "TTT (s)", "target reached"],
        [[
            label, slot["symbol"], slot["state"], _number(slot["capital"]), _number(equity["final"]),
            _number(equity.get("transferred", 0.0)), _number(equity["log_growth"], 4), _percent(equity["max_drawdown"]),
            _number(ttt.get("seconds"), 0), _number(100 * (ttt.get("fraction_reached") or 0.0), 1, " %"),
        ]],
    )  # fmt: skip
    models = _table(
        ["model", "label", "role", "decisions", "log growth", "max drawdown", "live TTT (s)", "Forge TTT (s)",
         "shadow growth"],
        [[
            m["model_id"][:12], m["label"] or "-", m["role"] or "-",
            (m["live"] or {}).get("decisions", 0), _number((m["live"] or {}).get("log_growth"), 4),
            _percent((m["live"] or {}).get("max_drawdown", 0.0)),
            _number(((m["live"] or {}).get("ttt") or {}).get("seconds"), 0),
            _number(m["forge_estimate"]["seconds"], 0) if m["forge_estimate"]["seconds"] is not None
            else m["forge_estimate"]["note"] or "-",
            _number((m["shadow"] or {}).get("log_growth"), 4),
        ] for m in slot["models"]],
    )  # fmt: skip
    costs_rows = [
        [f"slippage {tactic}", group["fills"], _number(group["realized_bps"], 2), _number(group["assumed_bps"], 2)]
        for tactic, group in slot["slippage"]["by_tactic"].items()
    ] + [
        [f"fees {kind}", slot["fees"][kind]["fills"], _number(1e4 * (slot["fees"][kind]["rate"] or 0.0), 2),
         _number(1e4 * slot["fees"]["assumed_rate"], 2)]
        for kind in ("maker", "taker", "unknown") if kind in slot["fees"]
    ]  # fmt: skip
    events = [["death", d["time"], d["reason"], "pending" if d["pending"] else "answered"] for d in slot["deaths"]]
    events += [
        ["swap", s["time"], f"{(s['from_model'] or '-')[:12]} -> {s['to_model'][:12]}: {s['reason']}", s["position"]]
        for s in slot["swaps"]
    ]
    caption = f"{label}: equity held, capital moved by the CWO included (growth and drawdown above exclude it)"
    return (
        f"<h3>{escape(label)}</h3>{summary}{_image(png, caption)}<h4>Models</h4>{models}"
        f"<h4>Costs (bps)</h4>{_table(['', 'fills', 'realized', 'assumed'], costs_rows)}"
        + (f"<h4>Deaths and swaps</h4>{_table(['', 'time', 'what', ''], events)}" if events else "")
    )


def embed_png(path: Path) -> str:
    """A PNG as a data: URI (the HTML report is one self-contained file)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def escape(value: Any) -> str:
    return html.escape(safe(value))
