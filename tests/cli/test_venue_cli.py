"""`apexctl venue` as a user runs it: every option documented, bad input as one line and exit 2, the ready file,
`--duration`, and SIGTERM reaching the venue."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import run_cli
from tests.support.venue_helpers import wait_for


def test_help_documents_every_option():
    result = run_cli("venue", "--help", check=True)
    text = result.stdout.decode()
    for option in (
        "--symbols",
        "--seed",
        "--dsg",
        "--speed",
        "--accounts",
        "--faults",
        "--fault-log",
        "--port",
        "--ready",
        "--duration",
    ):
        assert option in text, option
    assert "Bybit" in text
    assert "127.0.0.1" in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--speed", "0"], "'--speed': 0 is out of range: expected a finite number in (0, 10000]"),
        (["--speed", "nan"], "'--speed': nan is not a finite number"),
        (["--seed", "-1"], "'--seed': -1 is out of range: expected a whole number from 0 to 4294967295"),
        (["--port", "65536"], "'--port': 65536 is out of range"),
        (["--symbols", "DOGEUSDT"], "no instrument preset for DOGEUSDT"),
        (["--accounts", "/nonexistent/accounts.json"], "--accounts"),
        (["--duration", "-1"], "'--duration': -1 is out of range"),
        (["--duration", "inf"], "'--duration': inf is not a finite number"),
        (["--ready", "/"], "--ready /: is a folder; give a file name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle):
    result = run_cli("venue", *args)
    err = result.stderr.decode().strip()
    assert result.returncode == 2, err
    assert needle in err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_bad_files_name_the_file(tmp_path):
    faults = tmp_path / "faults.toml"
    faults.write_text("[drop]\nprobability = 3\n")
    result = run_cli("venue", "--faults", str(faults))
    assert result.returncode == 2
    assert "faults.toml" in result.stderr.decode()
    assert "probability" in result.stderr.decode()
    accounts = tmp_path / "accounts.json"
    accounts.write_text('[{"name": "a", "api_key": "k"}]')
    result = run_cli("venue", "--accounts", str(accounts))
    assert result.returncode == 2
    assert "accounts.json" in result.stderr.decode()


def test_ready_file_duration_and_sigterm(tmp_path):
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "apexctl", "venue", "--speed", "5", "--ready", str(ready), "--duration", "60"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(ready.exists, timeout=60)
        document = json.loads(ready.read_text())
        assert set(document) >= {"rest", "ws_public", "ws_private", "accounts"}
        assert document["rest"].startswith("http://127.0.0.1:")
        assert document["ws_public"].endswith("/v5/public/linear")
        assert document["ws_private"].endswith("/v5/private")
        account = document["accounts"][0]
        assert set(account) == {"name", "api_key", "api_secret"}
        assert (ready.stat().st_mode & 0o777) == 0o600
        assert requests.get(document["rest"] + "/v5/market/time", timeout=5).json()["retCode"] == 0
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "SIGTERM" in out
    # The generated account was printed for the operator.
    assert account["api_key"] in out
    with pytest.raises(requests.ConnectionError):
        requests.get(document["rest"] + "/v5/market/time", timeout=2)


def test_duration_ends_the_venue(tmp_path):
    started = time.monotonic()
    result = run_cli("venue", "--duration", "1.5", "--symbols", "SOLUSDT", "--ready", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr.decode()
    assert "--duration elapsed" in result.stdout.decode()
    assert time.monotonic() - started < 30
