"""Type stubs of the Rust extension apexctl._core (checked against the built module by mypy stubtest)."""

import os
from collections.abc import Mapping
from typing import Any, TypedDict, Unpack, final

import numpy as np
import numpy.typing as npt

__version__: str
#: The environment variable in which apexctl names itself (its pid) to the binaries it launches.
LAUNCHER_ENV: str

class ApexError(Exception): ...
class UsageError(ApexError): ...
class InputError(ApexError): ...
class SchemaError(InputError): ...
class DataError(InputError): ...
class IoError(InputError): ...
class ConfigError(UsageError, DataError): ...
class InternalError(ApexError): ...

_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]

# The keyword arguments of the Rust parameter tables (`param_table(name)` lists their defaults, bounds and docs).
class _RunOptions(TypedDict, total=False):
    seed: int
    hours: float
    book_depth: int
    book_cadence_ms: int
    bar_seconds: int
    capital: float
    max_events: int

class _FeatureOptions(TypedDict, total=False):
    rv_bars: int
    vmd_modes: int
    vmd_window: int

class _GpRunOptions(_FeatureOptions, total=False):
    book_depth: int
    book_cadence_ms: int
    bar_seconds: int
    capital: float
    max_events: int

class _ExecParams(TypedDict, total=False):
    size_lots: int
    horizon_s: float
    interval_s: float
    warmup_s: float
    latency_ms: float

class _BacktestParams(TypedDict, total=False):
    capital: float
    target_multiple: float
    fee: float
    spread_bps: float
    depth: float
    impact: float
    entry_threshold: float
    stop_atr_mult: float
    atr_window: int
    stop_min_bps: float
    reward_risk: float
    kelly_scale: float
    kelly_window: int
    prior_win_rate: float
    prior_trades: float
    min_fraction: float
    max_fraction: float
    max_leverage: float

# The dict results, by key (private: they exist only in this stub).
class _BookStats(TypedDict):
    snapshots: int
    deltas: int
    rebases: int
    dropped_before_snapshot: int
    gaps: int
    refused_while_stale: int
    crossed: int
    synced: bool
    best_bid: tuple[float, float] | None
    best_ask: tuple[float, float] | None
    bid_levels: int
    ask_levels: int
    checksum: int

class _BookReplay(TypedDict):
    messages: int
    books: dict[int, _BookStats]
    incidents: list[tuple[int, str]]

class _SimTime(TypedDict):
    ts: _I64  # UTC ns
    ts_us: _I64  # µs since the run's start

class _Trade(TypedDict):
    side: npt.NDArray[np.int8]
    price: _F64
    size: _F64

class _L2(TypedDict):
    kind: npt.NDArray[np.uint8]
    side: npt.NDArray[np.int8]
    price: _F64
    size: _F64
    update_id: _I64
    seq: _I64

class _Rows(TypedDict):
    ts: _I64  # UTC ns
    symbol: npt.NDArray[np.uint32]  # codes into the producer's symbols

class _BookRows(_Rows, _L2): ...

class _TradeRows(_Rows, _Trade):
    # Arrow-style trade ids: UTF-8 bytes, and row i's id at [offsets[i], offsets[i + 1]).
    trade_id_data: npt.NDArray[np.uint8]
    trade_id_offsets: _I64

class _SimTrades(_SimTime, _TradeRows): ...
class _SimBook(_SimTime, _BookRows): ...

class _SimBars(_SimTime):
    open: _F64
    high: _F64
    low: _F64
    close: _F64
    volume: _F64
    turnover: _F64

class _SimFills(_SimTime):
    account: npt.NDArray[np.uint32]
    side: npt.NDArray[np.int8]
    price: _F64
    size: _F64
    fee: _F64
    order_id: npt.NDArray[np.uint64]
    maker: npt.NDArray[np.bool_]

class _SimFairValue(_SimTime):
    value: _F64
    jump: npt.NDArray[np.bool_]

class _SimPopulation(TypedDict):
    agents: int
    pnl: float
    fees: float
    volume: float

class _SimStrategy(TypedDict):
    name: str
    pnl: float
    fees: float
    max_drawdown: float
    time_to_target_s: float | None
    ruined: bool
    n_fills: int
    equity_ts: _I64
    equity_ts_us: _I64
    equity: _F64

