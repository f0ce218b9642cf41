"""`apexctl export` end to end: evolve -> export -> --check, atomic publishing, and refusal of damaged bundles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from apexctl import _core
from apexctl.errors import DataError, InputError, UsageError
from apexctl.forge import io
from apexctl.forge.export import ExportConfig, check, export
from apexctl.forge.nets import ModelCard, build, load_model, save_model
from apexctl.schemas import FEATURES
from tests.cli.test_evolve import bars_with_signal
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """A 1-generation evolve on a small features table, two checkpoints, and the bundle `apexctl export` made."""
    root = tmp_path_factory.mktemp("export")
    frame = bars_with_signal(300, edge=0.003, seed=11)
    features = root / "features.parquet"
    io.write_table(frame, features, schema=FEATURES, producer="test")
    run = root / "evolve"
    run_cli("evolve", "--features", str(features), "-o", str(run), "--pop", "40", "--gens", "1", check=True)
    torch.manual_seed(0)
    maml = ModelCard(
        "gru",
        {"inputs": 2, "hidden": 3, "outputs": 2},
        ["sig", "volume"],
        "maml",
        window=4,
        outputs=["sign_logit", "size"],
        training_data={"data/maml.parquet": "ab" * 32},
    )
    save_model(root / "maml.pt", build(maml), maml)
    # What `train iel` makes: an MLP from the environment's observation to one logit per action.
    env = _core.ExecEnv("BTCUSDT", 1, parallel=False)
    observation, actions = list(env.observation_names), list(env.action_names)
    iel = ModelCard(
        "mlp", {"inputs": len(observation), "hidden": [4], "outputs": len(actions)}, observation, "iel", outputs=actions
    )
    save_model(root / "iel.pt", build(iel), iel)
    out = root / "bundles" / "SYNUSDT" / "a"
    result = run_cli(
        "export",
        "--hall-of-fame",
        str(run / "hall_of_fame"),
        "--maml",
        str(root / "maml.pt"),
        "--iel",
        str(root / "iel.pt"),
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr.decode()
    return {"root": root, "out": out, "features": features, "frame": frame, "run": run, "stderr": result.stderr}


def test_export_writes_a_complete_manifest(exported):
    out: Path = exported["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"] == "apex.bundle"
    assert manifest["version"] == 1
    assert (manifest["symbol"], manifest["slot"]) == ("SYNUSDT", "a")
    assert manifest["created_by"]["command"].startswith("apexctl export --hall-of-fame")
    assert sorted(p.name for p in out.iterdir()) == ["iel.onnx", "maml.onnx", "manifest.json", "signal.gp.json"]
    assert manifest["files"] == {
        name: io.sha256_file(out / name) for name in ("iel.onnx", "maml.onnx", "signal.gp.json")
    }
    gp, maml, iel = manifest["models"]
    assert (gp["kind"], maml["kind"], iel["kind"]) == ("gp", "onnx", "onnx")
    assert maml["opset"] == iel["opset"] == 17
    assert maml["window"] == 4
    assert maml["inputs"] == [{"name": "features", "shape": [-1, 4, 2]}]
    assert maml["outputs"] == [{"name": "output", "shape": [-1, 2], "meaning": ["sign_logit", "size"]}]
    observation = list(_core.ExecEnv("BTCUSDT", 1).observation_names)
    assert iel["inputs"] == [{"name": "features", "shape": [-1, len(observation)]}]
    assert iel["outputs"][0]["meaning"] == list(_core.ExecEnv("BTCUSDT", 1).action_names)
    assert manifest["features"][: len(gp["features"])] == gp["features"]
    assert set(manifest["features"]) == {*gp["features"], "sig", "volume", *observation}
    assert manifest["training_data"][str(exported["features"])] == io.sha256_file(exported["features"])
    assert manifest["training_data"]["data/maml.parquet"] == "ab" * 32
    index = json.loads((exported["run"] / "hall_of_fame" / "index.json").read_text())
    assert gp["info"]["held_out"]["pnl"] == index["entries"][0]["held_out"]["pnl"]
    json.dumps(manifest, allow_nan=False)  # strict JSON: NaN scores (e.g. an unreached TTT) are written as null
    assert not [p for p in out.parent.iterdir() if p.name != "a"], "no staging folder is left behind"
    assert "verified by the Rust engine" in exported["stderr"].decode()


def test_exported_gp_equals_the_streaming_evaluator_on_the_training_table(exported):
    out: Path = exported["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    frame = exported["frame"]
    # The signal tree reads only its own features; the networks' columns (IEL observations) can be anything here.
    columns = [frame[n].to_numpy() if n in frame.columns else np.zeros(frame.height) for n in manifest["features"]]
    rows = np.column_stack(columns).astype(np.float64)
    got = _core.policy_run(str(out), "signal", rows)[:, 0]
    gp_features = manifest["models"][0]["features"]
    want = _core.gp_stream(
        (exported["run"] / "hall_of_fame" / "001.json").read_text(),
        gp_features,
        [frame[name].to_numpy() for name in gp_features],
    )
    np.testing.assert_array_equal(got, want)


def test_check_passes_then_fails_with_exit_2_naming_the_corrupted_file(exported, tmp_path):
    out: Path = exported["out"]
    ok = run_cli("export", "--check", str(out))
    assert ok.returncode == 0, ok.stderr.decode()
    assert "maml.onnx" in ok.stderr.decode()
    copy = tmp_path / "a"
    copy.mkdir()
    for path in out.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    damaged = bytearray((copy / "iel.onnx").read_bytes())
    damaged[-3] ^= 0xFF
    (copy / "iel.onnx").write_bytes(bytes(damaged))
    bad = run_cli("export", "--check", str(copy))
    assert bad.returncode == 2
    assert '"iel.onnx" has SHA-256' in bad.stderr.decode()
    order = json.loads((out / "manifest.json").read_text())["features"][::-1]
    with pytest.raises(DataError, match="feature order: position 0"):
        check(out, order)


def test_existing_output_is_refused_unless_forced(exported):
    out: Path = exported["out"]
    hof = exported["run"] / "hall_of_fame"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UsageError, match="exists and is not empty; choose another folder or add --force"):
        export(ExportConfig(output=out, hall_of_fame=hof, command="test"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    result = export(ExportConfig(output=out, hall_of_fame=hof, rank=2, force=True, command="test"))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "signal.gp.json"]
    assert result.manifest["models"][0]["info"]["rank"] == 2
    assert not [p for p in out.parent.iterdir() if p.name != "a"]


def test_user_mistakes_are_one_line_errors(exported, tmp_path):
    with pytest.raises(UsageError, match="nothing to export"):
        export(ExportConfig(output=tmp_path / "x"))
    with pytest.raises(UsageError, match="no entry of rank 999"):
        export(ExportConfig(output=tmp_path / "x", hall_of_fame=exported["run"] / "hall_of_fame", rank=999))
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "failed exports leave no staging"
    with pytest.raises(InputError, match=r"no manifest\.json"):
        check(tmp_path)


def test_a_bundle_the_live_engine_cannot_trade_is_refused_by_check(exported, tmp_path):
    """`--check` verifies as the live engine does: a bundle with no GP `signal` (only networks) is exported with a
    note, and `--check` refuses it, as the engine would."""
    from tests.conftest import run_here

    nets = tmp_path / "nets"
    result = run_here("export", "--maml", str(exported["root"] / "maml.pt"), "--symbol", "SYNUSDT", "-o", str(nets))
    assert result.code == 0, result.stderr
    assert "has no 'signal' model (no --hall-of-fame)" in result.stderr
    refused = run_here("export", "--check", str(nets))
    assert refused.code == 2, refused.stderr
    assert "no GP model named 'signal': the live engine trades a bundle's GP signal" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


@pytest.mark.parametrize("symbol", ["btcusdt", "BTC USDT", "", "BTC-USDT"])
def test_a_symbol_the_engine_cannot_trade_is_refused(exported, tmp_path, symbol):
    hof = exported["run"] / "hall_of_fame"
    with pytest.raises(UsageError, match="is not a symbol the live engine trades"):
        export(ExportConfig(output=tmp_path / "x", hall_of_fame=hof, symbol=symbol))
    assert not (tmp_path / "x").exists()


def test_check_refuses_export_options_it_would_ignore(exported):
    from tests.conftest import run_here

    for extra in (["--symbol", "BTCUSDT"], ["--slot", "b"], ["--rank", "2"], ["--force"]):
        result = run_here("export", "--check", str(exported["out"]), *extra)
        assert result.code == 2, (extra, result.stderr)
        assert f"drop the export options ({extra[0]})" in result.stderr, result.stderr


def test_export_into_a_bundle_or_the_current_folder_is_refused(exported, tmp_path, monkeypatch):
    out: Path = exported["out"]
    hof = exported["run"] / "hall_of_fame"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UsageError, match=f"is inside the bundle {out}"):
        export(ExportConfig(output=out / "sub", hall_of_fame=hof))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for target, force in ((".", False), (".", True), (str(here), True), (str(tmp_path), True)):
        with pytest.raises(UsageError, match="is the current folder or holds it"):
            export(ExportConfig(output=Path(target), hall_of_fame=hof, force=force))
    assert list(here.iterdir()) == []


def full_bundle(exported, out: Path) -> Path:
    """A bundle of all three models at `out`, exported with paths relative to the fixture's folder (the module's own
    bundle is replaced by an earlier test)."""
    from tests.conftest import run_here

    root = exported["root"]
    hof = exported["run"].relative_to(root) / "hall_of_fame"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = run_here("export", "--hall-of-fame", str(hof), "--maml", "maml.pt", "--iel", "iel.pt", "-o", str(out))
    assert result.code == 0, result.stderr
    return out


def test_provenance_paths_are_absolute(exported, tmp_path):
    """The manifest names where its models came from so they can be found again: from any folder."""
    gp, maml, _ = json.loads((full_bundle(exported, tmp_path / "a") / "manifest.json").read_text())["models"]
    assert gp["info"]["hall_of_fame"] == str(exported["run"] / "hall_of_fame")
    assert maml["info"]["checkpoint"] == str(exported["root"] / "maml.pt")


def test_an_edited_network_feature_order_is_refused(exported, tmp_path):
    """A network's input is one tensor: swapping two names of its features in the manifest would feed it the wrong
    columns. The order is also recorded in the ONNX file (whose hash the manifest holds), and the engine compares."""
    from tests.conftest import run_here

    copy = full_bundle(exported, tmp_path / "a")
    assert run_here("export", "--check", str(copy)).code == 0
    manifest = json.loads((copy / "manifest.json").read_text())
    maml = manifest["models"][1]
    assert maml["name"] == "maml"
    assert maml["features"] == ["sig", "volume"]
    maml["features"] = ["volume", "sig"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = run_here("export", "--check", str(copy))
    assert result.code == 2, result.stderr
    assert 'the ONNX file was exported with ["sig", "volume"]' in result.stderr, result.stderr


DEFAULT_OPTIONS = {"rv_bars": 30, "vmd_modes": 3, "vmd_window": 64}


def test_the_bundle_records_the_bars_its_models_learned_from(exported, tmp_path):
    """The live engine computes its features on these bars; a model made on others is refused at export."""
    from tests.conftest import run_here

    manifest = json.loads((exported["out"] / "manifest.json").read_text())
    assert manifest["bars"] == {"bar_seconds": 60, "options": DEFAULT_OPTIONS}, "the hall's; the MAML card has none"
    # A model that predates the record is said to take the others' bars; the IEL network reads no bar features.
    said = " ".join(exported["stderr"].decode().split())
    assert (
        f"note: --maml {exported['root'] / 'maml.pt'} records no bars (it predates the record): the bundle says it "
        f"learned from 1m bars (rv_bars 30, vmd_modes 3, vmd_window 64), as --hall-of-fame "
        f"{exported['run'] / 'hall_of_fame'} records" in said
    ), said
    assert "--iel" not in said, said
    hall = tmp_path / "hall_of_fame"
    shutil.copytree(exported["run"] / "hall_of_fame", hall)
    net, card = load_model(exported["root"] / "maml.pt")
    card.bars = {"bar_seconds": 300, "options": DEFAULT_OPTIONS}
    save_model(tmp_path / "maml5.pt", net, card)
    out = tmp_path / "bundle"
    result = run_here("export", "--hall-of-fame", str(hall), "--maml", str(tmp_path / "maml5.pt"), "-o", str(out))
    assert result.code == 2, result.stderr
    assert result.stderr.strip() == (
        f"apexctl: error: --maml {tmp_path / 'maml5.pt'}: learned from 5m bars (rv_bars 30, vmd_modes 3, "
        f"vmd_window 64), but --hall-of-fame {hall} from 1m bars (rv_bars 30, vmd_modes 3, vmd_window 64); the "
        "engine computes one set of bar features for a bundle: export models made from the same features table"
    )
    assert not out.exists()
    index = json.loads((hall / "index.json").read_text())
    index["bars"]["options"] = {"rv_bars": "ten"}
    (hall / "index.json").write_text(json.dumps(index))
    result = run_here("export", "--hall-of-fame", str(hall), "-o", str(out))
    assert result.code == 2, result.stderr
    assert f'{hall / "index.json"}: "bars": invalid type: string "ten", expected usize' in result.stderr
    for options, needle in (
        ({"rv": 3}, "unknown field `rv`, expected one of `rv_bars`"),
        ({"rv_bars": 0}, "options: rv_bars must be in [1, 10000], got 0"),
        ({"rv_bars": 10.0}, "invalid type: floating point `10.0`"),
    ):
        index["bars"]["options"] = options
        (hall / "index.json").write_text(json.dumps(index))
        result = run_here("export", "--hall-of-fame", str(hall), "-o", str(out))
        assert result.code == 2, result.stderr
        assert result.stderr.startswith(f'apexctl: error: {hall / "index.json"}: "bars": '), result.stderr
        assert needle in result.stderr
    index["bars"] = {"bar_seconds": 7, "options": {}}
    (hall / "index.json").write_text(json.dumps(index))
    result = run_here("export", "--hall-of-fame", str(hall), "-o", str(out))
    assert "bar_seconds must be a whole number of seconds dividing a day (the engine's bars), got 7" in result.stderr
    assert not out.exists()
    index["bars"] = {"bar_seconds": 60, "options": {"rv_bars": 30}}
    (hall / "index.json").write_text(json.dumps(index))
    assert run_here("export", "--hall-of-fame", str(hall), "-o", str(out)).code == 0
    assert json.loads((out / "manifest.json").read_text())["bars"]["options"] == DEFAULT_OPTIONS, "defaults filled in"
    # A hall of fame from before the record, with a 5m MAML: the bundle takes the MAML's bars for both, and says so.
    del index["bars"]
    (hall / "index.json").write_text(json.dumps(index))
    legacy = tmp_path / "legacy"
    result = run_here("export", "--hall-of-fame", str(hall), "--maml", str(tmp_path / "maml5.pt"), "-o", str(legacy))
    assert result.code == 0, result.stderr
    assert json.loads((legacy / "manifest.json").read_text())["bars"]["bar_seconds"] == 300
    said = " ".join(result.stderr.split())
    assert f"note: --hall-of-fame {hall} records no bars (it predates the record)" in said, said
    assert "learned from 5m bars" in said, said


def test_check_of_a_manifest_names_its_folder(exported):
    from tests.conftest import run_here

    manifest = exported["out"] / "manifest.json"
    result = run_here("export", "--check", str(manifest))
    assert result.code == 2, result.stderr
    assert result.stderr.strip() == (
        f"apexctl: error: {manifest}: give the bundle folder, {exported['out']}, not its manifest.json"
    )


def test_a_bundle_inside_the_evolve_run_or_an_index_for_the_hall_is_refused(exported, tmp_path):
    """evolve publishes its run folder as a whole: a bundle written inside it would go at the next --resume."""
    from tests.conftest import run_here

    run = tmp_path / "run"
    shutil.copytree(exported["run"], run)
    for target in (run / "hall_of_fame" / "sub", run / "bundle"):
        result = run_here("export", "--hall-of-fame", str(run / "hall_of_fame"), "-o", str(target))
        assert result.code == 2, result.stderr
        assert f"-o {target}: is inside {run if target.parent == run else run / 'hall_of_fame'}, which" in result.stderr
        assert not target.exists()
    index = run / "hall_of_fame" / "index.json"
    result = run_here("export", "--hall-of-fame", str(index), "-o", str(tmp_path / "b"))
    assert result.code == 2, result.stderr
    assert f"--hall-of-fame {index}: give the hall_of_fame folder, {index.parent}, not its index.json" in result.stderr
