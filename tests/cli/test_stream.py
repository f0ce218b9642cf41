"""The streaming feature engine from Python: the simulator's recorded tables fed message by message through
`_core.BarFeatureEngine` give exactly `apexctl features --grain 1m`; and every feature an exported bundle needs is
one the live side computes (the engine's bar columns or the execution observation)."""

from __future__ import annotations

import heapq
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from apexctl import _core
from apexctl.forge import io
from apexctl.schemas import BOOK, FEATURES, TRADES
from tests.conftest import run_cli

MINUTE = 60 * 10**9
HIGHER = [5 * MINUTE, 15 * MINUTE, 60 * MINUTE]


def decimals(values: np.ndarray) -> int:
    """The fewest decimals on whose grid every value lies (what `features` infers from a table)."""
    for d in range(13):
        scaled = values * 10.0**d
        if np.all(np.abs(scaled - np.round(scaled)) <= np.maximum(np.abs(scaled) * 4 * np.finfo(float).eps, 1e-6)):
            return d
    raise AssertionError("values off every grid")


def events(trades: pl.DataFrame, book: pl.DataFrame):
    """(ts, order, kind, payload) of one symbol's trades and book messages, merged in time order."""
    keys = ["kind", "update_id", "seq", "ts"]
    messages = (
        book.with_columns(message=pl.struct(keys).rle_id())
        .group_by("message", maintain_order=True)
        .agg(
            *(pl.col(k).first() for k in keys),
            pl.struct("side", "price", "size").alias("levels"),
        )
    )
    trade_events = ((t["ts"], 1, "trade", t) for t in trades.iter_rows(named=True))
    book_events = ((m["ts"], 0, "book", m) for m in messages.iter_rows(named=True))
    return heapq.merge(book_events, trade_events, key=lambda e: (e[0], e[1]))


def stream(trades: pl.DataFrame, book: pl.DataFrame, options: dict, end: int) -> tuple[list[str], list]:
    engine = _core.BarFeatureEngine(
        MINUTE,
        price_decimals=decimals(book["price"].drop_nulls().to_numpy()),
        qty_decimals=decimals(book["size"].drop_nulls().to_numpy()),
        higher_ns=HIGHER,
        **options,
    )
    rows = []
    for _, _, kind, e in events(trades, book):
        if kind == "trade":
            rows += engine.on_trade(e["ts"], e["side"], e["price"], e["size"])
        else:
            levels = [lv for lv in e["levels"] if lv["side"] != 0]
            bids = [(lv["price"], lv["size"]) for lv in levels if lv["side"] == 1]
            asks = [(lv["price"], lv["size"]) for lv in levels if lv["side"] == -1]
            rows += engine.on_book(e["ts"], e["kind"], e["update_id"], e["seq"], bids, asks)
    rows += engine.on_clock(end)
    assert engine.late_events == 0
    return engine.names, rows


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("stream") / "data"
    run_cli(
        "fetch",
        "--source",
        "sim",
        "--symbols",
        "SOLUSDT,BTCUSDT",
        "--hours",
        "0.25",
        "--seed",
        "5",
        "-o",
        str(data),
        check=True,
    )
    return data


def test_simulated_tables_streamed_message_by_message_equal_features(market):
    out = market.parent / "bars.parquet"
    options = {"rv_window": 5, "vmd_modes": 2, "vmd_window": 6}
    run_cli(
        "features",
        str(market / "trades.parquet"),
        str(market / "book.parquet"),
        "-o",
        str(out),
        "--grain",
        "1m",
        "--rv-bars",
        "5",
        "--vmd-modes",
        "2",
        "--vmd-window",
        "6",
        check=True,
    )
    batch = io.read_table(out, FEATURES).frame
    trades = io.read_table(market / "trades.parquet", TRADES).frame
    book = io.read_table(market / "book.parquet", BOOK).frame
    for symbol in ("SOLUSDT", "BTCUSDT"):
        expected = batch.filter(pl.col("symbol") == symbol)
        end = int(expected["ts"].max()) + MINUTE
        names, rows = stream(
            trades.filter(pl.col("symbol") == symbol), book.filter(pl.col("symbol") == symbol), options, end
        )
        assert expected.columns == ["ts", "symbol", "interval", *names]
        assert [ts for ts, _ in rows] == expected["ts"].to_list()
        got = np.array([values for _, values in rows])
        want = expected.select(names).to_numpy()
        assert got.view(np.uint64).tolist() == want.view(np.uint64).tolist(), symbol
        for name in ("n_trades", "ofi_l1_sum", "spread_bps_mean", "vmd_2", "clv_5m"):
            assert np.isfinite(expected[name].to_numpy()).any(), name