class _SimRun(TypedDict):
    trades: _SimTrades
    book: _SimBook
    bars: _SimBars
    fills: _SimFills
    fair_value: _SimFairValue
    populations: dict[str, _SimPopulation]
    strategy: _SimStrategy | None
    events: int
    trade_count: int
    truncated: bool

class _SimGpRun(_SimRun):
    signals: _F64

class _SimBatch(TypedDict):
    pnl: _F64
    fees: _F64
    max_drawdown: _F64
    time_to_target_s: _F64
    ruined: npt.NDArray[np.bool_]
    n_fills: npt.NDArray[np.uint64]
    events: npt.NDArray[np.uint64]
    trades: npt.NDArray[np.uint64]
    truncated: npt.NDArray[np.bool_]

class _BybitLines(TypedDict):
    book: _BookRows
    trades: _TradeRows
    symbols: list[str]
    lines: int
    skipped: int

class _BundleModel(TypedDict):
    name: str
    kind: str
    file: str
    features: int
    window: int
    outputs: int
    rows: int
    last_output: list[float]

class _BundleCheck(TypedDict):
    path: str
    symbol: str
    slot: str
    version: int
    features: list[str]
    files: dict[str, str]
    models: list[_BundleModel]

class _ExecInfo(TypedDict):
    shortfall_bps: _F64
    fees: _F64
    arrival_mid: _F64
    executed_lots: _I64
    remaining_lots: _I64
    maker_lots: _I64
    taker_lots: _I64
    forced_lots: _I64
    unfilled_lots: _I64

def cancel_request() -> bool: ...
def cancel_clear() -> None: ...
def cancel_requested() -> bool: ...
def book_replay(
    book: Mapping[str, npt.NDArray[Any]],
    *,
    price_decimals: int | None = None,
    qty_decimals: int | None = None,
    checksum_depth: int = 25,
) -> _BookReplay: ...
def features_update(
    book: Mapping[str, npt.NDArray[Any]],
    *,
    price_decimals: int | None = None,
    qty_decimals: int | None = None,
    tick_units: dict[int, int] | None = None,
) -> dict[str, npt.NDArray[Any]]: ...
def book_decimals(
    side: npt.NDArray[np.int8], price: npt.NDArray[np.float64], size: npt.NDArray[np.float64]
) -> tuple[int, int]: ...
def trade_size_decimals(size: npt.NDArray[np.float64]) -> int: ...
def features_bars(
    table: Mapping[str, npt.NDArray[Any]],
    *,
    interval_ns: int,
    kline_interval_ns: int | None = None,
    rv_window: int = 30,
    higher_ns: list[int] = ...,
    updates: dict[str, npt.NDArray[Any]] | None = None,
    vmd_modes: int = 0,
    vmd_window: int = 64,
) -> dict[str, npt.NDArray[Any]]: ...
def vmd(
    signal: npt.NDArray[np.float64],
    modes: int = 3,
    alpha: float = 2000.0,
    tau: float = 0.0,
    tol: float = 1e-7,
    max_iter: int = 500,
) -> npt.NDArray[np.float64]: ...
def vmd_rolling(
    series: npt.NDArray[np.float64],
    modes: int = 3,
    window: int = 64,
    alpha: float = 2000.0,
    tau: float = 0.0,
    tol: float = 1e-7,
    max_iter: int = 500,
) -> npt.NDArray[np.float64]: ...
def sim_run(
    symbol: str,
    *,
    dsg_json: str | None = None,
    strategy: str | None = None,
    record_all_fills: bool = False,
    record_market: bool = True,
    epoch_ns: int = ...,  # SIM_EPOCH_NS
    **options: Unpack[_RunOptions],
) -> _SimRun: ...
def sim_batch(
    symbol: str,
    dsg_vectors: npt.NDArray[np.float64],
    seeds: npt.NDArray[np.uint64],
    strategies: list[str],
    **options: Unpack[_RunOptions],
) -> _SimBatch: ...
def sim_gp_fitness(
    trees: list[str],
    dsg_json: str | None,
    seeds: list[int],
    symbol: str = "BTCUSDT",
    hours: float | None = None,
    *,
    shared: bool = True,
    **options: Unpack[_GpRunOptions],
) -> dict[str, npt.NDArray[Any]]: ...
def sim_gp_run(
    tree: str,
    dsg_json: str | None,
    seed: int,
    symbol: str = "BTCUSDT",
    hours: float | None = None,
    *,
    record_market: bool = False,
    **options: Unpack[_GpRunOptions],
) -> _SimGpRun: ...
def sim_feature_names(bar_seconds: int | None = None, **features: Unpack[_FeatureOptions]) -> list[str]: ...
def sim_feature_warmup(
    bar_seconds: int | None = None, **features: Unpack[_FeatureOptions]
) -> list[tuple[str, int]]: ...
def dsg_params() -> list[tuple[str, float, float, float, bool, str]]: ...
def param_table(name: str) -> list[tuple[str, float, float, float, bool, bool, bool, str]]: ...
def duration_seconds(text: str) -> float: ...
def dsg_json_schema() -> str: ...
def dsg_normalize(text: str | None = None) -> str: ...
def sim_presets() -> list[tuple[str, str, str, float]]: ...
def sim_strategies() -> list[tuple[str, str]]: ...
def sim_strategy_check(name: str) -> str: ...

