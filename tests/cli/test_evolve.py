"""`apexctl evolve`: finds a planted edge that survives the held-out span, claims none on noise, is deterministic."""

from __future__ import annotations

import dataclasses
import gc
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from apexctl.errors import InputError
from apexctl.forge import io
from apexctl.forge import surrogate as sae
from apexctl.forge.backtest import BacktestParams
from apexctl.forge.evolve import (
    Entry,
    Evaluator,
    EvolveConfig,
    Hall,
    evolve,
    load_checkpoint_config,
    load_market,
    pareto_front,
    terminals_for,
    write,
)
from apexctl.schemas import FEATURES, GENERATIONS, PARETO
from tests.conftest import run_cli

MINUTE = 60 * 10**9


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (IHDR), after checking the signature: the chart is a real image."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def bars_with_signal(n: int, edge: float, seed: int) -> pl.DataFrame:
    """Bars whose next return is `edge` x the feature `sig` (known at the bar's close) plus noise."""
    rng = np.random.default_rng(seed)
    sig = rng.normal(0.0, 1.0, n)
    noise = rng.normal(0.0, 0.001, n)
    ret = np.concatenate([[0.0], edge * np.clip(sig[:-1], -2, 2) + noise[1:]])
    close = 100.0 * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pl.DataFrame(
        {
            "ts": 1_700_000_000 * 10**9 + np.arange(n, dtype=np.int64) * MINUTE,
            "symbol": "SYNUSDT",
            "interval": "1m",
            "open": open_,
            "high": np.maximum(open_, close) * 1.0003,
            "low": np.minimum(open_, close) * 0.9997,
            "close": close,
            "volume": rng.uniform(1, 10, n),
            "sig": sig,
            "noise_a": rng.normal(0, 1, n),
            "noise_b": rng.normal(0, 1, n),
        }
    )


def run_evolve(tmp_path, frame: pl.DataFrame, name: str, *extra: str) -> dict:
    features = tmp_path / f"{name}.parquet"
    io.write_table(frame, features, schema=FEATURES, producer="test")
    out = tmp_path / name
    args = ("evolve", "--features", str(features), "-o", str(out), "--pop", "150", "--gens", "4", *extra)
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads((out / "hall_of_fame" / "index.json").read_text())


def test_planted_edge_is_found_and_holds_out_of_sample(tmp_path):
    index = run_evolve(tmp_path, bars_with_signal(900, edge=0.004, seed=1), "planted")
    # The table records no grain: its one-minute bars are read from their times; no options: the defaults.
    assert index["bars"] == {"bar_seconds": 60, "options": {"rv_bars": 30, "vmd_modes": 3, "vmd_window": 64}}
    best = index["entries"][0]
    assert best["train"]["pnl"] > 0
    assert best["held_out"]["pnl"] > 0, best
    assert "sig" in json.dumps(json.loads((tmp_path / "planted" / "hall_of_fame" / "001.json").read_text()))
    generations = io.read_table(tmp_path / "planted" / "generations.parquet", GENERATIONS).frame
    assert generations.height == 5
    assert generations["best"].is_sorted(), "the best training fitness never gets worse (the best survive)"
    assert png_size(tmp_path / "planted" / "generations.png") == (800, 450)


def test_no_edge_is_claimed_on_noise(tmp_path):
    index = run_evolve(tmp_path, bars_with_signal(900, edge=0.0, seed=2), "noise")
    held = [e["held_out"]["pnl"] for e in index["entries"]]
    assert np.mean(held) <= 0.0, held


def test_same_seed_same_hall_of_fame(tmp_path):
    frame = bars_with_signal(400, edge=0.002, seed=3)
    a = run_evolve(tmp_path, frame, "a", "--seed", "5")
    b = run_evolve(tmp_path, frame, "b", "--seed", "5")
    assert a["entries"] == b["entries"]
    a_trees = sorted((tmp_path / "a" / "hall_of_fame").glob("0*.json"))
    assert [p.read_text() for p in a_trees] == [(tmp_path / "b" / "hall_of_fame" / p.name).read_text() for p in a_trees]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop("close"), b"bar-grain features"),
        (lambda f: pl.concat([f, f.with_columns(symbol=pl.lit("OTHER"))]), b"--symbol"),
        (lambda f: f.head(20), b"too few"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, mutate, message):
    features = tmp_path / "f.parquet"
    io.write_table(mutate(bars_with_signal(300, 0.0, 4)), features, schema=FEATURES, producer="test")
    result = run_cli("evolve", "--features", str(features), "-o", str(tmp_path / "out"), "--pop", "10", "--gens", "1")
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- surrogate, seeds, hall, causal, resume


