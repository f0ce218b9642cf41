"""End to end: archive-format files and the simulator through fetch and features, as the pipeline runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from apexctl.forge import io
from apexctl.schemas import BARS, BOOK, FEATURES, TRADES
from tests.conftest import replay_book, run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_archive_sample_through_fetch_file_and_features(tmp_path):
    raw = tmp_path / "raw"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/make_sample.py"),
            "-o",
            str(raw),
            "--hours",
            "0.05",
            "--symbols",
            "ETHUSDT",
        ],
        check=True,
        capture_output=True,
    )
    (archive,) = raw.glob("*_ob200.data.zip")
    (csv,) = raw.glob("*.csv.gz")
    run_cli("fetch", "--source", "file", str(archive), "-o", str(tmp_path / "book.parquet"), check=True)
    run_cli("fetch", "--source", "file", str(csv), "-o", str(tmp_path / "trades.parquet"), check=True)
    book = io.read_table(tmp_path / "book.parquet", BOOK).frame
    trades = io.read_table(tmp_path / "trades.parquet", TRADES).frame
    assert trades["ts"].is_sorted(), "the newest-first CSV comes out in time order"
    replay = replay_book(book)
    assert replay["incidents"] == []
    stats = replay["books"][0]
    assert stats["gaps"] == 0
    assert stats["crossed"] == 0
    messages = book.select("update_id", "kind", "ts").unique().height
    run_cli("features", str(tmp_path / "book.parquet"), "-o", str(tmp_path / "u.parquet"), check=True)
    update = io.read_table(tmp_path / "u.parquet", FEATURES).frame
    assert update.height == messages, "one feature row per book message"
    assert update["mid"].drop_nans().len() == messages
    run_cli(
        "features",
        str(tmp_path / "trades.parquet"),
        str(tmp_path / "book.parquet"),
        "-o",
        str(tmp_path / "bars.parquet"),
        "--grain",
        "1m",
        check=True,
    )
    bars = io.read_table(tmp_path / "bars.parquet", FEATURES).frame
    assert bars.height == 3
    assert abs(bars["volume"].sum() - trades["size"].sum()) < 1e-9


def test_sim_source_writes_real_data_schemas_that_features_accept(tmp_path):
    data = tmp_path / "data"
    result = run_cli("fetch", "--source", "sim", "--symbols", "SOLUSDT,ETHUSDT", "--hours", "0.1", "-o", str(data))
    assert result.returncode == 0, result.stderr.decode()
    book = io.read_table(data / "book.parquet", BOOK)
    bars = io.read_table(data / "bars.parquet", BARS).frame
    assert set(book.instruments()) == {"SOLUSDT", "ETHUSDT"}
    assert bars.height == 12
    replay = replay_book(book.frame)
    assert replay["incidents"] == []
    assert all(b["gaps"] == 0 and b["crossed"] == 0 for b in replay["books"].values())
    again = tmp_path / "again"
    run_cli("fetch", "--source", "sim", "--symbols", "SOLUSDT,ETHUSDT", "--hours", "0.1", "-o", str(again), check=True)
    assert io.read_table(again / "trades.parquet", TRADES).frame.equals(
        io.read_table(data / "trades.parquet", TRADES).frame
    ), "same seed, same market"
    out = tmp_path / "f.parquet"
    run_cli(
        "features",
        str(data / "trades.parquet"),
        str(data / "book.parquet"),
        "-o",
        str(out),
        "--grain",
        "1m",
        check=True,
    )
    frame = io.read_table(out, FEATURES).frame
    assert frame.height == 12
    assert frame["pressure_5_last"].is_not_nan().all()
    bad = run_cli("fetch", "--source", "sim", "--symbols", "DOGEUSDT", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2
    assert b"DOGEUSDT" in bad.stderr
