"""`geodiag sweep`: methods x seeds at an equal parameter budget, from flags or a YAML file; every `geodiag train`
option applies to every cell. Reruns skip finished cells; `--emit slurm DIR` writes job scripts instead."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from geodiag.cli.flags import add_options, describe, given
from geodiag.cli.train import key_values, method_specs
from geodiag.config import TrainConfig, read_mapping
from geodiag.errors import GeodiagError
from geodiag.options import schema
from geodiag.sweep import PER_CELL, SELECT, Outcome, emit, from_mapping, resolve, run_cells


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
    own.add_argument("--methods", help="comma-separated methods (or aliases pissa, olora), e.g. lora,ralora,manifold")
    own.add_argument("--seeds", help="comma-separated seeds (default: 0)")
    own.add_argument("--budget", help="lora-r=N: size every method to LoRA's parameter count at rank N on the same "
                                      "modules")
    own.add_argument("--workers", type=int, help="cells run at once, each a process (default: 1)")
    own.add_argument("--lr-grid", help="learning rates to select among on the dev items, e.g. 1e-4,3e-4,1e-3,3e-3: "
                                       "every label trains at each on the selection seeds, then its other seeds at "
                                       "the best (per label in the file: lr_grid)")
    own.add_argument("--select-seeds", help="comma-separated seeds the selection trains at every grid value "
                                            "(default: the first seed)")
    own.add_argument("--name", help="the sweep id (default: sweep-<hash of its options>)")
    own.add_argument("--emit", nargs=2, metavar=("slurm", "DIR"), help="write Slurm scripts into DIR instead of "
                                                                       "running")
    own.add_argument("--plan", action="store_true", help="print the cells and their sizes, run nothing")
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
    resolved = resolve(spec, run_analyses=args.cell is None, progress=progress)
    print(spec.id)
    if args.analyses_only:
        for kind, rid in resolved.analyses.items():
            print(f"{kind} analysis: {rid}", file=sys.stderr)
        return 0
    if args.plan:
        _print_plan(resolved, cells)
        return 0
    outcome = _run(resolved, cells if args.cell is None else [cells[args.cell]], args.workers or spec.workers,
                   progress, single=args.cell is not None)
    print(f"sweep {spec.id}: {len(outcome.finished)} run now, {len(outcome.skipped)} already done or running, "
          f"{len(outcome.failed)} failed; `geodiag runs list --store {spec.store}` lists them.", file=sys.stderr)
    return 1 if outcome.failed else 0


def _run(resolved, cells, workers: int, progress: bool, *, single: bool) -> Outcome:
    """The cells, each label's final cells as soon as its selection has chosen their rate."""
    if single and cells[0].chosen_later:
        ready, blocked = resolved.finalise(cells)
        if blocked:
            raise GeodiagError(f"{next(iter(blocked.values()))}; run the selection cells first (Slurm: the "
                               "selection array).")
        cells = ready
    return run_cells(resolved, cells, workers=workers, progress=progress)


def _values(args: argparse.Namespace) -> dict:
    values = read_mapping(args.spec) if args.spec else {}
    values.update(given(args, [s for s in schema(TrainConfig) if s.name not in PER_CELL]))
    values["method_options"] = {**(values.get("method_options") or {}),
                                **given(args, method_specs().values(), dest_prefix="m_")}
    if args.task_option:
        values["task_options"] = {**(values.get("task_options") or {}), **key_values(args.task_option)}
    for key in ("methods", "seeds", "budget", "name", "workers", "lr_grid", "select_seeds"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
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


def _print_plan(resolved, cells) -> None:
    """Every cell with its phase, rate, size and options; then the run count of each phase."""
    target, choices = resolved.target, resolved.choices()
    print(f"{'cell':>4}  {'phase':<6} {'label':<12} {'seed':>4}  {'lr':>9}  {'params':>10}  {'vs budget':>9}  options")
    for c in cells:
        sized = resolved.sizes.get(c.label)
        ratio = f"{sized.params / target:9.3f}" if sized and target else f"{'-':>9}"
        chosen = choices[c.label].lr if c.chosen_later else c.lr
        lr = "chosen" if chosen is None else f"{chosen:g}"
        opts = resolved.config(replace(c, lr=chosen or 0.0))["method_options"]
        print(f"{c.index:>4}  {c.phase:<6} {c.label:<12} {c.seed:>4}  {lr:>9}  {sized.params if sized else '-':>10}  "
              f"{ratio}  {opts}")
    n_select = sum(c.phase == SELECT for c in cells)
    if n_select:
        print(f"{n_select} selection runs (each label at every grid value on its selection seeds), then "
              f"{len(cells) - n_select} final runs at the chosen rates: {len(cells)} runs.")
    else:
        print(f"{len(cells)} runs.")
