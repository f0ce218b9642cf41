"""JSON Schemas of the pydantic-modelled JSON documents, generated the same way for every document and committed."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


def document_json_schema(model: type[BaseModel], schema: str, version: int) -> dict[str, Any]:
    """The JSON Schema of a document model, with an `$id` naming the document's schema and version."""
    generated = model.model_json_schema(by_alias=True)
    generated["$id"] = f"https://apexctl/schemas/{schema}/v{version}"
    return generated


def schema_text(generated: dict[str, Any]) -> str:
    """The committed form of a JSON Schema: sorted keys, two-space indent, trailing newline."""
    return json.dumps(generated, indent=2, sort_keys=True) + "\n"
