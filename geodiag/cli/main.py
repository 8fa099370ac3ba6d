"""The `geodiag` command. Every user-facing failure is one sentence on stderr and exit status 2."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

import geodiag
from geodiag.cli import allocate, analyze, dashboard, export, report, results, runs, sweep, train
from geodiag.cli.flags import Parser
from geodiag.errors import GeodiagError


def build_parser() -> Parser:
    parser = Parser(prog="geodiag",
                    description="Train LoRA-family adapters and record their geometry (gates, effective ranks, "
                                "spectra, GID, intrinsic dimension) in a DuckDB store that the dashboard plots.")
    parser.add_argument("--version", action="version", version=f"geodiag {geodiag.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (train, sweep, results, report, analyze, allocate, runs, export, dashboard):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_launcher_separator_dropped(sys.argv[1:] if argv is None else list(argv)))
    if not hasattr(args, "handler"):
        parser.print_help()
        return 0 if args.command is None else 2
    # SIGTERM (the dashboard's Cancel) ends analyses as cancelled; the trainer installs its own handler
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.handler(args)
    except GeodiagError as e:
        print(f"geodiag: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geodiag: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _launcher_separator_dropped(argv: list[str]) -> list[str]:
    """`torchrun ... -m geodiag train -- --r 8`: torchrun's (and accelerate's) parser takes any `--x` after the
    script for a possible abbreviation of its own options (`--r` is ambiguous there) unless a `--` comes
    first; that `--` reaches us and is dropped, since no geodiag argument is a bare `--`."""
    if "--" in argv:
        argv = argv[: argv.index("--")] + argv[argv.index("--") + 1:]
    return argv


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt
