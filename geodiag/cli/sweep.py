"""`geodiag sweep`: methods x seeds at an equal parameter budget, from flags or a YAML file; every `geodiag train`
option applies to every cell. Reruns skip finished cells; `--emit slurm DIR` writes job scripts instead."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import replace

from geodiag.cli.flags import add_options, describe, given
from geodiag.cli.train import key_values, method_specs
from geodiag.config import TrainConfig, read_mapping
from geodiag.errors import GeodiagError
from geodiag.lab.progress import duration
from geodiag.methods import analysis_of
from geodiag.options import schema
from geodiag.sweep import PER_CELL, SELECT, Outcome, emit, from_mapping, resolve, run_cells
from geodiag.sweep.estimate import probe_pace, recorded_pace, wall_seconds
from geodiag.sweep.options import SweepOptions
from geodiag.sweep.record import Record, recorded


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="train methods x seeds at an equal parameter budget (resumable; Slurm scripts)",
                       description="Train every method with every seed at an equal parameter budget into one store, "
                                   "one cell per process. A rerun of the same sweep skips finished cells and retries "
                                   "failed ones. Options come from flags, a YAML file, or both (flags win); every "
                                   "`geodiag train` option applies to every cell.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SWEEP.yaml", nargs="?", help="a sweep file (name, methods, seeds, budget, and any "
                                                                 "train option)")
    own = p.add_argument_group("sweep")
    add_options(own, schema(SweepOptions))
    own.add_argument("--emit", nargs=2, metavar=("slurm", "DIR"), help="write Slurm scripts into DIR instead of "
                                                                       "running")
    own.add_argument("--plan", action="store_true", help="print the cells, their sizes and the estimated time; run "
                                                         "nothing")
    own.add_argument("--json", action="store_true", help="with --plan: the plan as JSON (what the Launch page shows)")
    own.add_argument("--cell", type=int, metavar="K", help="run only cell K (what a Slurm array task does)")
    own.add_argument("--analyses-only", action="store_true", help="run only the shared GID/ID analyses")
    own.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE", help="reasoning-gym task "
                                                                                             "option (repeatable)")
    own.add_argument("--no-progress", action="store_true", help="no progress bar")
    specs = [s for s in schema(TrainConfig) if s.name not in PER_CELL and s.group != "file"]
    add_options(p.add_argument_group("train options, for every cell"), specs, help_for=lambda s: describe(s))
    add_options(p, method_specs().values(), dest_prefix="m_", help_for=lambda s: argparse.SUPPRESS)
    p.epilog = ("Method options (e.g. --lr-factors, --alpha) are accepted too and apply to the cells whose method "
                "has them.")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec = from_mapping(_values(args))
    cells = spec.cells()
    progress = not args.no_progress
    if args.emit:
        return _emit(spec, args.emit, len(cells))
    if args.cell is not None and not 0 <= args.cell < len(cells):
        raise GeodiagError(f"--cell {args.cell} is out of range: sweep {spec.id} has cells 0-{len(cells) - 1}.")
    if args.json and not args.plan:
        raise GeodiagError("--json prints the plan: give it with --plan.")
    if args.plan:
        return _plan(resolve(spec, plan_only=True), cells, as_json=args.json)
    whole = args.cell is None and not args.analyses_only  # the sweep itself, not a Slurm array task
    with contextlib.ExitStack() as stack:
        records: list[Record] = []
        resolved = resolve(spec, run_analyses=args.cell is None, progress=progress,
                           started=(lambda: records.append(stack.enter_context(recorded(spec)))) if whole else None)
        print(spec.id, flush=True)
        if args.analyses_only:
            for kind, rid in resolved.analyses.items():
                print(f"{kind} analysis: {rid}", file=sys.stderr)
            return 0
        outcome = _run(resolved, cells if args.cell is None else [cells[args.cell]], spec.workers, progress,
                       single=args.cell is not None, tick=records[0].beat if records else None)
        if outcome.failed and records:
            records[0].fail(f"{len(outcome.failed)} cell(s) failed: " + "; ".join(
                f"{cell}: {why}" for cell, why in list(outcome.failed.items())[:3]))
    print(f"sweep {spec.id}: {len(outcome.finished)} run now, {len(outcome.skipped)} already done or running, "
          f"{len(outcome.failed)} failed; `geodiag runs list --store {spec.store}` lists them.", file=sys.stderr)
    return 1 if outcome.failed else 0


def _run(resolved, cells, workers: int, progress: bool, *, single: bool, tick=None) -> Outcome:
    """The cells, each label's final cells as soon as its selection has chosen their rate."""
    if single and cells[0].chosen_later:
        ready, blocked = resolved.finalise(cells)
        if blocked:
            raise GeodiagError(f"{next(iter(blocked.values()))}; run the selection cells first (Slurm: the "
                               "selection array).")
        cells = ready
    return run_cells(resolved, cells, workers=workers, progress=progress, tick=tick)


