"""The Ray layer: batches come back in item order, the same with and without a cluster; chimera and evolve with
--ray give what they give locally."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from apexctl.forge import io
from apexctl.forge.cluster import Cluster
from apexctl.forge.cmaes import ChimeraConfig, fit
from apexctl.forge.evolve import EvolveConfig, evolve
from apexctl.forge.fetch import fetch_sim
from apexctl.forge.sim import MarketSim
from apexctl.schemas import FEATURES
from tests.cli.test_evolve import bars_with_signal


def _scaled(shared: dict, batch: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(index, value * shared["factor"]) for index, value in batch]


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    # Workers import this test module (for `_scaled`) and apexctl from the checkout.
    paths = os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).resolve().parents[2])])
    options = {
        "num_cpus": 2,
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": paths}},
    }
    try:
        ray.init(**options)
    except Exception:
        # On a heavily loaded machine Ray's control store can miss its start-up deadline once; try again.
        ray.shutdown()
        ray.init(**options)
    yield ray
    ray.shutdown()


def test_local_map_keeps_item_order_across_batches():
    items = [(i, i * i) for i in range(23)]
    with Cluster(None) as cluster:
        assert not cluster.distributed
        shared = cluster.put({"factor": 3})
        assert cluster.map(_scaled, shared, items, batch_size=5) == [(i, 3 * i * i) for i in range(23)]
        assert cluster.map(_scaled, shared, [], batch_size=5) == []


@pytest.mark.slow
def test_ray_map_equals_local_map(ray_local):
    items = [(i, i + 1) for i in range(50)]
    with Cluster(None) as local:
        want = local.map(_scaled, local.put({"factor": 2}), items, batch_size=7)
    with Cluster("auto") as cluster:
        assert cluster.distributed
        got = cluster.map(_scaled, cluster.put({"factor": 2}), items, batch_size=7)
    assert got == want
    assert ray_local.is_initialized(), "a cluster someone else started is left running"


@pytest.mark.slow
def test_evolve_with_ray_has_the_same_hall_of_fame(ray_local, tmp_path):
    features = tmp_path / "f.parquet"
    io.write_table(bars_with_signal(400, edge=0.002, seed=3), features, schema=FEATURES, producer="test")
    common = {"features": str(features), "pop": 120, "gens": 3, "seed": 5}
    local = evolve(EvolveConfig(output=tmp_path / "local", **common))
    distributed = evolve(EvolveConfig(output=tmp_path / "ray", ray="auto", **common))
    # JSON text compares NaN (a target never reached) as equal, bit for bit on the rest.
    assert json.dumps(distributed.hall_of_fame, default=str) == json.dumps(local.hall_of_fame, default=str)
    assert distributed.evaluations == local.evaluations
    assert distributed.generations.drop("seconds").equals(local.generations.drop("seconds"))


@pytest.mark.slow
def test_chimera_with_ray_gives_the_same_dsg(ray_local, tmp_path):
    fetch_sim(MarketSim(symbols=("SOLUSDT",), seed=2, hours=0.1), str(tmp_path / "data"))
    config = ChimeraConfig(
        target=str(tmp_path / "data"),
        output=tmp_path / "dsg.json",
        budget=8,
        popsize=4,
        seeds=2,
        hours=0.03,
        seed=1,
        params=("noise.size_lots", "fundamentalist.rate"),
        sensitivity=False,
    )
    local = fit(config)
    distributed = fit(dataclasses.replace(config, ray="auto"))
    assert distributed.dsg == local.dsg
    assert distributed.report["moments"] == local.report["moments"]
    assert distributed.generations.drop("seconds").equals(local.generations.drop("seconds"))
