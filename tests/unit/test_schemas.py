"""Every pydantic-modelled JSON document's committed schema is the one its model generates, with one `$id` style."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apexctl.schemas.documents import committed_text, documents, schema_id

SCHEMAS = Path(__file__).resolve().parents[2] / "apexctl" / "schemas"


@pytest.mark.parametrize("stem", sorted(documents()))
def test_committed_schema_is_generated_from_its_model(stem):
    assert (SCHEMAS / f"{stem}.schema.json").read_text() == committed_text(stem), (
        f"apexctl/schemas/{stem}.schema.json is stale: run `python -m apexctl.schemas.documents`"
    )


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_committed_schema_has_the_id_of_its_file(path):
    assert json.loads(path.read_text())["$id"] == schema_id(path.name.removesuffix(".schema.json"))
