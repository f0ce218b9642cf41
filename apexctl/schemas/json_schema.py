"""The hand-written JSON Schemas the engine and the Forge exchange documents by (apex.recycle, apex.judgment), and
validation against them with `jsonschema` (draft 2020-12; the judgment refers to the recycle schema by its $id)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The schemas this module validates against: apexctl/schemas/NAME.schema.json.
NAMES = ("recycle", "judgment")


@cache
def schema(name: str) -> dict[str, Any]:
    """The committed JSON Schema `name` (`recycle`, `judgment`)."""
    return json.loads((HERE / f"{name}.schema.json").read_text())


@cache
def _validator(name: str) -> Any:
    import jsonschema
    from referencing import Registry, Resource

    registry = Registry().with_resources((schema(n)["$id"], Resource.from_contents(schema(n))) for n in NAMES)
    return jsonschema.Draft202012Validator(schema(name), registry=registry, format_checker=jsonschema.FormatChecker())


def validation_error(document: Any, name: str) -> str | None:
    """None when `document` validates against schema `name`, else its most relevant error as one line:
    `at FIELD/PATH: message` (the message quotes at most 200 characters of the offending value)."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(name).iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    message = " ".join(error.message.split())
    if len(message) > 300:
        message = message[:300] + "..."
    return f"at {where}: {message}"
