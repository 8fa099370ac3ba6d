"""The `geodiag` command line: every command's flags rendered from the configs' option schema."""

from geodiag.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
