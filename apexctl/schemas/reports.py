"""The Forge's small JSON documents, modelled once: `apex.sim_summary` (simulate's summary.json), `apex.iel_report`
(train iel's report) and `apex.hall_of_fame` (evolve's hall_of_fame/index.json). Each is validated before it is
written, and its committed JSON Schema (NAME.schema.json) is generated from the model here
(`python -m apexctl.schemas.documents` rewrites them all)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apexctl.schemas.documents import StrictModel

SIM_SUMMARY_SCHEMA, SIM_SUMMARY_VERSION = "apex.sim_summary", 1
IEL_REPORT_SCHEMA, IEL_REPORT_VERSION = "apex.iel_report", 1
HALL_OF_FAME_SCHEMA, HALL_OF_FAME_VERSION = "apex.hall_of_fame", 1

#: A number that may be missing: JSON has no NaN or infinity, so the writer stores those as null.
Number = float | None


# ---------------------------------------------------------------------------------------------------- sim_summary


class Population(StrictModel):
    agents: int = Field(ge=0)
    pnl: Number = Field(description="the population's profit and loss, USDT, after fees")
    fees: Number = Field(description="fees it paid, USDT")
    volume: Number = Field(description="quantity it traded, base units")


class SimMarket(StrictModel):
    events: int = Field(ge=0, description="events the simulated market processed")
    trades: int = Field(ge=0, description="trades printed in the market (every agent's)")
    truncated: bool = Field(description="the run stopped at its event cap before the requested time")
    populations: dict[str, Population] = Field(description="each agent population's size and results")


class SimSummary(StrictModel):
    """`apexctl simulate`'s summary.json: one strategy traded in the simulated market."""

    schema_: Literal["apex.sim_summary"] = Field(alias="schema")
    version: Literal[1]
    strategy: str = Field(description="the strategy's name (gp for a --tree)")
    symbol: str
    seed: int = Field(ge=0)
    hours: float = Field(gt=0, description="simulated hours")
    capital: float = Field(gt=0, description="starting capital, USDT")
    pnl: Number = Field(description="profit and loss, USDT, after fees")
    return_: Number = Field(alias="return", description="pnl / capital")
    fees: Number = Field(description="fees paid, USDT")
    max_drawdown: Number = Field(description="largest peak-to-trough fall of equity, a fraction")
    time_to_target_s: Number = Field(description="seconds until equity doubled; null when never")
    ruined: bool = Field(description="equity fell below what the minimum order needs")
    fills: int = Field(ge=0)
    market: SimMarket
    dsg: dict[str, Any] = Field(description="the DSG the market ran (apex.dsg, normalized)")


# ------------------------------------------------------------------------------------------------------ iel_report


class Shortfall(StrictModel):
    mean_is_bps: Number = Field(description="mean implementation shortfall, bps")
    se_bps: Number = Field(description="its standard error, bps")
    std_bps: Number
    episodes: int = Field(ge=0)


class PolicyResult(Shortfall):
    maker_fraction: Number = Field(description="share of the executed lots filled passively")
    forced_fraction: Number = Field(description="share of the lots forced at the horizon")
    action_share: dict[str, Number] = Field(description="share of decisions per action")


class PairedDifference(StrictModel):
    mean_bps: Number
    se_bps: Number


class IelReport(StrictModel):
    """`apexctl train iel`'s held-out comparison of the learned execution policy against the baselines."""

    schema_: Literal["apex.iel_report"] = Field(alias="schema")
    version: Literal[1]
    policies: dict[str, PolicyResult] = Field(description="the IEL and each baseline, on the same episodes")
    best_baseline: str
    iel_minus_best_baseline: PairedDifference = Field(description="paired per-episode difference (negative: better)")


# ---------------------------------------------------------------------------------------------------- hall_of_fame


class Metrics(StrictModel):
    """A tree's backtest on one span (apex-backtest's metrics)."""

    fitness: Number
    pnl: Number
    sharpe: Number
    max_drawdown: Number
    trades: Number
    win_rate: Number
    reached: Number
    ttt_seconds: Number
    ruined: Number


class Adversarial(StrictModel):
    mean_pnl: Number = Field(description="simulator PnL, USDT, mean over the seeds (--dsg)")


class HallEntry(StrictModel):
    rank: int = Field(ge=1)
    file: str = Field(description="the tree's apex.gp_tree file in hall_of_fame/")
    size: int = Field(ge=1, description="nodes")
    height: int = Field(ge=0)
    train: Metrics
    held_out: Metrics
    adversarial: Adversarial | None = None


class SeedRequest(StrictModel):
    """An apex.recycle request the initial population was seeded from."""

    file: str
    sha256: str
    slot: str
    symbol: str
    reason: str
    time: str
    ledger: str
    run_id: int = Field(ge=1)
    model_id: str
    bundle: str
    record: dict[str, Any] = Field(description="the model's record on the ledger (growth, decisions, source)")


class BarsMade(StrictModel):
    """The bars a model learned from, as a bundle manifest records them (its `bars`, checked by the live engine)."""

    bar_seconds: int = Field(ge=1, le=86400, description="the features table's bar length in seconds (its --grain)")
    options: dict[str, int] = Field(description="the table's rv_bars, vmd_modes and vmd_window")


class HallOfFame(StrictModel):
    """`apexctl evolve`'s hall_of_fame/index.json."""

    schema_: Literal["apex.hall_of_fame"] = Field(alias="schema")
    version: Literal[1]
    symbol: str
    train_rows: list[int] = Field(min_length=2, max_length=2, description="[first, end) rows of the training span")
    held_out_rows: list[int] = Field(min_length=2, max_length=2, description="[first, end) rows held out")
    features: list[str] = Field(description="the feature columns the trees may read")
    params: dict[str, Any] = Field(description="the run's settings (evolve's options)")
    bars: BarsMade | None = Field(default=None, description="the bars of the features table the trees learned from")
    seed_requests: list[SeedRequest] = Field(default_factory=list)
    entries: list[HallEntry]