SIM_BOOK_DEPTH: int
SIM_BOOK_CADENCE_MS: int
SIM_EPOCH_NS: int
SIM_MA_MAX_BARS: int

def bybit_parse_lines(data: bytes, first_line: int = 1) -> _BybitLines: ...
def bybit_sign(api_secret: str, api_key: str, timestamp_ms: int, recv_window_ms: int, payload: str) -> str: ...
def backtest_defaults() -> dict[str, float | int]: ...
def backtest_run(
    signals: npt.NDArray[np.float64],
    bars: Mapping[str, npt.NDArray[Any]],
    *,
    start: int = 0,
    end: int | None = None,
    **params: Unpack[_BacktestParams],
) -> dict[str, npt.NDArray[Any]]: ...
def backtest_equity(
    signal: npt.NDArray[np.float64],
    bars: Mapping[str, npt.NDArray[Any]],
    *,
    start: int = 0,
    end: int | None = None,
    **params: Unpack[_BacktestParams],
) -> npt.NDArray[np.float64]: ...
def gp_evaluate(
    trees_json: list[str],
    names: list[str],
    columns: npt.NDArray[np.float64] | list[npt.NDArray[np.float64]],
    max_depth: int = 17,
    max_nodes: int = 4096,
    share: bool = True,
) -> npt.NDArray[np.float64]: ...
def gp_evaluate_into(
    trees_json: list[str],
    names: list[str],
    columns: npt.NDArray[np.float64] | list[npt.NDArray[np.float64]],
    out: npt.NDArray[np.float64],
    max_depth: int = 17,
    max_nodes: int = 4096,
    share: bool = True,
) -> None: ...
def gp_sharing(
    trees_json: list[str], names: list[str], max_depth: int = 17, max_nodes: int = 4096
) -> dict[str, int]: ...
def gp_shapes(
    trees_json: list[str], names: list[str], max_depth: int = 17, max_nodes: int = 4096
) -> npt.NDArray[np.float64]: ...
def gp_shape_columns(names: list[str]) -> list[str]: ...
def gp_stream(
    tree_json: str,
    names: list[str],
    columns: npt.NDArray[np.float64] | list[npt.NDArray[np.float64]],
    max_depth: int = 17,
    max_nodes: int = 4096,
) -> npt.NDArray[np.float64]: ...
def gp_validate(tree_json: str, names: list[str], max_depth: int = 17, max_nodes: int = 4096) -> str: ...
def gp_tree_schema() -> str: ...

PARETO_MAX_ABS_VALUE: float
#: The ONNX metadata key holding a network's input features in order (JSON list), checked against the manifest.
ONNX_FEATURES_METADATA: str

def pareto_select(
    values: _F64, objects: list[int], k: int
) -> tuple[npt.NDArray[np.uintp], npt.NDArray[np.uintp], _F64]: ...
def bundle_check(path: str | os.PathLike[str], engine_features: list[str] | None = None) -> _BundleCheck: ...
def bundle_bars(bars: str, features: list[str]) -> str: ...
def policy_run(
    bundle: str | os.PathLike[str], model: str, rows: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]: ...
