"""Column schemas of the Parquet tables (DESIGN.md "Artifacts"): names, types, versions."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Column:
    name: str
    dtype: type[pl.DataType] | pl.DataType
    doc: str
    nullable: bool = False


@dataclass(frozen=True)
class TableSchema:
    """A versioned table: the required leading columns; `open` tables (features) may carry more columns."""

    name: str
    version: int
    columns: tuple[Column, ...]
    open: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype() if isinstance(c.dtype, type) else c.dtype for c in self.columns}


TS = Column("ts", pl.Int64, "UTC nanoseconds since the epoch")
#: The instants a `ts` of a table may hold, [TS_FIRST, TS_END) in UTC nanoseconds: from the epoch (synthetic and
#: test tables count from 0) to 2100. A value outside is a damaged file or a wrong unit (a millisecond count taken for
#: seconds lands past 2100), and one such row would make a bar grid span decades.
TS_FIRST = 0
TS_END = 4_102_444_800 * 10**9
TS_WINDOW_TEXT = "1970-01-01 .. 2100-01-01 UTC"
#: The narrower window of data recorded from a crypto venue (what `fetch` reads): not before the Bitcoin genesis
#: block, 2009-01-03. A timestamp in another unit than the one expected almost never lands inside it.
MARKET_FIRST = 1_230_940_800 * 10**9
MARKET_WINDOW_TEXT = "2009-01-03 .. 2100-01-01 UTC"
SYMBOL = Column("symbol", pl.String, "instrument symbol, e.g. BTCUSDT")

TRADES = TableSchema(
    "trades",
    1,
    (
        TS,
        SYMBOL,
        Column("side", pl.Int8, "+1 buy taker, -1 sell taker"),
        Column("price", pl.Float64, "trade price"),
        Column("size", pl.Float64, "trade size in base units"),
        Column("trade_id", pl.String, "venue trade id"),
    ),
)

BOOK = TableSchema(
    "book",
    1,
    (
        TS,
        SYMBOL,
        Column("kind", pl.String, "'snapshot' or 'delta' (the V5 message type)"),
        Column("side", pl.Int8, "+1 bid, -1 ask, 0 for the marker row of a message without levels"),
        Column("price", pl.Float64, "level price (null on a marker row)", nullable=True),
        Column("size", pl.Float64, "absolute level size; 0 deletes the level (null on a marker row)", nullable=True),
        Column("update_id", pl.Int64, "V5 'u': consecutive within a stream"),
        Column("seq", pl.Int64, "V5 'seq': cross sequence, increasing"),
    ),
)

BARS = TableSchema(
    "bars",
    1,
    (
        Column("ts", pl.Int64, "bar open time, UTC nanoseconds"),
        SYMBOL,
        Column("interval", pl.String, "bar length: 1m, 5m, 15m, 1h, ..."),
        Column("open", pl.Float64, "first price"),
        Column("high", pl.Float64, "highest price"),
        Column("low", pl.Float64, "lowest price"),
        Column("close", pl.Float64, "last price"),
        Column("volume", pl.Float64, "base volume"),
        Column("turnover", pl.Float64, "quote volume"),
    ),
)

FEATURES = TableSchema("features", 1, (TS, SYMBOL), open=True)
#: The columns of a features table that say where a row stands, not what the market did: never a model's input.
FEATURE_KEYS = frozenset({"ts", "symbol", "interval", "update_id"})

MODEL_ID = Column("model_id", pl.String, "the strategy or model slot that traded")

FILLS = TableSchema(
    "fills",
    1,
    (
        TS,
        MODEL_ID,
        SYMBOL,
        Column("side", pl.Int8, "+1 buy, -1 sell"),
        Column("price", pl.Float64, "fill price"),
        Column("size", pl.Float64, "fill size in base units"),
        Column("fee", pl.Float64, "fee paid in quote units (negative = rebate)"),
        Column("order_id", pl.String, "venue order id"),
        Column("liquidity", pl.String, "'maker' or 'taker'"),
        Column("equity_after", pl.Float64, "the model's equity after the fill, quote units"),
    ),
)

EQUITY = TableSchema(
    "equity",
    1,
    (TS, MODEL_ID, Column("equity", pl.Float64, "capital + PnL - fees, marked to the mid, quote units")),
)

GENERATIONS = TableSchema(
    "generations",
    2,
    (
        Column("generation", pl.Int64, "0 = the initial population"),
        Column("best", pl.Float64, "best training fitness in the population"),
        Column("median", pl.Float64, "median training fitness"),
        Column(
            "best_adversarial",
            pl.Float64,
            "--dsg: best simulator PnL (mean over seeds) among truly simulated members (null without --dsg)",
            nullable=True,
        ),
        Column("median_adversarial", pl.Float64, "--dsg: median of the same (null without --dsg)", nullable=True),
        Column("diversity", pl.Float64, "distinct trees / population size"),
        Column("evaluations", pl.Int64, "distinct new trees given the true (expensive) evaluation this generation"),
        Column("estimated", pl.Int64, "distinct new trees that kept the surrogate's estimate instead"),
        Column("eval_fraction", pl.Float64, "share of the surrogate's ranking evaluated (1.0 when all were)"),
        Column(
            "surrogate_spearman",
            pl.Float64,
            "rank correlation predicted vs true fitness on the random holdout (null when not measured)",
            nullable=True,
        ),
        Column("seconds", pl.Float64, "wall time of the generation"),
    ),
)

CHIMERA_GENERATIONS = TableSchema(
    "chimera_generations",
    1,
    (
        Column("generation", pl.Int64, "CMA-ES generation, from 1"),
        Column("best", pl.Float64, "lowest objective among this generation's candidates"),
        Column("median", pl.Float64, "median objective of this generation's candidates"),
        Column("best_so_far", pl.Float64, "lowest objective seen so far (the DSG written is that candidate)"),
        Column("sigma", pl.Float64, "CMA-ES step size after the generation, normalized coordinates"),
        Column("evaluations", pl.Int64, "candidates evaluated this generation"),
        Column("simulations", pl.Int64, "simulated markets this generation (candidates x seeds)"),
        Column("seconds", pl.Float64, "wall time of the generation"),
    ),
)

PARETO = TableSchema(
    "pareto",
    1,
    (
        Column("rank", pl.Int64, "1 = best backtest fitness; ordered along the front"),
        Column("tree", pl.String, "the GP JSON tree (apex.gp_tree)"),
        Column("size", pl.Int64, "nodes"),
        Column("height", pl.Int64, "tree height"),
        Column("train_fitness", pl.Float64, "causal fitness: backtest TTT fitness on the training span"),
        Column("adversarial_pnl", pl.Float64, "adversarial fitness: simulator PnL in USDT, mean over the seeds"),
        Column("train_pnl", pl.Float64, "backtest PnL on the training span"),
        Column("held_out_fitness", pl.Float64, "backtest TTT fitness on the held-out span"),
        Column("held_out_pnl", pl.Float64, "backtest PnL on the held-out span"),
        Column("held_out_trades", pl.Float64, "trades on the held-out span"),
    ),
)

TABLES: dict[str, TableSchema] = {
    t.name: t for t in (TRADES, BOOK, BARS, FEATURES, FILLS, EQUITY, GENERATIONS, CHIMERA_GENERATIONS, PARETO)
}
