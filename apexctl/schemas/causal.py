"""The `apex.causal` JSON document (causal parents of a target, written by `apexctl causal`): pydantic model + schema.

Its committed JSON Schema is generated from the model (`python -m apexctl.schemas.documents` rewrites it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from apexctl.schemas.documents import StrictDocument, StrictModel, committed_text

CAUSAL_SCHEMA = "apex.causal"
CAUSAL_VERSION = 1


class CausalLink(StrictModel):
    """One significant link `feature(t - lag) -> target(t)` found by the MCI step."""

    feature: str = Field(description="feature column (or the target itself for an autoregressive link)")
    lag: int = Field(ge=0, description="the feature's value at t - lag drives the target at t")
    p_value: float = Field(ge=0.0, le=1.0, description="MCI p-value (after --fdr correction when set)")
    value: float = Field(description="MCI test statistic (partial correlation for parcorr, CMI for cmiknn, ...)")


class DroppedFeature(StrictModel):
    """A candidate column removed before the search, and why."""

    feature: str
    reason: str


class CausalSettings(BaseModel):
    """Everything needed to reproduce the run."""

    model_config = ConfigDict(extra="allow")

    target: str
    target_source: str = Field(description="'column' or how the target was computed (e.g. from close over N rows)")
    tau_min: int = Field(ge=0)
    tau_max: int = Field(ge=0)
    test: Literal["parcorr", "cmiknn", "gpdc"]
    pc_alpha: float
    alpha: float
    fdr: Literal["none", "fdr_bh"]
    features: list[str] = Field(description="the feature columns searched, in order, after hygiene")
    symbols: list[str] = Field(description="symbols used, each a dataset of the same process")
    seed: int
    jobs: int
    samples_used: int = Field(description="time points (over all symbols) every test could use after masking")
    min_samples: int = Field(description="the minimum samples_used the run required")
    candidate_links: int
    link_assumptions: str
    tigramite_version: str
    input: str
    input_sha256: str


class CausalDoc(StrictDocument):
    """The causal parents of one target column."""

    schema_: Literal["apex.causal"] = Field(alias="schema")
    version: Literal[1]
    target: str
    parents: list[CausalLink] = Field(description="significant feature links, sorted by p-value")
    target_lags: list[CausalLink] = Field(
        default_factory=list, description="significant autoregressive links of the target itself"
    )
    settings: CausalSettings
    dropped: list[DroppedFeature] = Field(default_factory=list)


def causal_json_schema_text() -> str:
    """What apexctl/schemas/causal.schema.json must hold."""
    return committed_text("causal")
