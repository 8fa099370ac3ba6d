"""`geodiag runs list|show|delete|rename` and `geodiag import-peft DIR`: the store's runs."""

from __future__ import annotations

import argparse
import json

from geodiag.store import DEFAULT_STORE, Reader, Writer

RUN_TABLE_COLUMNS = ["run_id", "name", "kind", "method", "model", "task", "status", "started_at", "sweep", "seed"]


def store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=DEFAULT_STORE, help=f"DuckDB store file (default: {DEFAULT_STORE})")


def add_parser(sub) -> None:
    runs = sub.add_parser("runs", help="list or inspect the runs in a store")
    actions = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    ls = actions.add_parser("list", help="one line per run")
    ls.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    show = actions.add_parser("show", help="one run's metadata, config and recorded metrics")
    rm = actions.add_parser("delete", help="delete a run and its metrics (not while it is running)")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    mv = actions.add_parser("rename", help="give a run a new readable name")
    for p in (show, rm, mv):
        p.add_argument("run_id", metavar="RUN")
    mv.add_argument("name", metavar="NAME")
    for p, handler in ((ls, run_list), (show, run_show), (rm, run_delete), (mv, run_rename)):
        store_arg(p)
        p.set_defaults(handler=handler)
    imp = sub.add_parser("import-peft", help="record the Delta W spectra of an existing PEFT adapter, or of a "
                                             "Trainer's checkpoint-* series")
    imp.add_argument("directory", metavar="DIR", help="a folder written by PeftModel.save_pretrained(), or a Trainer "
                                                      "output folder holding checkpoint-* folders (one run)")
    imp.add_argument("--base", help="the base model (smollm2, tiny, a hub id or folder): recorded with the run and "
                                    "loaded to add intruder dimensions, DoRA's magnitude/direction change and "
                                    "PiSSA's initial factors (default: the adapter's name, not loaded)")
    imp.add_argument("--run-name", help="a readable name")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    store_arg(imp)
    imp.set_defaults(handler=import_peft)


def run_list(args: argparse.Namespace) -> int:
    runs = Reader(args.store).runs()
    if args.json:
        print(runs.to_json(orient="records", date_format="iso"))
    elif runs.empty:
        print(f"No runs in {args.store} yet.")
    else:
        print(runs[RUN_TABLE_COLUMNS].to_string(index=False))
    return 0


def run_show(args: argparse.Namespace) -> int:
    reader = Reader(args.store)
    run = reader.run(args.run_id)
    for key, value in run.items():
        if key != "config":
            print(f"{key:>17}: {value}")
    print(f"{'config':>17}: {json.dumps(run['config'], indent=2, sort_keys=True)}")
    names = reader.metric_names(args.run_id)
    print(f"{'metrics':>17}: {', '.join(names) if names else '(none recorded yet)'}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    run = Reader(args.store).run(args.run_id)
    if not args.yes:
        answer = input(f"Delete run {args.run_id} ({run['name']}) and all its metrics? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 1
    Writer(args.store).delete_run(args.run_id)
    print(f"Deleted {args.run_id}.")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    Writer(args.store).rename_run(args.run_id, args.name)
    print(f"Renamed {args.run_id} to {args.name!r}.")
    return 0


def import_peft(args: argparse.Namespace) -> int:
    from geodiag.integrations.peft_import import import_peft as read_and_record  # torch: only when importing

    print(read_and_record(args.directory, base=args.base, store=args.store, run_name=args.run_name,
                          progress=not args.no_progress))
    return 0
