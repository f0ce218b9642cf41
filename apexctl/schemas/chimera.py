"""The `apex.chimera_report` JSON document (the fit report `apexctl chimera` writes next to the DSG): model + schema.

Its committed JSON Schema is generated from the model (`python -m apexctl.schemas.documents` rewrites it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apexctl.schemas.documents import StrictDocument, StrictModel, committed_text

REPORT_SCHEMA = "apex.chimera_report"
REPORT_VERSION = 1


class MomentFit(StrictModel):
    """One market statistic: the target's value, the simulated one at the start and at the fit, and its weight."""

    name: str
    target: float | None = Field(description="the target market's value (null: the data cannot show it)")
    initial: float | None = Field(description="mean over the fit seeds at the initial DSG")
    simulated: float | None = Field(description="mean over the fit seeds at the fitted DSG")
    error: float | None = Field(description="simulated - target")
    z: float | None = Field(description="error / scale")
    scale: float | None = Field(description="standard deviation across seeds at the initial DSG, floored")
    weight: float = Field(ge=0, description="1 / scale^2 in the objective; 0 = not used")


class ParamFit(StrictModel):
    """One DSG parameter before and after the fit."""

    name: str
    initial: float
    final: float
    lo: float
    hi: float
    searched: bool = Field(description="false: kept at its initial value")
    log_scale: bool = Field(description="searched on a log scale (bounds span two decades or more)")


class Identifiability(StrictModel):
    """Whether the moments notice a move of one searched parameter, against the seed noise."""

    param: str
    step: float = Field(description="the move in normalized coordinates")
    moment_change: float = Field(description="sum of squared changes of the standardized moments (each capped)")
    noise: float = Field(description="the same sum between seed sets at the fitted DSG")
    ratio: float
    identified: bool
    most_moved: list[str] = Field(description="the moments that moved most")


class Objective(StrictModel):
    initial: float
    final: float


class Target(StrictModel):
    folder: str
    span_hours: float
    inputs: dict[str, str] = Field(description="SHA-256 of each table read")


class ChimeraReport(StrictDocument):
    """How well the fitted DSG reproduces the target market, and what the moments can tell apart."""

    schema_: Literal["apex.chimera_report"] = Field(alias="schema")
    version: Literal[1]
    symbol: str
    target: Target
    settings: dict[str, Any] = Field(description="every option of the run, and the moment settings")
    objective: Objective
    evaluations: int = Field(ge=0, description="candidates simulated, including CMA-ES's final mean")
    generations: int = Field(ge=0)
    seconds: float
    moments: list[MomentFit]
    params: list[ParamFit]
    identifiability: list[Identifiability] = Field(description="empty with --no-sensitivity")


def chimera_report_json_schema_text() -> str:
    """What apexctl/schemas/chimera_report.schema.json must hold."""
    return committed_text("chimera_report")