def policy_latency(
    bundle: str | os.PathLike[str], model: str, rows: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]: ...
def onnx_run(path: str | os.PathLike[str], inputs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
def bundle_schema() -> str: ...

@final
class UpdateReplay:
    """`features_update` of a `book` table given in consecutive pieces, each ending at a message's end."""

    def __new__(
        cls, *, price_decimals: int, qty_decimals: int, tick_units: dict[int, int] | None = None
    ) -> UpdateReplay: ...
    def push(self, book: Mapping[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]: ...

@final
class TradeFeatureStream:
    """Per-trade signed volume and TFI of a `trades` table given in consecutive pieces in table order."""

    def __new__(cls, *, windows_ns: list[int], size_decimals: int) -> TradeFeatureStream: ...
    def push(self, trades: Mapping[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]: ...

@final
class BarTableStream:
    """`features_bars` of a `trades` (or klines) table and its update features given in consecutive pieces in time
    order."""

    def __new__(
        cls,
        *,
        interval_ns: int,
        last_ts: dict[int, int],
        with_book: bool,
        rv_window: int = 30,
        higher_ns: list[int] = ...,
        vmd_modes: int = 0,
        vmd_window: int = 64,
    ) -> BarTableStream: ...
    def push_trades(self, trades: Mapping[str, npt.NDArray[Any]]) -> None: ...
    def push_klines(self, klines: Mapping[str, npt.NDArray[Any]], *, interval_ns: int) -> None: ...
    def push_updates(self, updates: dict[str, npt.NDArray[Any]]) -> None: ...
    def close_source(self) -> None: ...
    def close_updates(self) -> None: ...
    def finish(self) -> dict[str, npt.NDArray[Any]]: ...

@final
class BarFeatureEngine:
    """The streaming bar features of one symbol: book messages, trades and the clock in, `features` rows out."""

    def __new__(
        cls,
        interval_ns: int,
        *,
        price_decimals: int,
        qty_decimals: int,
        rv_window: int = 30,
        higher_ns: list[int] = ...,
        vmd_modes: int = 0,
        vmd_window: int = 64,
        book_columns: bool = True,
    ) -> BarFeatureEngine: ...
    @property
    def names(self) -> list[str]: ...
    @property
    def rows(self) -> int: ...
    @property
    def late_events(self) -> int: ...
    def on_trade(self, ts: int, side: int, price: float, size: float) -> list[tuple[int, list[float]]]: ...
    def on_book(
        self,
        ts: int,
        kind: str,
        update_id: int,
        seq: int,
        bids: list[tuple[float, float]],
        asks: list[tuple[float, float]],
    ) -> list[tuple[int, list[float]]]: ...
    def on_clock(self, ts: int) -> list[tuple[int, list[float]]]: ...
    def update(self) -> dict[str, float] | None: ...

@final
class SimMarket:
    """One simulated market (no strategy) advanced piece by piece; its pieces make exactly `sim_run`'s tables."""

    def __new__(
        cls,
        symbol: str,
        *,
        dsg_json: str | None = None,
        epoch_ns: int = ...,  # SIM_EPOCH_NS
        **options: Unpack[_RunOptions],
    ) -> SimMarket: ...
    @property
    def horizon_us(self) -> int: ...
    def advance(self, until_us: int) -> tuple[_SimTrades, _SimBook]: ...
    def finish(self) -> _SimRun: ...

@final
class ExecEnv:
    """`n_envs` IEL execution environments of one market and parent order, stepped in parallel."""

    def __new__(
        cls,
        symbol: str = "BTCUSDT",
        n_envs: int = 1,
        *,
        dsg_json: str | None = None,
        side: str = "buy",
        parallel: bool = True,
        **params: Unpack[_ExecParams],
    ) -> ExecEnv: ...
    def reset(self, seeds: list[int]) -> npt.NDArray[np.float64]: ...
    def step(
        self, actions: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_], _ExecInfo]: ...
    @property
    def observation_names(self) -> list[str]: ...
    @property
    def action_names(self) -> list[str]: ...
    @property
    def n_envs(self) -> int: ...
    @property
    def steps(self) -> int: ...
