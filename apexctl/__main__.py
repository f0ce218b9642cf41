"""`python -m apexctl` runs the CLI."""

from apexctl.cli import main

main()
