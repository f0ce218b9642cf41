"""`python -m apexctl` runs the CLI."""

from apexctl.launch import main

main()
