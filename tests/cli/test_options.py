"""Options of every command: one that takes a single value is refused when given twice (click kept the last value),
and empty values are named as such."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer

from apexctl import cli
from tests.conftest import run_here


def commands(group: typer.core.TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    """Each runnable command of the tree under `group`, with the words that name it."""
    for name in group.list_commands(None):
        command = group.get_command(None, name)
        if isinstance(command, typer.core.TyperGroup):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def single_value_options() -> list[tuple[tuple[str, ...], str, str]]:
    """(command words, one spelling of the option, all its spellings as the error names them)."""
    return [
        (path, param.opts[0], "/".join(param.opts))
        for path, command in commands(cli._command())
        for param in command.params  # type: ignore[attr-defined]
        if isinstance(param, typer.core.TyperOption) and not (param.multiple or param.count or param.is_flag)
    ]


OPTIONS = single_value_options()


def test_the_tree_has_single_value_options_on_every_command():
    # Guards the parametrisation below against walking an empty tree.
    assert {path for path, _, _ in OPTIONS} == {path for path, _ in commands(cli._command())}
    assert len(OPTIONS) > 60


@pytest.mark.parametrize(("path", "option", "named"), OPTIONS, ids=[f"{' '.join(p)} {o}" for p, o, _ in OPTIONS])
def test_a_single_value_option_given_twice_is_refused_naming_it(path, option, named):
    ran = run_here(*path, option, "1", option, "2")
    assert ran.code == 2
    assert f"{named} is given 2 times, and only the last value would count; give it once" in ran.stderr
    assert ran.stderr.count("\n") == 1


def test_the_two_spellings_of_one_option_count_as_one_option():
    ran = run_here("judge", "-o", "a.json", "--output", "b.json", "x.db")
    assert ran.code == 2
    assert "judge: -o/--output is given 2 times" in ran.stderr


def test_a_flag_given_twice_is_still_a_flag():
    ran = run_here("export", "--force", "--force")
    assert ran.code == 2
    assert "given" not in ran.stderr
    assert "missing -o/--output" in ran.stderr


@pytest.mark.parametrize(
    "args",
    [("features", "", "-o", "f.parquet"), ("causal", "", "-o", "c.json"), ("evolve", "-o", "ev", "--features", "")],
)
def test_an_empty_input_path_is_named_empty_not_the_current_folder(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_here(*args)
    assert ran.code == 2
    assert ran.stderr == ("apexctl: error: an empty path was given where a Parquet file was expected; name the file\n")


@pytest.mark.parametrize("slot", ["", "  "])
def test_an_empty_slot_name_is_refused_not_replaced_by_the_folder_name(slot, tmp_path):
    ran = run_here("export", "--maml", "x", "--symbol", "BTCUSDT", "--slot", slot, "-o", str(tmp_path / "b"))
    assert ran.code == 2
    assert f"--slot {slot!r} is empty: give the slot a name, or leave --slot out" in ran.stderr
    assert not (tmp_path / "b").exists()
