"""The run's artifacts: hall_of_fame/, generations.parquet, pareto.parquet and their charts, published together."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from apexctl.forge import io, outputs, plots
from apexctl.forge.evolve.config import EvolveConfig
from apexctl.forge.evolve.loop import Result
from apexctl.schemas.reports import HALL_OF_FAME_SCHEMA, HALL_OF_FAME_VERSION, HallOfFame
from apexctl.schemas.tables import GENERATIONS, PARETO


def _pareto_frame(front: Sequence[dict[str, Any]]) -> pl.DataFrame:
    rows = [
        {
            "rank": e["rank"],
            "tree": json.dumps(e["tree"]),
            "size": e["size"],
            "height": e["height"],
            "train_fitness": e["train"]["fitness"],
            "adversarial_pnl": e["adversarial"]["mean_pnl"],
            "train_pnl": e["train"]["pnl"],
            "held_out_fitness": e["held_out"]["fitness"],
            "held_out_pnl": e["held_out"]["pnl"],
            "held_out_trades": e["held_out"]["trades"],
        }
        for e in front
    ]
    return pl.DataFrame(rows, schema=PARETO.polars_schema())


def write(result: Result, config: EvolveConfig, *, locked: bool = False) -> None:
    """Writes hall_of_fame/ (one GP JSON tree per rank + index.json with both scores), generations.parquet and its
    chart generations.png (and pareto.parquet with pareto.png) into a staging folder beside OUT and publishes it as
    OUT in one atomic exchange, carrying over OUT's checkpoint/, so readers see the previous results or the new ones,
    never a mix. `locked`: the caller holds OUT's lock (see `outputs.lock`)."""
    with outputs.staged_folder(config.output, replace=True, keep=True, locked=locked) as staging:
        fame_dir = staging / "hall_of_fame"
        fame_dir.mkdir()
        index = []
        for entry in result.hall_of_fame:
            name = f"{entry['rank']:03d}.json"
            io.write_json(entry["tree"], fame_dir / name)
            index.append({k: v for k, v in entry.items() if k != "tree"} | {"file": name})
        params = config.to_params()
        index_doc = {
            "schema": HALL_OF_FAME_SCHEMA,
            "version": HALL_OF_FAME_VERSION,
            "symbol": result.market.symbol,
            "train_rows": [0, result.market.train_end],
            "held_out_rows": [result.market.train_end, result.market.rows],
            "features": result.market.names,
            "params": params,
            "bars": result.market.bars,
            "seed_requests": result.seed_requests,
            "entries": index,
        }
        HallOfFame.model_validate(io.jsonable(index_doc))  # the document matches its committed schema
        io.write_json(index_doc, fame_dir / "index.json")
        inputs = {config.features: io.sha256_file(config.features)} if config.features != "-" else {}
        inputs |= {r["file"]: r["sha256"] for r in result.seed_requests}
        io.write_table(
            result.generations,
            staging / "generations.parquet",
            schema=GENERATIONS,
            producer="evolve",
            inputs=inputs,
            params=params,
        )
        plots.generations_png(result.generations, staging / "generations.png")
        if config.dual:
            front = _pareto_frame(result.pareto)
            io.write_table(
                front,
                staging / "pareto.parquet",
                schema=PARETO,
                producer="evolve",
                inputs=inputs,
                params=params,
            )
            plots.pareto_png(front, staging / "pareto.png")
