"""The command line: each command parses, makes one library call, renders."""

from litemlops.cli.main import cli, main

__all__ = ["cli", "main"]