def write_features(tmp_path, frame: pl.DataFrame, name: str = "feats") -> str:
    path = tmp_path / f"{name}.parquet"
    io.write_table(frame, path, schema=FEATURES, producer="test")
    return str(path)


def tree_text(root: dict) -> str:
    features = sorted(set(re.findall(r'"feature": "(\w+)"', json.dumps(root))))
    return json.dumps({"schema": "apex.gp_tree", "version": 1, "features": features, "root": root})


def hall_texts(out) -> list[str]:
    return [p.read_text() for p in sorted((out / "hall_of_fame").glob("0*.json"))]


class RecordingEvaluator(Evaluator):
    """The real evaluator, remembering every tree it truly scored."""

    def __init__(self, market, params):
        super().__init__(market, params)
        self.seen: set[str] = set()

    def score(self, trees, span):
        self.seen.update(trees)
        return super().score(trees, span)


def test_surrogate_ranks_honestly_and_still_finds_the_edge(tmp_path):
    features = write_features(tmp_path, bars_with_signal(900, edge=0.004, seed=1))
    config = EvolveConfig(features=features, output=tmp_path / "sae", pop=300, gens=5, seed=2, surrogate=True)
    evaluators = []

    def make(market, params):
        evaluators.append(RecordingEvaluator(market, params))
        return evaluators[0]

    result = evolve(config, make_evaluator=make)
    log = result.generations
    assert log["eval_fraction"][0] == 1.0, "generation 0 is fully evaluated"
    assert log["estimated"][0] == 0
    later = log.filter(pl.col("generation") > 0)
    assert later["surrogate_spearman"].null_count() == 0
    assert later["surrogate_spearman"].mean() > 0.3, later
    assert (later["estimated"] > later["evaluations"]).all(), "most new trees kept the surrogate's estimate"
    best = result.hall_of_fame[0]
    assert "sig" in json.dumps(best["tree"])
    assert best["held_out"]["pnl"] > 0, best
    seen = {json.dumps(json.loads(t), sort_keys=True) for t in evaluators[0].seen}
    for entry in result.hall_of_fame:
        assert json.dumps(entry["tree"], sort_keys=True) in seen, "the hall of fame takes truly evaluated trees only"


def test_fraction_widens_when_the_surrogate_is_poor(tmp_path):
    # No edge: fitness is noise, the model cannot rank it, so the evaluated share must grow from the base.
    features = write_features(tmp_path, bars_with_signal(500, edge=0.0, seed=9))
    config = EvolveConfig(
        features=features, output=tmp_path / "w", pop=200, gens=4, seed=1, surrogate=True, surrogate_min_corr=0.95
    )
    log = evolve(config).generations
    assert log["eval_fraction"].to_list()[:2] == [1.0, 0.02]
    assert log["eval_fraction"][-1] > 0.02


def test_survivors_are_parked_outside_the_collector_only_while_the_run_lasts(tmp_path):
    features = write_features(tmp_path, bars_with_signal(300, edge=0.0, seed=6))
    frozen: list[int] = []
    config = EvolveConfig(features=features, output=tmp_path / "gc", pop=60, gens=2, seed=1)
    evolve(config, lambda row: frozen.append(gc.get_freeze_count()))
    assert len(frozen) == 3
    assert min(frozen) > 60, "each generation's survivors are frozen"
    assert gc.get_freeze_count() == 0, "a finished run leaves the collector as it found it"

    def fail_in_generation_1(row):
        if row["generation"] == 1:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        evolve(dataclasses.replace(config, output=tmp_path / "gc2"), fail_in_generation_1)
    assert gc.get_freeze_count() == 0, "a failed run leaves the collector as it found it"


