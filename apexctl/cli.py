"""The `apexctl` Typer app: registers one command per subcommand module and maps errors to one line + exit 2."""

from __future__ import annotations

import os
import sys

import typer
from rich.text import Text

from apexctl import __version__
from apexctl.commands import causal, chimera, evolve, export, features, fetch, simulate, train, venue
from apexctl.console import err
from apexctl.errors import ApexError

app = typer.Typer(
    name="apexctl",
    help="Evolve crypto trading strategies offline and run them live on Bybit. Stages read and write files "
    "(Parquet tables, JSON documents), so they compose in shells, cron jobs and the Justfile; '-' means stdin/stdout.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


app.command("fetch")(fetch.fetch)
app.command("features")(features.features)
app.command("causal")(causal.causal)
app.command("chimera")(chimera.chimera)
app.command("evolve")(evolve.evolve_command)
app.command("simulate")(simulate.simulate)
app.command("export")(export.export_command)
app.command("venue")(venue.venue)
app.add_typer(train.train_app, name="train")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"apexctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """apexctl: the Forge (offline) and the Nexus (live)."""


def main() -> None:
    """Console-script entry point: user mistakes print one line and exit 2; APEX_DEBUG=1 shows the traceback."""
    try:
        app()
    except ApexError as exc:
        if os.environ.get("APEX_DEBUG") == "1":
            raise
        err.print(Text.assemble(("apexctl: error: ", "bold red"), str(exc)), soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("apexctl: interrupted")
        sys.exit(130)
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `| head`); nothing left to say.
        sys.stderr.close()
        sys.exit(1)
