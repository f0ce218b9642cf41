"""The IEL: the Rust execution environment's invariants seen from Python, PPO against the baselines, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from apexctl import _core
from apexctl.forge import nets
from apexctl.forge.iel import IelConfig, train
from tests.conftest import run_cli


def small_env(n: int = 8, side: str = "buy") -> _core.ExecEnv:
    return _core.ExecEnv("BTCUSDT", n, side=side, size_lots=300, horizon_s=12.0, interval_s=3.0, warmup_s=12.0)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_env_conserves_the_parent_and_rewards_sum_to_minus_shortfall(side: str) -> None:
    env = small_env(side=side)
    rng = np.random.default_rng(3)
    obs = env.reset(list(range(8)))
    assert obs.shape == (8, len(env.observation_names))
    assert env.steps == 4
    assert env.action_names == ["aggressive", "passive_touch", "passive_inside", "wait"]
    total = np.zeros(8)
    for k in range(env.steps):
        obs, reward, done, info = env.step(rng.integers(0, 4, size=8))
        total += reward
        assert np.all(info["executed_lots"] + info["remaining_lots"] == 300)
        assert np.all(np.isfinite(obs))
        assert done.all() == (k == env.steps - 1)
    assert np.all(info["remaining_lots"] == 0)
    assert np.all(info["unfilled_lots"] == 0)
    assert np.all(info["maker_lots"] + info["taker_lots"] == 300)
    np.testing.assert_allclose(total, -info["shortfall_bps"], atol=1e-9)
    with pytest.raises(_core.DataError, match="reset it first"):
        env.step(np.zeros(8, dtype=np.int64))


def test_env_is_deterministic_per_seed_and_parallel_equals_sequential() -> None:
    def episode(parallel: bool, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        env = _core.ExecEnv(
            "BTCUSDT", 4, size_lots=300, horizon_s=12.0, interval_s=3.0, warmup_s=12.0, parallel=parallel
        )
        obs = [env.reset(seeds)]
        for k in range(env.steps):
            o, _, _, info = env.step(np.full(4, k % 4, dtype=np.int64))
            obs.append(o)
        return np.stack(obs), info["shortfall_bps"]

    obs_a, is_a = episode(True, [1, 2, 3, 4])
    obs_b, is_b = episode(False, [1, 2, 3, 4])
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(is_a, is_b)
    _, is_c = episode(True, [5, 2, 3, 4])
    assert is_c[0] != is_a[0]
    assert np.array_equal(is_c[1:], is_a[1:])


def test_env_rejects_bad_settings() -> None:
    with pytest.raises(_core.DataError, match="side"):
        _core.ExecEnv("BTCUSDT", 2, side="hold")
    with pytest.raises(_core.DataError, match="preset"):
        _core.ExecEnv("DOGEUSDT", 2)
    with pytest.raises(_core.DataError, match="interval"):
        _core.ExecEnv("BTCUSDT", 2, horizon_s=5.0, interval_s=10.0)
    env = small_env(2)
    env.reset([1, 2])
    with pytest.raises(_core.DataError, match="unknown action"):
        env.step(np.array([0, 7], dtype=np.int64))
    with pytest.raises(_core.DataError, match="seeds"):
        env.reset([1])


def test_trained_policy_is_not_worse_than_the_better_baseline_on_held_out_seeds() -> None:
    # 192 held-out parent orders (2000 lots in 30 s, 10 decisions). Tolerance: the IEL's mean IS minus the better
    # baseline's on the same seeds (paired, so the shared market noise cancels) may exceed 0 by at most one standard
    # error of that paired difference.
    result = train(IelConfig(episodes=640, envs=64, eval_episodes=192, seed=0, references=False))
    report = result.report
    policies = report["policies"]
    assert policies["always_aggressive"]["mean_is_bps"] > 0
    assert policies["always_aggressive"]["maker_fraction"] == 0
    best = report["best_baseline"]
    assert policies[best]["mean_is_bps"] == min(
        policies[b]["mean_is_bps"] for b in ("always_aggressive", "always_passive")
    )
    paired = report["iel_minus_best_baseline"]
    assert paired["mean_bps"] <= paired["se_bps"], report
    assert policies["iel"]["episodes"] == 192


def test_training_is_deterministic_with_a_seed() -> None:
    config = IelConfig(size_lots=300, horizon_s=9.0, interval_s=3.0, episodes=32, envs=16, eval_episodes=8, seed=4)
    a, b = train(config), train(config)
    for key, value in a.policy.state_dict().items():
        assert torch.equal(value, b.policy.state_dict()[key])
    assert a.report["policies"] == b.report["policies"]


def test_cli_writes_a_loadable_model_and_report(tmp_path) -> None:
    out = tmp_path / "iel" / "model.pt"
    args = ["train", "iel", "--episodes", "32", "--envs", "16", "--eval-episodes", "8", "--size", "300"]
    result = run_cli(*args, "--horizon-s", "9", "--interval-s", "3", "--seed", "1", "--side", "Sell", "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    net, card = nets.load_model(out)
    assert card.task == "iel"
    assert card.arch == "mlp"
    assert card.features == list(_core.ExecEnv("BTCUSDT", 1).observation_names)
    assert card.outputs == ["aggressive", "passive_touch", "passive_inside", "wait"]
    assert net(torch.zeros(3, len(card.features))).shape == (3, 4)
    report = json.loads((tmp_path / "iel" / "model.report.json").read_text())
    assert set(report["policies"]) == {"iel", "always_aggressive", "always_passive", "always_passive_inside"}
    assert report["settings"]["size_lots"] == 300
    assert report["settings"]["side"] == "sell", "--side takes any case, as --symbol does"
    assert "train iel" in card.command

    bad = run_cli("train", "iel", "--side", "hold", "-o", str(tmp_path / "x.pt"))
    assert bad.returncode == 2
    assert bad.stderr.decode().strip().count("\n") == 0
    assert "--side" in bad.stderr.decode()
    missing = run_cli("train", "iel", "--dsg", str(tmp_path / "nope.json"), "-o", str(tmp_path / "x.pt"))
    assert missing.returncode == 2
    assert "nope.json" in missing.stderr.decode()


def test_a_bad_configuration_is_refused_before_torch_is_imported() -> None:
    # torch takes seconds to import: `train iel` with a bad option must fail at once.
    code = (
        "import sys\n"
        "from apexctl.errors import UsageError\n"
        "from apexctl.forge.iel import IelConfig\n"
        "config = IelConfig(symbol='NOPE', dsg_json='{}', side='buy', size_lots=10, horizon_s=30, interval_s=3,\n"
        "                   episodes=64, envs=64, eval_episodes=8, seed=0)\n"
        "try:\n"
        "    config.validate()\n"
        "except UsageError as error:\n"
        "    print(error)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "no simulator preset for NOPE" in result.stdout
