"""Option values that are empty or spelled wrong are named as such, before anything is read or written."""

from __future__ import annotations

import pytest

from tests.conftest import run_here


@pytest.mark.parametrize(
    "args",
    [("features", "", "-o", "f.parquet"), ("causal", "", "-o", "c.json"), ("evolve", "-o", "ev", "--features", "")],
)
def test_an_empty_input_path_is_named_empty_not_the_current_folder(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_here(*args)
    assert ran.code == 2
    assert ran.stderr == ("apexctl: error: an empty path was given where a Parquet file was expected; name the file\n")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("features", "in.parquet", "-o", ""), "'-o' / '--output'"),
        (("fetch", "-o", ""), "'-o' / '--output'"),
        (("evolve", "--features", "f.parquet", "-o", ""), "'-o' / '--output'"),
        (("simulate", "-o", ""), "'-o' / '--output'"),
        (("simulate", "-o", "out", "--dsg", ""), "'--dsg'"),
        (("chimera", "--target", "t.parquet", "-o", ""), "'-o' / '--output'"),
        (("train", "iel", "-o", ""), "'-o' / '--output'"),
        (("export", "--hall-of-fame", "", "-o", "b"), "'--hall-of-fame'"),
        (("export", "--check", ""), "'--check'"),
        (("trade", "--config", ""), "'--config'"),
        (("trade", "--config", "n.toml", "--out", ""), "'--out'"),
        (("venue", "--faults", ""), "'--faults'"),
        (("venue", "--ready", ""), "'--ready'"),
        (("judge", ""), "'LEDGER'"),
        (("judge", "l.sqlite", "--report", "", "-o", "j.json"), "'--report'"),
    ],
)
def test_an_empty_path_option_is_named_empty_not_read_as_the_current_folder(args, option, tmp_path, monkeypatch):
    # Path("") is ".", which the checks after parsing reported as "-o .: is the current folder" or "--config: . is
    # not a file"; nothing is read or written either way.
    monkeypatch.chdir(tmp_path)
    ran = run_here(*args)
    assert ran.code == 2
    assert f"Invalid value for {option}: the value is empty: give a file or folder name" in ran.stderr
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("slot", ["", "  "])
def test_an_empty_slot_name_is_refused_not_replaced_by_the_folder_name(slot, tmp_path):
    ran = run_here("export", "--maml", "x", "--symbol", "BTCUSDT", "--slot", slot, "-o", str(tmp_path / "b"))
    assert ran.code == 2
    assert f"--slot {slot!r} is empty: give the slot a name, or leave --slot out" in ran.stderr
    assert not (tmp_path / "b").exists()


def test_fetch_records_for_at_most_a_day_spelled_as_every_duration(tmp_path):
    out = tmp_path / "rec"
    args = ("fetch", "--source", "bybit", "--symbol", "BTCUSDT", "--record-ws", "-o", str(out))
    ran = run_here(*args, "--duration", "2d")
    assert ran.code == 2
    assert ran.stderr == "apexctl: error: --duration '2d' is longer than the longest accepted run, 1d\n"
    ran = run_here(*args, "--duration", "5 minutes")
    assert ran.code == 2
    assert 'unknown unit " minutes"' in ran.stderr
    assert not out.exists()
