"""The `geodiag` command. Every user-facing failure is one sentence on stderr and exit status 2."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import warnings
from collections.abc import Sequence

import geodiag
from geodiag.errors import GeodiagError
from geodiag.store import DEFAULT_STORE

RUN_TABLE_COLUMNS = ["run_id", "name", "kind", "method", "model", "task", "status", "started_at"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geodiag",
        description="Train LoRA-family adapters and record their geometry (gates, effective ranks, spectra, "
                    "GID, intrinsic dimension) in a DuckDB store that the dashboard plots.",
    )
    parser.add_argument("--version", action="version", version=f"geodiag {geodiag.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    runs = sub.add_parser("runs", help="list or inspect the runs in a store")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    ls = runs_sub.add_parser("list", help="one line per run")
    _store_arg(ls)
    ls.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    ls.set_defaults(handler=_runs_list)
    show = runs_sub.add_parser("show", help="one run's metadata, config and recorded metrics")
    show.add_argument("run_id", metavar="RUN")
    _store_arg(show)
    show.set_defaults(handler=_runs_show)

    rm = runs_sub.add_parser("delete", help="delete a run and its metrics (not while it is running)")
    rm.add_argument("run_id", metavar="RUN")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _store_arg(rm)
    rm.set_defaults(handler=_runs_delete)
    mv = runs_sub.add_parser("rename", help="give a run a new readable name")
    mv.add_argument("run_id", metavar="RUN")
    mv.add_argument("name", metavar="NAME")
    _store_arg(mv)
    mv.set_defaults(handler=_runs_rename)

    from geodiag.cli_analyze import add_analyze_parser
    from geodiag.cli_export import add_export_parser
    from geodiag.cli_train import add_train_parser

    add_train_parser(sub)
    add_analyze_parser(sub)
    add_export_parser(sub)
    imp = sub.add_parser("import-peft", help="record the Delta W spectra of an existing PEFT adapter directory")
    imp.add_argument("directory", metavar="DIR", help="a folder written by PeftModel.save_pretrained()")
    imp.add_argument("--base", help="the base model's name, recorded with the run (default: from the adapter)")
    imp.add_argument("--run-name", help="a readable name")
    _store_arg(imp)
    imp.set_defaults(handler=_import_peft)
    return parser


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=DEFAULT_STORE, help=f"DuckDB store file (default: {DEFAULT_STORE})")


def _runs_list(args: argparse.Namespace) -> int:
    from geodiag.store import Reader

    runs = Reader(args.store).runs()
    if args.json:
        print(runs.to_json(orient="records", date_format="iso"))
    elif runs.empty:
        print(f"No runs in {args.store} yet.")
    else:
        print(runs[RUN_TABLE_COLUMNS].to_string(index=False))
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    from geodiag.store import Reader

    reader = Reader(args.store)
    run = reader.run(args.run_id)
    for key, value in run.items():
        if key != "config":
            print(f"{key:>17}: {value}")
    print(f"{'config':>17}: {json.dumps(run['config'], indent=2, sort_keys=True)}")
    names = reader.metric_names(args.run_id)
    print(f"{'metrics':>17}: {', '.join(names) if names else '(none recorded yet)'}")
    return 0


def _runs_delete(args: argparse.Namespace) -> int:
    from geodiag.store import Reader, Writer

    run = Reader(args.store).run(args.run_id)
    if not args.yes:
        answer = input(f"Delete run {args.run_id} ({run['name']}) and all its metrics? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 1
    Writer(args.store).delete_run(args.run_id)
    print(f"Deleted {args.run_id}.")
    return 0


def _runs_rename(args: argparse.Namespace) -> int:
    from geodiag.store import Writer

    Writer(args.store).rename_run(args.run_id, args.name)
    print(f"Renamed {args.run_id} to {args.name!r}.")
    return 0


def _import_peft(args: argparse.Namespace) -> int:
    from geodiag.integrations.peft_import import import_peft

    run_id = import_peft(args.directory, base=args.base, store=args.store, run_name=args.run_name)
    print(run_id)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # peft calls a transformers property deprecated in v5; the warning says nothing a geodiag user can act on
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
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


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