def test_seed_dna_starts_from_the_tree_and_rejects_unknown_features(tmp_path):
    features = write_features(tmp_path, bars_with_signal(600, edge=0.004, seed=4))
    good = tmp_path / "good.json"
    good.write_text(tree_text({"op": "tanh", "args": [{"op": "mul", "args": [{"feature": "sig"}, {"const": 3.0}]}]}))
    out = tmp_path / "seeded"
    result = run_cli("evolve", "--features", features, "-o", str(out), "--pop", "40", "--gens", "1",
                     "--seed-dna", str(good))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    log = io.read_table(out / "generations.parquet", GENERATIONS).frame
    index = json.loads((out / "hall_of_fame" / "index.json").read_text())
    seed_fitness = Evaluator(load_market(features, None, 0.7), BacktestParams()).score([good.read_text()], (0, 420))
    assert log["best"][0] >= seed_fitness[0]["fitness"] > 0.5
    assert index["entries"][0]["train"]["fitness"] >= seed_fitness[0]["fitness"]
    # A hall_of_fame/ folder seeds too.
    again = run_cli("evolve", "--features", features, "-o", str(tmp_path / "again"), "--pop", "40", "--gens", "1",
                    "--seed-dna", str(out / "hall_of_fame"))  # fmt: skip
    assert again.returncode == 0, again.stderr.decode()
    bad = tmp_path / "bad.json"
    bad.write_text(tree_text({"op": "neg", "args": [{"feature": "ofi_l9"}]}))
    failed = run_cli("evolve", "--features", features, "-o", str(tmp_path / "x"), "--pop", "10", "--gens", "1",
                     "--seed-dna", str(bad))  # fmt: skip
    assert failed.returncode == 2
    message = failed.stderr.decode().strip()
    assert str(bad) in message
    assert "ofi_l9" in message
    assert "\n" not in message, message
    assert not (tmp_path / "x").exists()


def test_hall_of_fame_dedups_by_signal_keeping_the_smaller_tree(tmp_path):
    market = load_market(write_features(tmp_path, bars_with_signal(200, edge=0.0, seed=5)), None, 0.7)
    sig = {"feature": "sig"}
    plain = tree_text(sig)
    same = [
        tree_text({"op": "neg", "args": [{"op": "neg", "args": [sig]}]}),
        tree_text({"op": "max", "args": [sig, sig]}),
    ]
    other = tree_text({"op": "tanh", "args": [sig]})
    hall = Hall(5, market, market.names)
    hall.update([Entry(same[0], 0.9, 3, 2), Entry(other, 0.7, 2, 1)])
    hall.update([Entry(same[1], 0.9, 3, 1), Entry(plain, 0.9, 1, 0)])
    assert [e.text for e in hall.entries] == [plain, other]
    small = Hall(1, market, market.names)
    small.update([Entry(other, 0.95, 2, 1), Entry(plain, 0.9, 1, 0)])
    assert [e.text for e in small.entries] == [other]


def causal_doc(parents: list[tuple[str, int]]) -> dict:
    settings = {
        "target": "fwd_return_1m", "target_source": "close over 1 rows", "tau_min": 0, "tau_max": 5,
        "test": "parcorr", "pc_alpha": 0.05, "alpha": 0.01, "fdr": "none", "features": [f for f, _ in parents],
        "symbols": ["SYNUSDT"], "seed": 1, "jobs": 1, "samples_used": 800, "min_samples": 200,
        "candidate_links": 10, "link_assumptions": "parents of the target", "tigramite_version": "5",
        "input": "feats.parquet", "input_sha256": "0" * 64,
    }  # fmt: skip
    links = [{"feature": f, "lag": lag, "p_value": 0.001, "value": 0.3} for f, lag in parents]
    return {"schema": "apex.causal", "version": 1, "target": "fwd_return_1m", "parents": links, "settings": settings}


def test_causal_restricts_terminals_to_the_parents(tmp_path):
    features = write_features(tmp_path, bars_with_signal(600, edge=0.004, seed=6))
    causal = tmp_path / "causal.json"
    causal.write_text(json.dumps(causal_doc([("sig", 0), ("noise_a", 7)])))
    config = EvolveConfig(features=features, output=tmp_path / "c", pop=120, gens=2, seed=3, causal=str(causal))
    result = evolve(config)
    used = set()
    for entry in result.hall_of_fame:
        used |= set(entry["tree"]["features"])
    assert used <= {"sig", "noise_a"}, used
    assert "sig" in used
    seeds = terminals_for(config, load_market(features, None, 0.7)).seeds
    assert [json.loads(s)["root"] for s in seeds] == [
        {"feature": "sig"},
        {"op": "lag", "args": [{"feature": "noise_a"}, {"window": 7}]},
    ]
    # A parent the table lacks is an error naming it (issue #10 item 20), never silently dropped.
    causal.write_text(json.dumps(causal_doc([("sig", 0), ("not_here", 1)])))
    failed = run_cli("evolve", "--features", features, "-o", str(tmp_path / "x"), "--causal", str(causal),
                     "--pop", "10", "--gens", "1")  # fmt: skip
    assert failed.returncode == 2
    assert b"not_here" in failed.stderr
    assert str(causal).encode() in failed.stderr


def test_resume_gives_the_same_hall_of_fame_as_an_uninterrupted_run(tmp_path):
    features = write_features(tmp_path, bars_with_signal(500, edge=0.003, seed=7))
    whole = EvolveConfig(features=features, output=tmp_path / "whole", pop=120, gens=4, seed=4, surrogate=True)
    write(evolve(whole), whole)
    first = dataclasses.replace(whole, output=tmp_path / "parts", gens=2)
    write(evolve(first), first)
    assert json.loads((tmp_path / "parts" / "checkpoint" / "state.json").read_text())["generation"] == 2
    # The rest in another process: the checkpoint alone carries the run over.
    rest = run_cli("evolve", "--resume", "--gens", "4", "-o", str(tmp_path / "parts"))
    assert rest.returncode == 0, rest.stderr.decode()
    assert hall_texts(tmp_path / "whole") == hall_texts(tmp_path / "parts")
    a = json.loads((tmp_path / "whole" / "hall_of_fame" / "index.json").read_text())["entries"]
    b = json.loads((tmp_path / "parts" / "hall_of_fame" / "index.json").read_text())["entries"]
    assert a == b
    logs = [io.read_table(tmp_path / d / "generations.parquet", GENERATIONS).frame for d in ("whole", "parts")]
    assert logs[0].drop("seconds").equals(logs[1].drop("seconds"))
    assert logs[0]["estimated"].sum() > 0, "the surrogate took part, so its rows were carried over too"
    names = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert names == ["checkpoint", "generations.parquet", "generations.png", "hall_of_fame"]
    refused = run_cli("evolve", "--features", features, "--gens", "1", "-o", str(tmp_path / "parts"))
    assert refused.returncode == 2
    assert b"--resume" in refused.stderr


def test_dual_fitness_screens_the_simulator_and_writes_the_pareto_front(tmp_path):
    from apexctl.forge.dual import sim_feature_names

    frame = bars_with_signal(300, edge=0.004, seed=8).rename({"sig": "clv", "noise_a": "ret"})
    features = write_features(tmp_path, frame)
    out = tmp_path / "dual"
    config = EvolveConfig(
        features=features, output=out, pop=80, gens=2, seed=3, surrogate=True, dsg="default",
        sim_seeds=(1,), sim_hours=0.1, sim_symbol="SOLUSDT", hall_size=8,
    )  # fmt: skip
    result = evolve(config)
    write(result, config)
    log = result.generations
    assert log["best_adversarial"].null_count() == 0
    assert log["estimated"][1:].sum() > 0, "the surrogate kept most new trees away from the simulator"
    assert (log["evaluations"][1:] < 80).all()
    allowed = set(sim_feature_names())
    for entry in result.hall_of_fame:
        assert set(entry["tree"]["features"]) <= allowed
        assert "mean_pnl" in entry["adversarial"]
    pareto = io.read_table(out / "pareto.parquet", PARETO).frame
    assert pareto.height >= 1
    assert png_size(out / "pareto.png") == (650, 500)
    assert png_size(out / "generations.png") == (800, 450)
    points = list(zip(pareto["train_fitness"], pareto["adversarial_pnl"], strict=True))
    for i, (f, a) in enumerate(points):
        for j, (g, b) in enumerate(points):
            assert i == j or not (g >= f and b >= a and (g > f or b > a)), "a front member is dominated"
    index = json.loads((out / "hall_of_fame" / "index.json").read_text())
    assert all("adversarial" in e for e in index["entries"])
    # NSGA-II's crowding distances travel in the checkpoint: a resumed dual run continues identically.
    first = dataclasses.replace(config, output=tmp_path / "parts", gens=1)
    evolve(first)
    resumed = evolve(load_checkpoint_config(tmp_path / "parts", 2), resume=True)
    assert [e["tree"] for e in resumed.hall_of_fame] == [e["tree"] for e in result.hall_of_fame]
    assert [e["tree"] for e in resumed.pareto] == [e["tree"] for e in result.pareto]


def test_pareto_front_keeps_only_non_dominated_entries():
    points = [(1, 5), (2, 4), (2, 3), (0, 6), (0.5, 4), (3, 1)]
    entries = [Entry(f"t{i}", f, 1, 0, a) for i, (f, a) in enumerate(points)]
    assert [e.text for e in pareto_front(entries)] == ["t5", "t1", "t0", "t3"]


def test_a_large_first_generation_is_screened_after_a_random_warm_up(tmp_path, monkeypatch):
    monkeypatch.setattr(sae, "WARMUP_ROWS", 120)
    features = write_features(tmp_path, bars_with_signal(500, edge=0.004, seed=10))
    config = EvolveConfig(features=features, output=tmp_path / "warm", pop=400, gens=1, seed=2, surrogate=True)
    log = evolve(config).generations
    first = log.row(0, named=True)
    assert first["estimated"] > 0, "the model fitted on the warm-up sample screened the rest of generation 0"
    assert 120 < first["evaluations"] < 400
    assert first["surrogate_spearman"] is not None


def recycle_request(tree: dict) -> dict:
    """An apex.recycle request as the Watchtower writes one (made by hand; it validates against its schema)."""
    return {
        "schema": "apex.recycle",
        "version": 1,
        "slot": "btc-a",
        "symbol": "BTCUSDT",
        "reason": "equity 3.10 below the minimum order's 5.00",
        "time": "2026-11-30T08:00:00Z",
        "ts_exchange": 1_796_025_600_000_000_000,
        "ledger": "runs/trade/ledger.sqlite",
        "run_id": 1,
        "equity": 3.1,
        "threshold": 5.0,
        "dna": {
            "model_id": "0123456789abcdef" * 4,
            "bundle": "runs/pipeline/bundles/BTCUSDT/a",
            "label": "rank 1",
            "gp_tree": tree,
            "record": {"growth": 0.12, "decisions": 340, "source": "live"},
        },
    }


def test_seed_dna_takes_a_recycling_request_and_records_it(tmp_path):
    features = write_features(tmp_path, bars_with_signal(600, edge=0.004, seed=4))
    tree = json.loads(tree_text({"op": "tanh", "args": [{"op": "mul", "args": [{"feature": "sig"}, {"const": 3.0}]}]}))
    request = tmp_path / "recycle-btc-a-1.json"
    request.write_text(json.dumps(recycle_request(tree)))
    config = EvolveConfig(features=features, output=tmp_path / "unused", pop=40, gens=1, seed_dna=str(request))
    terminals = terminals_for(config, load_market(features, None, 0.7))
    # The initial population starts with the seeds (initial_population), and the request's tree is the seed.
    assert [json.loads(t)["root"] for t in terminals.seeds] == [tree["root"]]
    assert terminals.requests[0]["slot"] == "btc-a"
    out = tmp_path / "seeded"
    result = run_cli("evolve", "--features", features, "-o", str(out), "--pop", "40", "--gens", "1",
                     "--seed-dna", str(request))  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    index = json.loads((out / "hall_of_fame" / "index.json").read_text())
    (recorded,) = index["seed_requests"]
    assert recorded["file"] == str(request)
    assert recorded["sha256"] == io.sha256_file(request)
    assert recorded["model_id"] == "0123456789abcdef" * 4
    assert (recorded["slot"], recorded["symbol"], recorded["run_id"]) == ("btc-a", "BTCUSDT", 1)
    assert index["params"]["seed_dna"] == str(request)
    provenance = io.read_table(out / "generations.parquet", GENERATIONS).metadata[io.META_INPUTS]
    assert provenance[str(request)] == recorded["sha256"]
    log = io.read_table(out / "generations.parquet", GENERATIONS).frame
    seed_fitness = Evaluator(load_market(features, None, 0.7), BacktestParams()).score([json.dumps(tree)], (0, 420))
    assert log["best"][0] >= seed_fitness[0]["fitness"] > 0.5


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["dna"].pop("gp_tree"), "at dna: 'gp_tree' is a required property"),
        (lambda r: r.update(slot=""), "at slot:"),
        (lambda r: r["dna"].update(model_id="XYZ"), "at dna/model_id:"),
        (lambda r: r["dna"].update(gp_tree={"schema": "apex.gp_tree", "version": 1}), "--seed-dna"),
    ],
)
def test_a_broken_recycling_request_is_exit_2_naming_the_file_and_field(tmp_path, change, field):
    features = write_features(tmp_path, bars_with_signal(200, edge=0.004, seed=4))
    request = recycle_request(json.loads(tree_text({"feature": "sig"})))
    change(request)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(request))
    failed = run_cli("evolve", "--features", features, "-o", str(tmp_path / "x"), "--pop", "8", "--gens", "1",
                     "--seed-dna", str(path))  # fmt: skip
    assert failed.returncode == 2
    message = failed.stderr.decode().strip()
    assert "\n" not in message, message
    assert str(path) in message
    assert field in message, message
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("surrogate", [True, False])
def test_a_dual_generation_without_new_trees_goes_on(tmp_path, surrogate):
    """With no crossover and no mutation a generation makes no new trees: nothing to backtest or simulate, and the
    run carries on with the population it has (it crashed building the empty backtest-metrics matrix)."""
    frame = bars_with_signal(300, edge=0.004, seed=8).rename({"sig": "clv", "noise_a": "ret"})
    config = EvolveConfig(
        features=write_features(tmp_path, frame), output=tmp_path / "out", pop=8, gens=2, seed=1, cx_prob=0.0,
        mut_prob=0.0, surrogate=surrogate, dsg="default", sim_seeds=(0,), sim_hours=0.1,
    )  # fmt: skip
    result = evolve(config)
    write(result, config)
    log = result.generations
    assert log["evaluations"].to_list()[1:] == [0, 0]
    assert log["estimated"].to_list()[1:] == [0, 0]
    assert log["best"].n_unique() == 1, "the same trees, the same best"
    assert result.hall_of_fame
    assert result.pareto


def test_the_market_knows_the_bars_of_its_table_and_the_simulator_trades_on_them(tmp_path):
    """A bundle records these bars and the live engine checks them; `--dsg` simulates on bars of the same length."""
    five = bars_with_signal(120, edge=0.0, seed=3).with_columns(
        (pl.col("ts") - pl.col("ts").min()) * 5 + pl.col("ts").min(), interval=pl.lit("5m")
    )
    recorded = tmp_path / "recorded.parquet"
    io.write_table(five, recorded, schema=FEATURES, producer="test", params={"grain": "5m", "rv_bars": 12})
    market = load_market(str(recorded), None, 0.7)
    assert market.bars == {"bar_seconds": 300, "options": {"rv_bars": 12, "vmd_modes": 3, "vmd_window": 64}}
    assert market.sim_options() == {"bar_seconds": 300, "rv_bars": 12, "vmd_modes": 3, "vmd_window": 64}
    # Without a recorded grain the shortest step between bars is the bar, whatever gaps the table has.
    gappy = load_market(write_features(tmp_path, five.filter(pl.int_range(pl.len()) % 7 != 3), "gappy"), None, 0.7)
    assert gappy.bars["bar_seconds"] == 300
    # Without a grain or an interval column, bar times must be whole seconds apart.
    odd = five.with_columns(pl.col("ts") + pl.int_range(pl.len()) * 500_000_000).drop("interval")
    with pytest.raises(InputError, match=r"odd.parquet: cannot tell its bar length \(no grain in its 'apex.params'"):
        load_market(write_features(tmp_path, odd, "odd"), None, 0.7)
    # The grain, the interval column and the bar times must agree.
    for name, frame, params, needle in (
        ("relabelled", five, {"grain": "1m"}, "'apex.params' grain \"1m\" and its 'interval' column \"5m\" disagree"),
        ("update", five, {"grain": "update"}, 'grain "update", not a bar grain (1m, 5m, 15m, 1h)'),
        ("close", five.with_columns(interval=pl.lit("15m")), {}, "bars 5m apart, not a whole number of its 15m bars"),
    ):
        path = tmp_path / f"{name}.parquet"
        io.write_table(frame, path, schema=FEATURES, producer="test", params=params)
        with pytest.raises(InputError, match="re-create it with `apexctl features") as caught:
            load_market(str(path), None, 0.7)
        assert str(caught.value).startswith(f"{path}: "), caught.value
        assert needle in str(caught.value), caught.value
