"""Start-up of the CLI: `apexctl --help` and `--version` import no command module, a command imports only its own,
and the lazily built command tree prints and behaves as the tree of every command registered up front."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import typer
from typer.testing import CliRunner

from apexctl import cli

#: Prints, after a CLI run in a fresh interpreter, the command modules and the heavy libraries it imported.
IMPORTED = """
import contextlib, io, json, sys
from apexctl.cli import run
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = run(sys.argv[1:])
heavy = ("apexctl.commands.", "apexctl.forge", "polars", "pyarrow", "deap", "torch", "tigramite", "sklearn")
print(json.dumps([code, sorted(m for m in sys.modules if m.startswith(heavy))]))
"""


def imported_by(*args: str) -> tuple[int, list[str]]:
    ran = subprocess.run([sys.executable, "-c", IMPORTED, *args], capture_output=True, text=True, check=True)
    code, modules = json.loads(ran.stdout)
    return code, modules


def test_the_root_help_and_the_version_import_no_command_and_no_forge():
    assert imported_by("--help") == (0, [])
    assert imported_by("--version") == (0, [])


def test_a_command_imports_its_own_module_only():
    code, modules = imported_by("trade", "--help")
    assert code == 0
    commands = [m for m in modules if m.startswith("apexctl.commands.") and m != "apexctl.commands._options"]
    assert commands == ["apexctl.commands.trade"], "the shared options aside"
    assert "polars" not in modules


def eager_app() -> typer.Typer:
    """The same CLI with every command registered up front, as typer documents it."""
    eager = typer.Typer(name="apexctl", help=cli.app.info.help, no_args_is_help=True, **cli.TYPER_SETTINGS)
    eager.callback()(cli.root)
    for name in cli.COMMANDS:
        cli.register(eager, name)
    return eager


def test_the_lazy_tree_prints_every_help_as_the_eager_tree_does():
    runner = CliRunner()
    for args in (["--help"], [], *([name, "--help"] for name in cli.COMMANDS), ["train", "maml", "--help"]):
        lazy, eager = runner.invoke(cli.app, args), runner.invoke(eager_app(), args)
        assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output), args
    listing = runner.invoke(cli.app, ["--help"]).output
    assert all(name in listing for name in cli.COMMANDS)


def test_a_mistyped_command_is_answered_with_the_closest_names():
    runner = CliRunner()
    lazy, eager = runner.invoke(cli.app, ["fech"]), runner.invoke(eager_app(), ["fech"])
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)
    assert "Did you mean 'fetch'?" in lazy.output


def test_the_root_listing_prints_each_command_summary_as_one_flowing_paragraph():
    """A docstring wrapped at the source's width must not print ragged in the listing (typer's rich mode keeps
    the short help's line breaks)."""
    runner = CliRunner()
    for app in (cli.app, eager_app()):
        listing = runner.invoke(app, ["--help"], env={"COLUMNS": "600"}).output
        for name in cli.COMMANDS:
            first_paragraph = " ".join(
                typer.main.get_command(app).get_command(None, name).help.split("\n\n")[0].split()
            )
            assert first_paragraph in listing, name


def test_apex_debug_adds_the_traceback_and_keeps_the_line_and_the_status(tmp_path, monkeypatch):
    from tests.conftest import run_here

    monkeypatch.setenv("APEX_DEBUG", "1")
    ran = run_here("judge", str(tmp_path / "nope.sqlite"), "-o", str(tmp_path / "j.json"))
    assert ran.code == 2
    assert "Traceback (most recent call last)" in ran.stderr
    assert ran.stderr.rstrip().splitlines()[-1] == f"apexctl: error: {tmp_path / 'nope.sqlite'}: no such ledger file"


def test_a_flag_is_shown_without_a_value_and_given_one_names_its_command():
    """`--force` takes no value: --help shows it bare (not `--force <bool>`), and `--force=true` is refused with
    the command's own help named (the option parser raises that error before click knows the command)."""
    from tests.conftest import run_here

    runner = CliRunner()
    for args in (["export", "--help"], ["trade", "--help"], ["train", "maml", "--help"]):
        shown = runner.invoke(cli.app, args, env={"COLUMNS": "200"}).output
        assert "<bool>" not in shown, args
    # An option that takes a value still shows its type.
    assert re.search(r"--check\s+<path>", runner.invoke(cli.app, ["export", "--help"], env={"COLUMNS": "200"}).output)
    ran = run_here("export", "--force=true")
    assert ran.code == 2
    assert ran.stderr.strip() == (
        "apexctl: error: export: Option '--force' does not take a value. (see 'apexctl export --help')"
    )
    ran = run_here("train", "maml", "--force=true")
    assert "(see 'apexctl train maml --help')" in ran.stderr, ran.stderr
