"""The examples folder stays true: its DSG documents load and make the markets they describe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from apexctl import _core
from tests.conftest import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def spread_and_volatility(dsg: Path) -> tuple[float, float]:
    out = _core.sim_run("BTCUSDT", dsg_json=dsg.read_text(), seed=3, hours=1.0)
    book = out["book"]
    close = out["bars"]["close"]
    # Top of book from the published snapshot/deltas is what features measure; bar returns give the volatility.
    ret = np.diff(np.log(close))
    trades = out["trades"]
    half_spread = np.abs(np.diff(trades["price"]))[np.diff(trades["side"]) != 0]
    assert len(book["ts_us"]) > 0
    return float(np.median(half_spread)), float(ret.std())


def test_example_dsgs_make_the_markets_they_describe():
    thin = spread_and_volatility(EXAMPLES / "dsg" / "thin-jumpy.json")
    calm = spread_and_volatility(EXAMPLES / "dsg" / "deep-calm.json")
    assert thin[0] > calm[0], f"thin market should have wider spreads: {thin} vs {calm}"
    assert thin[1] > calm[1], f"thin market should be more volatile: {thin} vs {calm}"


def test_pipeline_example_commands_run(tmp_path):
    data = tmp_path / "data"
    run_cli(
        "fetch", "--source", "sim", "--symbols", "BTCUSDT", "--hours", "0.2", "--seed", "1", "-o", str(data), check=True
    )
    run_cli(
        "simulate",
        "--strategy",
        "ma_crossover:3:12",
        "--hours",
        "0.2",
        "--dsg",
        str(EXAMPLES / "dsg" / "thin-jumpy.json"),
        "-o",
        str(tmp_path / "sim"),
        check=True,
    )


def test_the_pipeline_script_refuses_a_span_its_causal_step_cannot_use(tmp_path):

    script = Path(__file__).resolve().parents[2] / "scripts" / "pipeline.sh"
    for hours in ("1", "abc", "169"):
        result = subprocess.run(
            ["bash", str(script), str(tmp_path / "out")],
            env={"PATH": "/usr/bin:/bin", "APEX_HOURS": hours},
            capture_output=True,
            check=False,
            timeout=30,
        )
        assert result.returncode == 2, result.stderr.decode()
        assert result.stderr.decode().strip() == (
            f"pipeline: error: APEX_HOURS={hours}: give 2 to 168 hours (the causal step needs 240 usable 1m bars)"
        )
        assert not (tmp_path / "out").exists()
