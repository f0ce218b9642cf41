"""The `apex.maml_report` JSON document (held-out comparison written by `apexctl train maml`): pydantic model + schema.

Its committed JSON Schema is generated from the model (`python -m apexctl.schemas.documents` rewrites it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from apexctl.schemas.documents import StrictDocument, StrictModel, committed_text

MAML_REPORT_SCHEMA = "apex.maml_report"
MAML_REPORT_VERSION = 1


class Producer(StrictModel):
    command: str = Field(description="the command line that produced the model and this report")
    version: str = Field(description="apexctl version")


class FeaturesFile(StrictModel):
    path: str
    sha256: str


class Tasks(StrictModel):
    train: int = Field(ge=1, description="training tasks (symbol, time window)")
    held_out: int = Field(ge=1, description="held-out tasks: the latest windows of each symbol")
    support_rows: int = Field(ge=1)
    query_rows: int = Field(ge=1)
    usable_rows: dict[str, int] = Field(description="rows with every input and a target, per symbol")
    held_out_names: list[str] = Field(description="SYMBOL@first bar time of each held-out task")


class Curve(StrictModel):
    loss: list[float] = Field(description="mean held-out query loss after 0, 1, ..., k adaptation steps")
    sign_accuracy: list[float] = Field(description="share of directional query rows whose sign is predicted")


class HeldOut(StrictModel):
    steps: list[int]
    meta: Curve = Field(description="the meta-trained network (the checkpoint)")
    baseline: Curve = Field(description="the same network trained on the pooled tasks, same budget")
    meta_minus_baseline_after_k: float = Field(description="negative = meta-training wins after k steps")


class Training(StrictModel):
    meta_loss_first: float
    meta_loss_last: float = Field(description="mean over the last 10% of meta-steps")
    baseline_loss_first: float
    baseline_loss_last: float = Field(description="mean over the last 10% of steps")


class MamlReport(StrictDocument):
    """What `apexctl train maml` measured: held-out loss after 0..k steps, meta-trained vs pooled baseline."""

    schema_: Literal["apex.maml_report"] = Field(alias="schema")
    version: Literal[1]
    producer: Producer
    model: str = Field(description="the checkpoint written next to this report")
    features_file: FeaturesFile
    settings: dict[str, Any] = Field(description="every MamlConfig field")
    features: list[str] = Field(description="input columns in input order")
    dropped_features: dict[str, str] = Field(description="candidate input columns left out, with the reason")
    size_scale: float = Field(gt=0, description="std of the training returns: size output x size_scale = |return|")
    tasks: Tasks
    held_out: HeldOut
    training: Training
    seconds: float = Field(ge=0)


def maml_report_json_schema_text() -> str:
    """What apexctl/schemas/maml_report.schema.json must hold."""
    return committed_text("maml_report")
