"""JSON Schemas of the pydantic-modelled JSON documents, generated the same way for every document and committed.

`python -m apexctl.schemas.documents` rewrites every committed schema from its model (a test fails while one is
stale)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

HERE = Path(__file__).resolve().parent


class StrictModel(BaseModel):
    """A part of a document that refuses keys it does not define (a typo in a key is an error, not a default)."""

    model_config = ConfigDict(extra="forbid")


class StrictDocument(BaseModel):
    """A whole document: strict, and filled by field name as well as by alias (`schema`, `version`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def schema_id(stem: str) -> str:
    """The `$id` of the committed schema apexctl/schemas/STEM.schema.json (one style for every schema)."""
    return f"https://apexctl.dev/schemas/{stem}.schema.json"


def document_json_schema(model: type[BaseModel], schema: str, version: int) -> dict[str, Any]:
    """The JSON Schema of a document model, with the `$id` of its committed file (apex.NAME -> NAME.schema.json)
    and the version it describes."""
    generated = model.model_json_schema(by_alias=True)
    generated["$id"] = schema_id(schema.removeprefix("apex."))
    return generated


def schema_text(generated: dict[str, Any]) -> str:
    """The committed form of a JSON Schema: sorted keys, two-space indent, trailing newline."""
    return json.dumps(generated, indent=2, sort_keys=True) + "\n"


def documents() -> dict[str, tuple[type[BaseModel], str, int]]:
    """Every pydantic-modelled document: committed file stem -> (model, schema name, version)."""
    from apexctl.schemas import reports
    from apexctl.schemas.causal import CAUSAL_SCHEMA, CAUSAL_VERSION, CausalDoc
    from apexctl.schemas.chimera import REPORT_SCHEMA, REPORT_VERSION, ChimeraReport
    from apexctl.schemas.maml_report import MAML_REPORT_SCHEMA, MAML_REPORT_VERSION, MamlReport

    return {
        "causal": (CausalDoc, CAUSAL_SCHEMA, CAUSAL_VERSION),
        "chimera_report": (ChimeraReport, REPORT_SCHEMA, REPORT_VERSION),
        "maml_report": (MamlReport, MAML_REPORT_SCHEMA, MAML_REPORT_VERSION),
        "sim_summary": (reports.SimSummary, reports.SIM_SUMMARY_SCHEMA, reports.SIM_SUMMARY_VERSION),
        "iel_report": (reports.IelReport, reports.IEL_REPORT_SCHEMA, reports.IEL_REPORT_VERSION),
        "hall_of_fame": (reports.HallOfFame, reports.HALL_OF_FAME_SCHEMA, reports.HALL_OF_FAME_VERSION),
    }


def committed_text(stem: str) -> str:
    """What apexctl/schemas/STEM.schema.json must hold: the schema generated from the document's model."""
    model, schema, version = documents()[stem]
    return schema_text(document_json_schema(model, schema, version))


def main() -> None:
    for stem in documents():
        (HERE / f"{stem}.schema.json").write_text(committed_text(stem))
        print(f"wrote apexctl/schemas/{stem}.schema.json")


if __name__ == "__main__":
    main()
