"""`apexctl evolve --resume`: finds its features from any directory, takes them at another path or after stdin when
they are the same table, and refuses a --gens that is not more than the generations already run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from apexctl.forge import io
from apexctl.schemas import FEATURES
from tests.cli.test_evolve import bars_with_signal, causal_doc
from tests.conftest import run_cli, run_here

#: Small runs: the point is where the table comes from, not what evolves.
RUN = ("--pop", "12", "--seed", "3")


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "start" / "F.parquet"
    path.parent.mkdir()
    io.write_table(bars_with_signal(300, edge=0.003, seed=11), path, schema=FEATURES, producer="test")
    return path


def one_error(code: int, stderr: str) -> str:
    """The run failed with exit 2, no traceback, and its stderr ends in one error line; that line."""
    assert code == 2, stderr
    assert "Traceback" not in stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("apexctl: error: "), stderr
    return line


def state(out: Path) -> dict:
    return json.loads((out / "checkpoint" / "state.json").read_text())


def results(out: Path) -> tuple[list[str], list[dict]]:
    trees = [p.read_text() for p in sorted((out / "hall_of_fame").glob("0*.json"))]
    return trees, json.loads((out / "hall_of_fame" / "index.json").read_text())["entries"]


def test_a_relative_features_path_is_recorded_absolute_and_resumes_from_another_directory(table, tmp_path, monkeypatch):
    # The other inputs a resumed run reads again (here --causal) are recorded absolute too.
    (table.parent / "causal.json").write_text(json.dumps(causal_doc([("sig", 0), ("noise_a", 2)])))
    monkeypatch.chdir(table.parent)
    ran = run_here("evolve", "--features", "F.parquet", "--causal", "causal.json", *RUN, "--gens", "1", "-o", "../run")
    assert ran.code == 0, ran.stderr
    out = tmp_path / "run"
    assert state(out)["config"]["features"] == str(table.resolve())
    assert state(out)["config"]["causal"] == str((table.parent / "causal.json").resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    ran = run_here("evolve", "--resume", "--gens", "2", "-o", "../run")
    assert ran.code == 0, ran.stderr
    assert state(out)["generation"] == 2


def test_resume_takes_the_same_table_at_another_path_and_refuses_another_table(table, tmp_path):
    whole = tmp_path / "whole"
    assert run_here("evolve", "--features", str(table), *RUN, "--gens", "2", "-o", str(whole)).code == 0
    parts = tmp_path / "parts"
    assert run_here("evolve", "--features", str(table), *RUN, "--gens", "1", "-o", str(parts)).code == 0
    moved = tmp_path / "moved.parquet"
    shutil.move(table, moved)
    # Without --features: the recorded path, said to be the checkpoint's, and what to do instead.
    line = one_error(*_ran(run_here("evolve", "--resume", "--gens", "2", "-o", str(parts))))
    assert f"{table.resolve()}: no such file" in line
    assert "the features path the checkpoint recorded" in line
    assert "--features" in line
    # Another table at --features: refused, naming it; the checkpoint is untouched.
    other = tmp_path / "other.parquet"
    io.write_table(bars_with_signal(300, edge=0.003, seed=12), other, schema=FEATURES, producer="test")
    before = (parts / "checkpoint" / "state.json").read_bytes()
    line = one_error(*_ran(run_here("evolve", "--resume", "--gens", "2", "--features", str(other), "-o", str(parts))))
    assert f"{other}: not the features table the run started from" in line
    assert (parts / "checkpoint" / "state.json").read_bytes() == before
    # The same table at its new path: used, and the run ends as the uninterrupted one did.
    ran = run_here("evolve", "--resume", "--gens", "2", "--features", str(moved), "-o", str(parts))
    assert ran.code == 0, ran.stderr
    assert results(parts) == results(whole)
    assert state(parts)["config"]["features"] == str(moved.resolve())


def test_a_run_fed_from_stdin_resumes_with_the_same_table_as_a_file(table, tmp_path):
    whole = tmp_path / "whole"
    assert run_here("evolve", "--features", str(table), *RUN, "--gens", "2", "-o", str(whole)).code == 0
    parts = tmp_path / "parts"
    ran = run_cli("evolve", "--features", "-", *RUN, "--gens", "1", "-o", str(parts), stdin=table.read_bytes())
    assert ran.returncode == 0, ran.stderr.decode()
    assert state(parts)["features_sha256"] == io.sha256_file(table)
    line = one_error(*_ran(run_here("evolve", "--resume", "--gens", "2", "-o", str(parts))))
    assert "read its features from stdin" in line
    assert "--features" in line
    ran = run_here("evolve", "--resume", "--gens", "2", "--features", str(table), "-o", str(parts))
    assert ran.code == 0, ran.stderr
    assert results(parts) == results(whole)


@pytest.mark.parametrize("gens", ["1", "2"])
def test_resume_refuses_gens_not_above_the_generations_already_run(table, tmp_path, gens):
    out = tmp_path / "run"
    assert run_here("evolve", "--features", str(table), *RUN, "--gens", "2", "-o", str(out)).code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    line = one_error(*_ran(run_here("evolve", "--resume", "--gens", gens, "-o", str(out))))
    assert f"--gens {gens}: the run in {out} already has 2 generations" in line
    assert "--gens is the total to reach, give more than 2" in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before, "nothing was republished"
    ran = run_here("evolve", "--resume", "--gens", "3", "-o", str(out))
    assert ran.code == 0, ran.stderr
    assert state(out)["generation"] == 3


def test_resume_refuses_settings_it_would_ignore(table, tmp_path):
    """A resumed run keeps the settings it started with: --pop 16 or --seed 4 given with --resume would otherwise
    be dropped without a word, the run going on at pop 8."""
    out = tmp_path / "run"
    assert run_here("evolve", "--features", str(table), *RUN, "--gens", "1", "-o", str(out)).code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    line = one_error(*_ran(run_here("evolve", "--resume", "--gens", "2", "--pop", "16", "--seed", "4", "-o", str(out))))
    assert line == (
        f"apexctl: error: --resume continues {out} with the settings it started with: drop --pop, --seed (only "
        "--gens, --features and --ray may be given)"
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before, "nothing was republished"


def _finished(table: Path, out: Path, *extra: str) -> None:
    ran = run_here("evolve", "--features", str(table), *RUN, "--gens", "1", "-o", str(out), *extra)
    assert ran.code == 0, ran.stderr


@pytest.mark.parametrize("other", ["seed", "table", "seed, no hall of fame"])
def test_resume_refuses_a_checkpoint_copied_over_another_runs_results(table, tmp_path, other):
    """A checkpoint copied from run B into run A's finished folder was resumed as B and replaced A's hall of fame.
    Without A's hall_of_fame/ its generations.parquet (which records A's settings) was overwritten with B's rows."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    _finished(table, mine)
    if other == "seed, no hall of fame":
        shutil.rmtree(mine / "hall_of_fame")
    if other.startswith("seed"):  # the same table, another setting
        _finished(table, theirs, "--seed", "4")
    else:  # the same settings, another table (nothing in the settings tells them apart)
        other_table = tmp_path / "other" / "F.parquet"
        other_table.parent.mkdir()
        io.write_table(bars_with_signal(300, edge=0.003, seed=12), other_table, schema=FEATURES, producer="test")
        _finished(other_table, theirs)
    shutil.rmtree(mine / "checkpoint")
    shutil.copytree(theirs / "checkpoint", mine / "checkpoint")
    before = {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    line = one_error(*_ran(run_here("evolve", "--resume", "--gens", "2", "-o", str(mine))))
    checkpoint = mine / "checkpoint" / "state.json"
    assert line.startswith(f"apexctl: error: {checkpoint}: not of the run whose results {mine} holds"), line
    assert f"it records output {theirs}" in line
    assert ("seed 4 (the results: 3)" if other.startswith("seed") else "another features table (sha256 ") in line
    assert f"-o {theirs}" in line
    assert "empty folder" in line
    assert {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()} == before, "the results were kept"


def test_resume_refuses_an_older_checkpoint_of_the_same_run(table, tmp_path):
    """The checkpoint of a 1-generation run copied over a 3-generation run of the same settings was resumed: its
    generations.parquet went from 4 rows to 3 and the hall of fame of 3 generations was replaced, exit 0."""
    older, newer = tmp_path / "older", tmp_path / "newer"
    _finished(table, older)
    assert run_here("evolve", "--features", str(table), *RUN, "--gens", "3", "-o", str(newer)).code == 0
    shutil.copyfile(older / "checkpoint" / "state.json", newer / "checkpoint" / "state.json")
    before = {p: p.read_bytes() for p in newer.rglob("*") if p.is_file()}
    line = one_error(*_ran(run_here("evolve", "--resume", "--gens", "2", "-o", str(newer))))
    checkpoint = newer / "checkpoint" / "state.json"
    assert line.startswith(f"apexctl: error: {checkpoint}: at generation 1, but "), line
    assert f"{newer / 'generations.parquet'} already holds generation 3" in line
    assert "replace those results with older ones" in line
    assert {p: p.read_bytes() for p in newer.rglob("*") if p.is_file()} == before, "the results were kept"


def test_a_run_folder_moved_as_a_whole_still_resumes(table, tmp_path):
    whole = tmp_path / "whole"
    assert run_here("evolve", "--features", str(table), *RUN, "--gens", "2", "-o", str(whole)).code == 0
    _finished(table, tmp_path / "parts")
    moved = tmp_path / "renamed"
    shutil.move(tmp_path / "parts", moved)
    assert state(moved)["config"]["output"] == str(tmp_path / "parts")
    ran = run_here("evolve", "--resume", "--gens", "2", "-o", str(moved))
    assert ran.code == 0, ran.stderr
    assert results(moved) == results(whole)
    # A checkpoint copied into an empty folder of its own replaces nothing: that run goes on there.
    fork = tmp_path / "fork"
    fork.mkdir()
    shutil.copytree(moved / "checkpoint", fork / "checkpoint")
    ran = run_here("evolve", "--resume", "--gens", "3", "-o", str(fork))
    assert ran.code == 0, ran.stderr
    assert state(fork)["generation"] == 3


def _ran(ran) -> tuple[int, str]:
    return ran.code, ran.stderr
