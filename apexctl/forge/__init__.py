"""The Forge: the logic behind every subcommand, importable without Typer."""
