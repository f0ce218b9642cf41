"""Outputs behind symbolic links: a file or folder output that is a link is written through to its target (as a
shell's `>` does); the link itself stays a link, so `-o /dev/stdout` never replaces the system's link."""

from __future__ import annotations

import os

import polars as pl

from apexctl.forge import io, outputs
from tests.conftest import run_here


def test_a_file_output_that_is_a_link_is_written_through_and_the_link_kept(tiny, tmp_path):
    target = tmp_path / "kept" / "target.parquet"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link.parquet"
    link.symlink_to(target)
    ran = run_here("features", str(tiny.data / "bars.parquet"), "--grain", "1m", "-o", str(link))
    assert ran.code == 0, ran.stderr
    assert link.is_symlink()
    assert link.resolve() == target
    assert pl.read_parquet(target).height > 0
    assert sorted(p.name for p in target.parent.iterdir()) == ["target.parquet"], "no temporary file left beside it"


def test_a_folder_output_that_is_a_link_is_published_into_its_target(tmp_path):
    real = tmp_path / "runs" / "2026-12-03"
    real.mkdir(parents=True)
    latest = tmp_path / "latest"
    latest.symlink_to(real, target_is_directory=True)
    ran = run_here("simulate", "--hours", "0.02", "--seed", "3", "-o", str(latest))
    assert ran.code == 0, ran.stderr
    assert latest.is_symlink()
    assert latest.resolve() == real
    assert (real / "summary.json").is_file()
    assert sorted(p.name for p in real.parent.iterdir()) == ["2026-12-03"], "no staging folder or lock left"


def test_written_path_follows_a_chain_of_links_and_leaves_plain_paths_alone(tmp_path):
    end = tmp_path / "end.json"
    (tmp_path / "middle.json").symlink_to(end)
    (tmp_path / "first.json").symlink_to(tmp_path / "middle.json")
    assert outputs.written_path(tmp_path / "first.json") == end
    assert outputs.written_path(tmp_path / "plain.json") == tmp_path / "plain.json"
    with io.atomic_output(tmp_path / "first.json") as handle:
        handle.write(b"{}")
    assert end.read_bytes() == b"{}"
    assert os.path.islink(tmp_path / "first.json")
    assert os.path.islink(tmp_path / "middle.json")
