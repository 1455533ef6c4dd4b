"""The command line: thin typer apps, one per concern, joined in orderstream.cli.main."""