def test_binding_refuses_bad_messages_with_data_errors():
    engine = _core.BarFeatureEngine(MINUTE, price_decimals=1, qty_decimals=3)
    with pytest.raises(_core.DataError, match="neither 'snapshot' nor 'delta'"):
        engine.on_book(0, "update", 1, 1, [], [])
    with pytest.raises(_core.DataError, match="column 'price'"):
        engine.on_book(0, "snapshot", 1, 1, [(100.05, 1.0)], [])
    with pytest.raises(_core.DataError, match="column 'side'"):
        engine.on_trade(0, 2, 100.0, 1.0)
    engine.on_trade(2 * MINUTE, 1, 100.0, 1.0)
    with pytest.raises(_core.DataError, match="earlier than the previous"):
        engine.on_trade(MINUTE, 1, 100.0, 1.0)
    assert engine.on_book(3 * MINUTE, "snapshot", 1, 1, [(99.9, 1.0)], [(100.1, 2.0)])[0][0] == 2 * MINUTE
    assert engine.update()["mid"] == 100.0
    with pytest.raises(_core.DataError, match="already emitted"):
        engine.on_trade(3 * MINUTE - 1, 1, 100.0, 1.0)
    assert engine.late_events == 1


@pytest.mark.slow
def test_every_feature_a_pipeline_bundle_needs_is_computed_live(tmp_path):
    """fetch (sim) -> features -> evolve -> train maml / iel -> export, as the pipeline does but small: the bundle's
    feature row is a subset of what the live side computes, the engine's bar columns and the execution observation."""
    data = tmp_path / "data"
    run_cli(
        "fetch", "--source", "sim", "--symbols", "BTCUSDT", "--hours", "1", "--seed", "3", "-o", str(data), check=True
    )
    bars = tmp_path / "bars.parquet"
    run_cli(
        "features",
        str(data / "trades.parquet"),
        str(data / "book.parquet"),
        "-o",
        str(bars),
        "--grain",
        "1m",
        check=True,
    )
    run_cli(
        "evolve",
        "--features",
        str(bars),
        "--pop",
        "30",
        "--gens",
        "1",
        "--seed",
        "1",
        "-o",
        str(tmp_path / "evolve"),
        check=True,
    )
    maml = tmp_path / "maml.pt"
    run_cli(
        "train",
        "maml",
        "--features",
        str(bars),
        "--task-bars",
        "10",
        "--horizon",
        "1",
        "--steps",
        "3",
        "--hidden",
        "4",
        "-o",
        str(maml),
        check=True,
    )
    iel = tmp_path / "iel.pt"
    iel_args = ["--episodes", "16", "--envs", "8", "--eval-episodes", "4", "--size", "100", "--horizon-s", "6"]
    run_cli("train", "iel", *iel_args, "--interval-s", "3", "-o", str(iel), check=True)
    bundle = tmp_path / "bundles" / "BTCUSDT" / "a"
    args = ["--hall-of-fame", str(tmp_path / "evolve" / "hall_of_fame"), "--maml", str(maml), "--iel", str(iel)]
    run_cli("export", *args, "-o", str(bundle), check=True)
    manifest = json.loads((bundle / "manifest.json").read_text())

    book = io.read_table(data / "book.parquet", BOOK).frame
    engine = _core.BarFeatureEngine(
        MINUTE,
        price_decimals=decimals(book["price"].drop_nulls().to_numpy()),
        qty_decimals=decimals(book["size"].drop_nulls().to_numpy()),
        higher_ns=HIGHER,
        vmd_modes=3,
    )
    live = set(engine.names) | set(_core.ExecEnv("BTCUSDT", 1).observation_names)
    assert set(manifest["features"]) <= live, set(manifest["features"]) - live
    maml_features = next(m for m in manifest["models"] if m["name"] == "maml")["features"]
    assert {"turnover", "n_trades", "buy_volume", "ofi_l1_sum", "spread_bps_mean"} <= set(maml_features)
