"""Adversarial fitness: flat and constant-long trees against the built-in strategies, determinism, and the parity of
GP signals inside the simulator with batch evaluation over the `features` of the simulator's recorded trades and
book."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from apexctl import _core
from apexctl.errors import DataError, InputError
from apexctl.forge.dual import adversarial_fitness, sim_feature_names, sim_feature_warmup

SYMBOL = "SOLUSDT"
HOURS = 0.2


def tree(root: dict, features: list[str] | None = None) -> str:
    return json.dumps({"schema": "apex.gp_tree", "version": 1, "features": features or [], "root": root})


FLAT = tree({"const": 0.0})
LONG = tree({"const": 1.0})
CLV = tree(
    {
        "op": "tanh",
        "args": [
            {"op": "div", "args": [{"feature": "clv"}, {"op": "ts_std", "args": [{"feature": "ret"}, {"window": 5}]}]}
        ],
    },
    ["clv", "ret"],
)


def test_flat_tree_earns_exactly_zero_and_long_tree_is_buy_and_hold():
    seeds = [1, 2]
    fit = adversarial_fitness([FLAT, LONG], None, seeds, HOURS, SYMBOL)
    assert fit.pnl.shape == (2, 2)
    assert fit.mean_pnl.shape == (2,)
    assert np.all(fit.pnl[0] == 0.0)
    assert np.all(fit.trades[0] == 0)
    for s, seed in enumerate(seeds):
        hold = _core.sim_run(SYMBOL, seed=seed, hours=HOURS, strategy="buy_and_hold")["strategy"]
        assert fit.pnl[1, s] == hold["pnl"]
        assert fit.max_drawdown[1, s] == hold["max_drawdown"]
        assert fit.trades[1, s] == hold["n_fills"]
    assert fit.mean_pnl[1] == fit.pnl[1].mean()


def test_same_seed_same_result_and_seeds_differ():
    a = adversarial_fitness([CLV], None, [5, 6], HOURS, SYMBOL)
    b = adversarial_fitness([FLAT, CLV], None, [5, 6], HOURS, SYMBOL)
    assert np.array_equal(a.pnl[0], b.pnl[1])
    assert a.trades[0, 0] > 0, "the CLV tree trades"
    assert a.pnl[0, 0] != a.pnl[0, 1]


CLV_RV = tree(
    {
        "op": "tanh",
        "args": [
            {"op": "div", "args": [{"feature": "clv"}, {"op": "lag", "args": [{"feature": "rv"}, {"window": 1}]}]}
        ],
    },
    ["clv", "rv"],
)


#: Book aggregates and trade counts: the simulator streams its L2 messages and trades into the feature engine.
FLOW = tree(
    {
        "op": "tanh",
        "args": [
            {
                "op": "add",
                "args": [
                    {"op": "ts_zscore", "args": [{"feature": "ofi_l5_sum"}, {"window": 4}]},
                    {
                        "op": "sub",
                        "args": [
                            {"op": "div", "args": [{"feature": "buy_volume"}, {"feature": "volume"}]},
                            {"const": 0.5},
                        ],
                    },
                ],
            }
        ],
    },
    ["ofi_l5_sum", "buy_volume", "volume"],
)


#: SHA-256 of every result field of `sim_gp_fitness` for the trees below x seeds 1, 6, 9 (12 minutes of SOLUSDT),
#: computed with the evaluation before the market loop was sped up for issue 14 part 3 (main at 97e00db): the
#: faster market must give the same results bit for bit. Trees that never trade (flat, rv windows longer than the
#: span), one that trades at the first bar (const 1), trees on trades, on the L2 stream and on VMD.
PINNED_FITNESS = "8949c94c9b20ec5cb5a891a5586e1a97f2285fd12fe7ec0619f999ce4484665b"


def test_fitness_is_pinned_bit_for_bit():
    vmd = tree({"op": "sign", "args": [{"feature": "vmd_1"}]}, ["vmd_1"])
    rv_1h = tree({"op": "sign", "args": [{"feature": "rv_1h"}]}, ["rv_1h"])
    trees = [FLAT, LONG, CLV, CLV_RV, FLOW, vmd, rv_1h]
    out = _core.sim_gp_fitness(trees, None, [1, 6, 9], SYMBOL, HOURS, vmd_window=8)
    digest = hashlib.sha256()
    for field in ("pnl", "fees", "max_drawdown", "trades", "ruined", "truncated", "simulated"):
        digest.update(np.ascontiguousarray(out[field]).tobytes())
    assert out["trades"][1].min() > 0, "const 1 trades from the first bar"
    assert out["trades"][0].max() == 0
    assert out["trades"][3].max() == 0
    assert digest.hexdigest() == PINNED_FITNESS


@pytest.mark.parametrize("text", [CLV, CLV_RV, FLOW])
def test_signals_in_the_simulator_equal_batch_evaluation_of_its_recorded_features(text):
    run = _core.sim_gp_run(text, None, 9, SYMBOL, HOURS, rv_bars=3, record_market=True)
    t, b = run["trades"], run["book"]
    updates = _core.features_update({**b, "ts": b["ts_us"] * 1000, "symbol": np.zeros(len(b["ts_us"]), np.uint32)})
    updates.pop("incident_row")
    table = _core.features_bars(
        {**t, "ts": t["ts_us"] * 1000, "symbol": np.zeros(len(t["ts_us"]), np.uint32)},
        interval_ns=60 * 10**9,
        rv_window=3,
        higher_ns=[300 * 10**9, 900 * 10**9, 3600 * 10**9],
        updates=updates,
        vmd_modes=3,
    )
    names = sim_feature_names()
    batch = _core.gp_evaluate([text], names, [table[name] for name in names])[0]
    assert run["signals"].shape == (len(table["ts"]),)
    assert np.array_equal(run["signals"], batch)
    assert np.any(batch != 0.0)


def test_bad_tree_names_its_index_and_feature():
    bad = tree({"feature": "tfi_1s"}, ["tfi_1s"])
    with pytest.raises(DataError, match=r"trees\[1\].*tfi_1s"):
        adversarial_fitness([FLAT, bad], None, [0], HOURS, SYMBOL)
    with pytest.raises(DataError, match=r"trees\[0\].*vmd_3"):
        adversarial_fitness([tree({"feature": "vmd_3"}, ["vmd_3"])], None, [0], HOURS, SYMBOL, vmd_modes=2)
    with pytest.raises(InputError, match="DSG"):
        adversarial_fitness([FLAT], '{"schema": "nope"}', [0], HOURS, SYMBOL)
    names = sim_feature_names()
    for name in ("rv_1h", "turnover", "n_trades", "buy_volume", "ofi_l1_sum", "spread_bps_mean", "vmd_3"):
        assert name in names
    assert sim_feature_names(vmd_modes=0)[-1] == "spread_bps_mean"


def test_warmup_covers_every_feature():
    warmup = sim_feature_warmup()
    assert list(warmup) == sim_feature_names()
    assert warmup["close"] == 0
    assert warmup["rv"] == 30
    assert warmup["ret_5m"] == 9
    assert warmup["rv_1h"] == 31 * 60 - 1
    assert sim_feature_warmup(rv_bars=5)["rv_5m"] == 6 * 5 - 1
    assert warmup["ofi_l1_sum"] == warmup["n_trades"] == 0
    assert warmup["vmd_1"] == 63
    assert sim_feature_warmup(vmd_modes=2, vmd_window=8)["vmd_2"] == 7
