"""Tiny real inputs for every subcommand (built once per session, in this process): the hardening regression tests
and the option sweep run the commands on them."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from apexctl import _core
from apexctl.forge import io, nets
from apexctl.forge.evolve import EvolveConfig, evolve, write
from apexctl.forge.export import ExportConfig, export
from apexctl.forge.fetch import fetch_sim
from apexctl.forge.maml_data import OUTPUTS as MAML_OUTPUTS
from apexctl.forge.sim import MarketSim
from apexctl.schemas import FEATURES
from tests.cli.test_evolve import bars_with_signal, causal_doc

DERIV_HEADER = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"
TREE = {
    "schema": "apex.gp_tree",
    "version": 1,
    "features": ["clv"],
    "root": {"op": "tanh", "args": [{"op": "ts_zscore", "args": [{"feature": "clv"}, {"window": 5}]}]},
}


@dataclass(frozen=True)
class Tiny:
    """Paths of the tiny inputs; every file here is an input the commands must never change."""

    root: Path
    data: Path  # fetch -o folder: trades/book/bars of 0.15 h of BTCUSDT
    features: Path  # bar features (synthetic, 400 bars, one planted signal)
    csv: Path  # a Bybit derivatives trade CSV
    csv_gz: Path
    causal: Path
    tree: Path  # a GP tree over a feature the simulator computes
    dsg: Path
    evolve_run: Path  # an evolve output folder: hall_of_fame/, generations.parquet, checkpoint/
    hall: Path
    maml: Path
    iel: Path
    bundle: Path
    nexus: Path  # an engine config trading one slot (BTCUSDT) on a launched local venue, its bundle beside it
    ledger: Path  # a ledger `apexctl trade` wrote trading that config for 3 s of a 60x venue (rollback journal)

    def files(self) -> list[Path]:
        """Every input file, for hashing before and after a command."""
        return sorted(p for p in self.root.rglob("*") if p.is_file() and "outputs" not in p.parts)


def build(root: Path) -> Tiny:
    data = root / "data"
    fetch_sim(MarketSim(symbols=("BTCUSDT",), seed=3, hours=0.15), str(data))
    features = root / "features.parquet"
    frame = bars_with_signal(400, edge=0.004, seed=5).rename({"noise_b": "clv"})
    io.write_table(frame, features, schema=FEATURES, producer="test")
    rows = [
        f"1585180{700 + i}.5,BTCUSDT,{'Buy' if i % 2 else 'Sell'},0.5,6634.5,PlusTick,t{i},1,0.5,3317" for i in range(5)
    ]
    text = "\n".join([DERIV_HEADER, *rows]) + "\n"
    csv = root / "BTCUSDT2020-03-25.csv"
    csv.write_text(text)
    csv_gz = root / "BTCUSDT2020-03-26.csv.gz"
    csv_gz.write_bytes(gzip.compress(text.encode()))
    causal = root / "causal.json"
    causal.write_text(json.dumps(causal_doc([("sig", 0), ("noise_a", 2)])))
    tree = root / "tree.json"
    tree.write_text(json.dumps(TREE))
    dsg = root / "dsg.json"
    dsg.write_text(_core.dsg_normalize(None))
    run = root / "evolve"
    config = EvolveConfig(features=str(features), output=run, pop=16, gens=1, seed=2, hall_size=3)
    write(evolve(config), config)
    torch.manual_seed(0)
    maml_card = nets.ModelCard(
        "mlp", {"inputs": 2, "hidden": [4], "outputs": 2}, ["sig", "noise_a"], "maml", outputs=list(MAML_OUTPUTS)
    )
    nets.save_model(root / "maml.pt", nets.build(maml_card), maml_card)
    env = _core.ExecEnv("BTCUSDT", 1, parallel=False)
    observation, actions = list(env.observation_names), list(env.action_names)
    iel_card = nets.ModelCard(
        "mlp", {"inputs": len(observation), "hidden": [4], "outputs": len(actions)}, observation, "iel", outputs=actions
    )
    nets.save_model(root / "iel.pt", nets.build(iel_card), iel_card)
    bundle = root / "bundle"
    export(ExportConfig(output=bundle, hall_of_fame=run / "hall_of_fame", maml=root / "maml.pt", iel=root / "iel.pt"))
    nexus = _tradable(root, tree)
    return Tiny(
        root, data, features, csv, csv_gz, causal, tree, dsg, run, run / "hall_of_fame", root / "maml.pt",
        root / "iel.pt", bundle, nexus, _ledger(root, nexus),
    )  # fmt: skip


def _tradable(root: Path, tree: Path) -> Path:
    """A bundle the live engine can feed (its tree reads `clv`, which the streaming features compute) and a config
    trading it on a local venue that `apexctl trade` launches."""
    hall = root / "trade-hall"
    hall.mkdir()
    (hall / "001.json").write_text(tree.read_text())
    entry = {"rank": 1, "file": "001.json", "size": 4, "height": 3, "train": {}, "held_out": {}}
    index = {"schema": "apex.hall_of_fame", "version": 1, "symbol": "BTCUSDT", "features": ["clv"], "entries": [entry]}
    (hall / "index.json").write_text(json.dumps(index))
    export(
        ExportConfig(output=root / "trade-bundle", hall_of_fame=hall, iel=root / "iel.pt", symbol="BTCUSDT", slot="a")
    )
    config = root / "nexus.toml"
    config.write_text(
        '[venue]\nkind = "local"\n\n[engine]\nbar = "1m"\nstatus_every = "200ms"\n\n'
        '[[slot]]\nname = "btc-a"\nsymbol = "BTCUSDT"\ncapital = 200\nbundle = "trade-bundle"\n'
    )
    return config


def _ledger(root: Path, nexus: Path) -> Path:
    """A real ledger: the tradable config run for 3 s on a 60x local venue, copied (SQLite backup) into a file in
    rollback-journal mode, so that reading it creates no -wal/-shm file beside it (the sweep checks that no input
    changes)."""
    config = root / "ledger-run.toml"
    config.write_text(nexus.read_text().replace('kind = "local"', 'kind = "local"\nspeed = 60\nseed = 2'))
    run = root.parent / f"{root.name}-trade"  # outside the inputs: the sweep copies only the ledger
    command = [sys.executable, "-m", "apexctl", "trade", "--config", str(config), "--out", str(run), "--duration", "3s"]
    result = subprocess.run(command, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    ledger = root / "ledger.sqlite"
    with sqlite3.connect(run / "ledger.sqlite") as source, sqlite3.connect(ledger) as copy:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")
    config.unlink()
    return ledger
