"""`apexctl venue` as a user runs it: every option documented, bad input as one line and exit 2, the ready file,
`--duration`, and SIGTERM reaching the venue."""

from __future__ import annotations

import json
import os
import signal
import socket
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
        (["--duration", "-1"], '--duration: "-1" is not a duration (e.g. 500ms, 5s, 10m, 1h, 1d)'),
        (["--duration", "inf"], '--duration: "inf" is not a duration'),
        (["--duration", "0s"], '--duration: "0s" must be a positive duration'),
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
    assert not ready.exists(), "the ready file of a stopped venue names a dead port and holds the keys"


def test_duration_ends_the_venue(tmp_path):
    started = time.monotonic()
    result = run_cli("venue", "--duration", "1500ms", "--symbols", "SOLUSDT", "--ready", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr.decode()
    assert "--duration elapsed" in result.stdout.decode()
    assert time.monotonic() - started < 30


def test_port_in_use_is_a_bad_option_naming_port():
    # Any listener will do: the venue must refuse the port it cannot have as the user's mistake (exit 2), not as a
    # failure of its own (exit 1).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("venue", "--port", str(port), "--duration", "2", "--symbols", "SOLUSDT")
    err = result.stderr.decode().strip()
    assert result.returncode == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"apexctl: error: --port {port}: cannot listen on 127.0.0.1:{port}"), err


def test_reject_with_ret_code_0_is_refused(tmp_path):
    faults = tmp_path / "faults.toml"
    faults.write_text("[reject]\nprobability = 0.5\nret_code = 0\n")
    result = run_cli("venue", "--faults", str(faults), "--duration", "1")
    err = result.stderr.decode().strip()
    assert result.returncode == 2, err
    assert len(err.splitlines()) == 1, err
    assert "faults.toml" in err
    assert "[reject] ret_code must be a Bybit error code" in err


def test_ready_and_fault_log_folders_are_created(tmp_path):
    ready = tmp_path / "not" / "yet" / "ready.json"
    fault_log = tmp_path / "also" / "missing" / "faults.jsonl"
    result = run_cli(
        "venue", "--ready", str(ready), "--fault-log", str(fault_log), "--duration", "1", "--symbols", "SOLUSDT"
    )
    assert result.returncode == 0, result.stderr.decode()
    # The ready file was written there, and removed when the venue stopped.
    assert ready.parent.is_dir()
    assert not ready.exists()
    assert fault_log.exists()


@pytest.mark.parametrize("option", ["--ready", "--fault-log"])
def test_an_output_whose_folder_cannot_be_made_is_exit_2_naming_it(tmp_path, option):
    not_a_folder = tmp_path / "plain-file"
    not_a_folder.write_text("")
    result = run_cli("venue", option, str(not_a_folder / "out.json"), "--duration", "1")
    err = result.stderr.decode().strip()
    assert result.returncode == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"apexctl: error: {option} "), err


def test_the_venue_stops_when_apexctl_is_killed_and_a_killed_venue_is_named(tmp_path):
    """SIGKILL of `apexctl venue` cannot be forwarded: the binary sees its launcher gone and stops as on SIGTERM
    (its ready file goes with it). A venue killed under apexctl is one line and exit 1, not 247 and silence."""
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "apexctl", "venue", "--ready", str(ready), "--duration", "60"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(ready.exists, timeout=60)
        rest = json.loads(ready.read_text())["rest"]
        process.kill()
        process.wait(timeout=10)
        wait_for(lambda: not ready.exists(), timeout=10)
        with pytest.raises(requests.ConnectionError):
            requests.get(rest + "/v5/market/time", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
    ready.unlink(missing_ok=True)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(ready.exists, timeout=60)
        child = json.loads(ready.read_text())["pid"]
        os.kill(child, signal.SIGKILL)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, err
    assert err.strip() == "apexctl: error: apex-venue was killed by SIGKILL", err