def _values(args: argparse.Namespace) -> dict:
    values = read_mapping(args.spec) if args.spec else {}
    values.update(given(args, [s for s in schema(TrainConfig) if s.name not in PER_CELL]))
    values["method_options"] = {**(values.get("method_options") or {}),
                                **given(args, method_specs().values(), dest_prefix="m_")}
    if args.task_option:
        values["task_options"] = {**(values.get("task_options") or {}), **key_values(args.task_option)}
    values.update(given(args, schema(SweepOptions)))
    return values


def _emit(spec, emit_args: list[str], n_cells: int) -> int:
    kind, directory = emit_args
    if kind != "slurm":
        raise GeodiagError(f"--emit writes Slurm scripts: use --emit slurm DIR, not {kind!r}.")
    resolve(spec, run_analyses=False, check_only=True)  # a bad budget or model is a sentence before anything is written
    n_select = sum(c.phase == SELECT for c in spec.cells())
    for path in emit(spec, directory, n_cells, analyses=spec.needs_analyses, n_select=n_select):
        print(path)
    return 0


def _plan(resolved, cells, *, as_json: bool) -> int:
    """Every cell with its phase, rate, size and options; the runs per phase; the estimated wall time."""
    rows, spec = plan_rows(resolved, cells), resolved.spec
    model = spec.train.get("model", TrainConfig().model)
    pace = recorded_pace(spec.store, model) or probe_pace(spec, cells[0].method)
    seconds = wall_seconds(cells, pace, spec.workers)
    n_select = sum(c.phase == SELECT for c in cells)
    if as_json:
        print(json.dumps({"sweep": spec.id, "store": spec.store, "model": model, "target": resolved.target,
                          "workers": spec.workers, "phases": {"select": n_select, "final": len(cells) - n_select},
                          "cells": rows, "estimate": {"seconds": seconds, "seconds_per_step": pace.seconds,
                                                      "per_method": pace.methods, "source": pace.source}}))
        return 0
    print(f"{'cell':>4}  {'phase':<6} {'label':<12} {'seed':>4}  {'lr':>9}  {'params':>10}  {'vs budget':>9}  options")
    for r in rows:
        ratio = f"{r['params'] / resolved.target:9.3f}" if r["params"] and resolved.target else f"{'-':>9}"
        lr = "chosen" if r["lr"] is None else f"{r['lr']:g}"
        params = r["params"] if r["params"] else (f"after {r['sized_by']}" if r["sized_by"] else "-")
        print(f"{r['cell']:>4}  {r['phase']:<6} {r['label']:<12} {r['seed']:>4}  {lr:>9}  {params:>10}  {ratio}  "
              f"{r['options']}")
    if n_select:
        print(f"{n_select} selection runs (each label at every grid value on its selection seeds), then "
              f"{len(cells) - n_select} final runs at the chosen rates: {len(cells)} runs.")
    else:
        print(f"{len(cells)} runs.")
    print(f"about {duration(seconds)} with {spec.workers} worker(s), at {pace.seconds:.2f} s per step from "
          f"{pace.source}.")
    return 0


def plan_rows(resolved, cells) -> list[dict]:
    """One row per cell: index, phase, label, method, seed, rate (None: chosen by its selection), size and options;
    an allocation-driven label whose shared analysis has not run yet has no size (`sized_by` names the analysis)."""
    choices = resolved.choices() if any(c.chosen_later for c in cells) else {}
    rows = []
    for c in cells:
        sized = resolved.sizes.get(c.label)
        chosen = choices[c.label].lr if c.chosen_later else c.lr
        kind = analysis_of(c.method)
        options = dict(c.options) if kind and kind not in resolved.analyses else resolved.config(
            replace(c, lr=chosen or 0.0))["method_options"]
        rows.append({"cell": c.index, "phase": c.phase, "label": c.label, "method": c.method, "seed": c.seed,
                     "lr": chosen, "params": sized.params if sized else None,
                     "sized_by": kind if kind and not sized else None, "options": options,
                     "steps": int(c.train.get("steps") or TrainConfig().steps)})
    return rows
