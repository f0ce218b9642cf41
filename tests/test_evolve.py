"""`apexctl evolve`: finds a planted edge that survives the held-out span, claims none on noise, is deterministic."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from conftest import run_cli

from apexctl.forge import io
from apexctl.schemas import FEATURES, GENERATIONS

MINUTE = 60 * 10**9


def bars_with_signal(n: int, edge: float, seed: int) -> pl.DataFrame:
    """Bars whose next return is `edge` x the feature `sig` (known at the bar's close) plus noise."""
    rng = np.random.default_rng(seed)
    sig = rng.normal(0.0, 1.0, n)
    noise = rng.normal(0.0, 0.001, n)
    ret = np.concatenate([[0.0], edge * np.clip(sig[:-1], -2, 2) + noise[1:]])
    close = 100.0 * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pl.DataFrame(
        {
            "ts": 1_700_000_000 * 10**9 + np.arange(n, dtype=np.int64) * MINUTE,
            "symbol": "SYNUSDT",
            "interval": "1m",
            "open": open_,
            "high": np.maximum(open_, close) * 1.0003,
            "low": np.minimum(open_, close) * 0.9997,
            "close": close,
            "volume": rng.uniform(1, 10, n),
            "sig": sig,
            "noise_a": rng.normal(0, 1, n),
            "noise_b": rng.normal(0, 1, n),
        }
    )


def run_evolve(tmp_path, frame: pl.DataFrame, name: str, *extra: str) -> dict:
    features = tmp_path / f"{name}.parquet"
    io.write_table(frame, features, schema=FEATURES, producer="test")
    out = tmp_path / name
    args = ("evolve", "--features", str(features), "-o", str(out), "--pop", "150", "--gens", "4", *extra)
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads((out / "hall_of_fame" / "index.json").read_text())


def test_planted_edge_is_found_and_holds_out_of_sample(tmp_path):
    index = run_evolve(tmp_path, bars_with_signal(900, edge=0.004, seed=1), "planted")
    best = index["entries"][0]
    assert best["train"]["pnl"] > 0
    assert best["held_out"]["pnl"] > 0, best
    assert "sig" in json.dumps(json.loads((tmp_path / "planted" / "hall_of_fame" / "001.json").read_text()))
    generations = io.read_table(tmp_path / "planted" / "generations.parquet", GENERATIONS).frame
    assert generations.height == 5
    assert generations["best"].is_sorted(), "the best training fitness never gets worse (the best survive)"


def test_no_edge_is_claimed_on_noise(tmp_path):
    index = run_evolve(tmp_path, bars_with_signal(900, edge=0.0, seed=2), "noise")
    held = [e["held_out"]["pnl"] for e in index["entries"]]
    assert np.mean(held) <= 0.0, held


def test_same_seed_same_hall_of_fame(tmp_path):
    frame = bars_with_signal(400, edge=0.002, seed=3)
    a = run_evolve(tmp_path, frame, "a", "--seed", "5")
    b = run_evolve(tmp_path, frame, "b", "--seed", "5")
    assert a["entries"] == b["entries"]
    a_trees = sorted((tmp_path / "a" / "hall_of_fame").glob("0*.json"))
    assert [p.read_text() for p in a_trees] == [(tmp_path / "b" / "hall_of_fame" / p.name).read_text() for p in a_trees]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop("close"), b"bar-grain features"),
        (lambda f: pl.concat([f, f.with_columns(symbol=pl.lit("OTHER"))]), b"--symbol"),
        (lambda f: f.head(20), b"too few"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, mutate, message):
    features = tmp_path / "f.parquet"
    io.write_table(mutate(bars_with_signal(300, 0.0, 4)), features, schema=FEATURES, producer="test")
    result = run_cli("evolve", "--features", str(features), "-o", str(tmp_path / "out"), "--pop", "10", "--gens", "1")
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()
