"""Where the first population's trees come from: seed DNA files, recycle requests and the causal parents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apexctl import _core
from apexctl.console import safe
from apexctl.errors import DataError, InputError, SchemaError
from apexctl.forge import io
from apexctl.forge.evolve.config import MAX_WINDOW, RECYCLE_SCHEMA, EvolveConfig
from apexctl.forge.evolve.market import Market
from apexctl.forge.gp import SCHEMA as GP_SCHEMA
from apexctl.forge.gp import (
    read_tree_text,
)


def _tree_files(path: Path) -> list[Path]:
    """A tree file, or the trees of a hall_of_fame/ folder (or of an evolve output folder holding one)."""
    if path.is_dir():
        folder = path / "hall_of_fame" if (path / "hall_of_fame").is_dir() else path
        files = sorted(p for p in folder.glob("*.json") if p.name != "index.json")
        if not files:
            raise InputError(f"{path}: --seed-dna folder holds no GP JSON trees")
        return files
    if not path.exists():
        raise InputError(f"{path}: --seed-dna file does not exist")
    return [path]


def recycle_tree(doc: dict[str, Any], file: Path) -> tuple[str, dict[str, Any]]:
    """The GP tree of an apex.recycle request (the Watchtower's, for a slot that died) and what provenance keeps of
    it; a request that does not validate against apexctl/schemas/recycle.schema.json is a SchemaError naming the
    file and the field."""
    from apexctl.schemas.json_schema import validation_error

    problem = validation_error(doc, "recycle")
    if problem is not None:
        raise SchemaError(f"{safe(file)}: --seed-dna: not a valid {RECYCLE_SCHEMA} request ({safe(problem)})")
    dna = doc["dna"]
    provenance = {
        "file": str(file),
        "sha256": io.sha256_file(file),
        **{k: doc[k] for k in ("slot", "symbol", "reason", "time", "ledger", "run_id")},
        "model_id": dna["model_id"],
        "bundle": dna["bundle"],
        "record": dna["record"],
    }
    return json.dumps(dna["gp_tree"]), provenance


def load_seeds(path: str | Path, terminals: Sequence[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """The normalized GP JSON texts of a --seed-dna file or folder, checked against the allowed feature terminals
    (each file read with a size bound, strictly parsed, then validated by the Rust loader, whose errors name the
    node), and the apex.recycle requests among them (their tree is the DNA; what they were is kept as provenance)."""
    texts = []
    requests = []
    for file in _tree_files(Path(path)):
        text = read_tree_text(file, "--seed-dna")
        what = f"an '{GP_SCHEMA}' document or an '{RECYCLE_SCHEMA}' request for --seed-dna"
        doc = io.parse_json(text, str(file), what)
        if isinstance(doc, dict) and doc.get("schema") == RECYCLE_SCHEMA:
            text, provenance = recycle_tree(doc, file)
            requests.append(provenance)
            doc = doc["dna"]["gp_tree"]
        if not isinstance(doc, dict) or doc.get("schema") != GP_SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise SchemaError(
                f"{safe(file)}: --seed-dna: not an '{GP_SCHEMA}' document or an '{RECYCLE_SCHEMA}' request "
                f"(schema: {safe(found)!r})"
            )
        try:
            texts.append(_core.gp_validate(text, list(terminals)))
        except DataError as exc:
            raise InputError(f"{safe(file)}: --seed-dna: {' '.join(str(exc).split())}") from None
    return texts, requests


@dataclass(frozen=True)
class Terminals:
    """The feature terminals GP may use, extra window lengths, and trees the initial population starts from."""

    features: list[str]
    windows: list[int]
    seeds: list[str]
    #: The apex.recycle requests --seed-dna named (provenance: which death the run answers).
    requests: list[dict[str, Any]] = field(default_factory=list)


def terminals_for(config: EvolveConfig, market: Market) -> Terminals:
    """All features, or the causal parents' (--causal) with their lags as windows and lag(feature, k) seed trees."""
    features = list(market.names)
    windows: list[int] = []
    seeds: list[str] = []
    if config.dual:
        from apexctl.forge.dual import sim_feature_names

        computed = set(sim_feature_names(**market.sim_options()))
        features = [n for n in features if n in computed]
        if not features:
            raise InputError(
                f"{io.describe(config.features)}: none of its columns is a feature the simulator computes "
                f"({', '.join(sorted(computed))}); --dsg needs bar features from `apexctl features --grain 1m`"
            )
    if config.causal is not None:
        from apexctl.forge.causal import load_causal

        doc = load_causal(config.causal)
        name = safe(io.describe(config.causal))
        if not doc.parents:
            raise InputError(f"{name}: lists no causal parents; evolve without --causal, or rerun `apexctl causal`")
        missing = sorted({p.feature for p in doc.parents if p.feature not in market.names})
        if missing:
            raise InputError(
                f"{name}: causal parent(s) {', '.join(map(safe, missing))} are not columns of "
                f"{safe(io.describe(config.features))}; run `apexctl causal` on this features table"
            )
        outside = sorted({p.feature for p in doc.parents if p.feature not in features})
        if outside:
            raise InputError(
                f"{name}: causal parent(s) {', '.join(map(safe, outside))} are not features the simulator computes "
                "(--dsg trades the trees there); give `apexctl causal` --features the simulator computes"
            )
        too_long = sorted({p.lag for p in doc.parents if p.lag > MAX_WINDOW})
        if too_long:
            raise InputError(
                f"{name}: causal lag(s) {', '.join(map(str, too_long))} exceed {MAX_WINDOW} rows, the longest window "
                "a GP tree may use; rerun `apexctl causal` with a smaller --tau-max"
            )
        parents = list(doc.parents)
        features = list(dict.fromkeys(p.feature for p in parents))
        windows = sorted({p.lag for p in parents if p.lag > 0})
        for parent in parents:
            leaf: dict[str, Any] = {"feature": parent.feature}
            root = {"op": "lag", "args": [leaf, {"window": parent.lag}]} if parent.lag > 0 else leaf
            doc_json = json.dumps({"schema": GP_SCHEMA, "version": 1, "features": [parent.feature], "root": root})
            seeds.append(_core.gp_validate(doc_json, features))
    requests: list[dict[str, Any]] = []
    if config.seed_dna is not None:
        dna, requests = load_seeds(config.seed_dna, features)
        seeds = dna + seeds
    return Terminals(features, windows, list(dict.fromkeys(seeds)), requests)
