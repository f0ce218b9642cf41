"""Depth moments only count the levels the book stream was recorded at: a depth-1 recording of a market shows its
best level exactly as the depth-50 recording does, and has no depth over 5 or 20 levels (NaN, not the best level)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from apexctl import _core
from apexctl.forge import io
from apexctl.forge import moments as mom
from apexctl.forge.cmaes import SimTemplate, dsg_document, dsg_vector, load_target, make_objective, simulate_items
from apexctl.forge.fetch import fetch_sim
from apexctl.forge.sim import MarketSim
from apexctl.schemas.tables import BOOK

NS = 1_000_000_000
DEPTHS = ("depth_l1_log", "depth_l5_log", "depth_l20_log")


def _book(levels: int, seconds: int = 600) -> pl.DataFrame:
    """One snapshot per second of a book with `levels` levels a side (level i holds i + 1 lots of 0.01)."""
    ticks = np.arange(levels)
    rows = []
    for t in range(seconds):
        for side, sign in ((1, -1), (-1, 1)):
            rows.append(
                pl.DataFrame(
                    {
                        "ts": np.full(levels, t * NS, dtype=np.int64),
                        "kind": ["snapshot"] * levels,
                        "side": np.full(levels, side, dtype=np.int8),
                        "price": 100.0 + sign * (0.05 + 0.1 * ticks),
                        "size": 0.01 * (ticks + 1),
                        "update_id": np.full(levels, t + 1),
                        "seq": np.full(levels, t + 1),
                    }
                )
            )
    return pl.concat(rows)


def _trades(seconds: int = 600) -> pl.DataFrame:
    n = seconds
    return pl.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * NS + 1,
            "side": np.where(np.arange(n) % 2 == 0, 1, -1).astype(np.int8),
            "price": np.where(np.arange(n) % 2 == 0, 100.05, 99.95),
            "size": np.full(n, 0.5),
        }
    )


def test_a_one_level_recording_has_the_best_level_depth_and_no_deeper_one():
    deep, shallow = _book(50), _book(1)
    assert mom.held_levels(deep) == 50
    assert mom.held_levels(shallow) == 1
    full = mom.compute(_trades(), deep, None, book_depth=50)
    top = mom.compute(_trades(), shallow, None, book_depth=mom.recorded_depth(shallow))
    assert np.isclose(full["depth_l1_log"], np.log(0.01))
    assert np.isclose(full["depth_l5_log"], np.log(0.15))
    assert np.isclose(full["depth_l20_log"], np.log(2.1))
    assert top["depth_l1_log"] == full["depth_l1_log"], "the best level is the same at both depths"
    assert np.isnan(top["depth_l5_log"]), top
    assert np.isnan(top["depth_l20_log"]), top
    # Everything else is the same market.
    others = [k for k in full if k not in DEPTHS]
    assert np.array_equal([full[k] for k in others], [top[k] for k in others], equal_nan=True)


def test_the_stated_depth_wins_over_a_thin_book():
    """A book recorded at depth 50 that holds 3 levels shows its whole depth: the depth over 20 is those 3."""
    thin = _book(3)
    stated = {"apex.params": {"depth": 50, "source": "sim"}}
    assert mom.recorded_depth(thin, stated) == 50
    assert mom.recorded_depth(thin, {"apex.params": {"source": "file"}}) == 3
    m = mom.compute(_trades(), thin, None, book_depth=mom.recorded_depth(thin, stated))
    assert np.isclose(m["depth_l20_log"], np.log(0.06))
    m = mom.compute(_trades(), thin, None, book_depth=2)
    assert np.isclose(m["depth_l1_log"], np.log(0.01))
    assert np.isnan(m["depth_l5_log"])


def test_a_snapshot_thinned_before_the_first_sample_still_shows_its_depth():
    """The held levels count each snapshot message's levels a side, not only the levels standing at the depth
    samples: a 7-level snapshot whose deeper levels are deleted before the first 5 s sample was recorded at 7 or
    more; and a book given in pieces counts them as it does whole."""
    snapshot = _book(7, seconds=1)
    best = _book(1, seconds=1)["price"].to_list()
    deletes = snapshot.filter(pl.col("price").is_in(best).not_()).with_columns(
        ts=pl.lit(NS // 2, dtype=pl.Int64),
        kind=pl.lit("delta"),
        size=pl.lit(0.0),
        update_id=pl.lit(2, dtype=pl.Int64),
        seq=pl.lit(2, dtype=pl.Int64),
    )
    later = _book(1, seconds=60).filter(pl.col("ts") > 0).with_columns(kind=pl.lit("delta"))
    book = pl.concat([snapshot, deletes, later])
    assert mom.held_levels(book) == 7
    assert mom.held_levels(pl.concat([_book(1, seconds=1), later])) == 1
    whole = mom.book_view(book)
    assert whole is not None
    pieces = mom.BookPass((0, int(book["ts"].max())), (2, 2), mom.MomentConfig())
    for lo, hi in ((0, NS), (NS, 30 * NS), (30 * NS, 61 * NS)):
        pieces.push(book.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi)))
    view = pieces.finish()
    assert view.held_levels() == 7
    assert view.levels.equals(whole.levels)
    assert np.array_equal(view.bid, whole.bid, equal_nan=True)
    assert np.array_equal(view.ask, whole.ask, equal_nan=True)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[int, Path]:
    """The same simulated market recorded at depth 1 and 50 (what `apexctl fetch --source sim --depth` writes)."""
    root = tmp_path_factory.mktemp("depths")
    for depth in (1, 50):
        fetch_sim(MarketSim(symbols=("BTCUSDT",), seed=3, hours=0.1, depth=depth), str(root / f"d{depth}"))
    return {depth: root / f"d{depth}" for depth in (1, 50)}


def test_chimera_target_at_depth_1_has_no_deep_depth_moments_and_the_same_best_level(recordings, tmp_path):
    config = mom.MomentConfig()
    shallow = load_target(str(recordings[1]), None, config)
    deep = load_target(str(recordings[50]), None, config)
    assert (shallow.book_depth, deep.book_depth) == (1, 50)
    assert np.isfinite(deep.moments["depth_l20_log"])
    assert deep.moments["depth_l20_log"] > deep.moments["depth_l1_log"]
    assert shallow.moments["depth_l1_log"] == deep.moments["depth_l1_log"]
    assert np.isnan(shallow.moments["depth_l5_log"])
    assert np.isnan(shallow.moments["depth_l20_log"])
    # Without the table's stated depth (a book written by another tool), the book's own levels say it.
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("trades", "book"):
        frame = pl.read_parquet(recordings[1] / f"{name}.parquet")
        frame.write_parquet(bare / f"{name}.parquet")
    assert "apex.params" not in io.read_table(bare / "book.parquet", BOOK).metadata
    inferred = load_target(str(bare), None, config)
    assert inferred.book_depth == 1
    assert np.isnan(inferred.moments["depth_l5_log"])
    assert inferred.moments["depth_l1_log"] == deep.moments["depth_l1_log"]


def test_candidates_count_no_more_levels_than_the_target_and_the_objective_leaves_the_rest_out(recordings):
    config = mom.MomentConfig()
    target = load_target(str(recordings[1]), None, config)
    dsg = json.dumps(dsg_document(dsg_vector(_core.dsg_normalize(None))))
    template = SimTemplate("BTCUSDT", 0.05, moments=config, target_depth=target.book_depth, threads=1)
    rows = simulate_items(template, [(dsg, 1), (dsg, 2)])
    full = simulate_items(SimTemplate("BTCUSDT", 0.05, moments=config, threads=1), [(dsg, 1)])[0]
    for row in rows:
        assert np.isfinite(row["depth_l1_log"])
        assert np.isnan(row["depth_l5_log"])
        assert np.isnan(row["depth_l20_log"])
    assert rows[0]["depth_l1_log"] == full["depth_l1_log"]
    names = config.names()
    objective = make_objective(names, target.moments, rows)
    used = dict(zip(names, objective.used(), strict=True))
    assert used["depth_l1_log"]
    assert not used["depth_l5_log"]
    assert not used["depth_l20_log"]
