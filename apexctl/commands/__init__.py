"""One module per subcommand: each parses its options, builds a typed config and calls the Forge."""
