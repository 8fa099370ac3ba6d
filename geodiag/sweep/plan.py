"""A sweep made concrete: the target modules' shapes, the one GID / ID analysis its allocation-driven methods
share, each method sized to the budget, and every cell's `geodiag train` config. Bad input is a sentence raised
before anything is written, except what is needed to size (the shared analyses, which later cells reuse)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

from geodiag.allocation import ModuleShape, Vectors
from geodiag.allocation.budget import TOLERANCE, Geometry, Sized
from geodiag.config import AnalyzeConfig
from geodiag.errors import GeodiagError
from geodiag.lab import stored_analysis
from geodiag.lab.selection import Choice, choose, sweep_table
from geodiag.methods import MethodConfig, analysis_of, get_method
from geodiag.options import schema
from geodiag.store import Reader
from geodiag.sweep.spec import Cell, SweepSpec

ANALYSIS_OPTIONS = ("model", "task", "dataset", "target_modules", "train_size", "max_length", "dtype", "device",
                    "trust_remote_code", "store")


@dataclass
class Resolved:
    spec: SweepSpec
    shapes: tuple[ModuleShape, ...]
    analyses: dict[str, str]  # gid | id -> the shared analysis run
    sizes: dict[str, Sized]  # label -> its size under the budget

    @property
    def target(self) -> int | None:
        return self.spec.budget.params(self.shapes) if self.spec.budget else None

    def config(self, cell: Cell) -> dict:
        """The cell's `geodiag train` config: shared options, the label's, its learning rate, its size, the shared
        analysis, and the selection it belongs to."""
        if cell.chosen_later:
            raise GeodiagError(f"Cell {cell.index} ({cell.label} s{cell.seed}) trains at the rate its selection "
                               "chooses, which is not known yet.")
        options = dict(cell.options)
        kind = analysis_of(cell.method)
        if kind and "from_analysis" not in options:
            options["from_analysis"] = self.analyses[kind]
        out = {**cell.train, "method": cell.method, "seed": cell.seed, "sweep": self.spec.id, "label": cell.label,
               "target_modules": targets(self.spec), "run_name": f"{cell.label} s{cell.seed}", "lr": cell.lr,
               **({"selection": cell.selection, "run_name": f"{cell.label} s{cell.seed} lr{cell.lr:g}"}
                  if cell.selection else {})}
        sized = self.sizes.get(cell.label)
        if sized:
            options = {**options, **sized.options}
            out["budget"] = {"spec": str(self.spec.budget), "target": self.target, "params": sized.params,
                             "counts": sized.counts}
        return {**out, "method_options": options}

    def choices(self) -> dict[str, Choice]:
        """label -> its learning-rate choice (labels with a grid), from the selection runs in the store."""
        table = sweep_table(Reader(self.spec.store), self.spec.id)
        return {v.label: choose(table, v.label, v.lr_grid, v.select_seeds) for v in self.spec.variants if v.lr_grid}

    def finalise(self, cells: list[Cell]) -> tuple[list[Cell], dict[str, str]]:
        """The final cells with their label's chosen rate filled in, and, for cells whose label has no rate yet,
        why (cell name -> sentence)."""
        choices = self.choices() if any(c.chosen_later for c in cells) else {}
        ready, blocked = [], {}
        for c in cells:
            if not c.chosen_later:
                ready.append(c)
            elif choices[c.label].lr is None:
                blocked[f"{c.label} s{c.seed}"] = f"{c.label}'s learning rate is not chosen: {choices[c.label].reason}"
            else:
                ready.append(replace(c, lr=choices[c.label].lr))
        return ready, blocked


def targets(spec: SweepSpec) -> list[str]:
    """One set of target modules for every cell, so that budgets compare (LoRA's default unless given)."""
    return list(spec.train.get("target_modules") or MethodConfig().target_modules)


def resolve(spec: SweepSpec, *, run_analyses: bool = True, progress: bool = True, check_only: bool = False,
            plan_only: bool = False, started: Callable[[], None] | None = None) -> Resolved:
    """Shapes, shared analyses (run now unless `run_analyses` is off: then they must exist) and sizes.
    `check_only`: the model and the budget of the methods that need no analysis, nothing else. `plan_only`: the
    analyses there are, nothing run. `started()` is called once the checks have passed, before anything is run or
    written."""
    check_data(spec)
    shapes = model_shapes(spec)
    needed = sorted({analysis_of(v.method) for v in spec.variants
                     if analysis_of(v.method) and "from_analysis" not in v.options})
    if spec.budget:
        check_budget(spec, shapes, {v.label for v in spec.variants if not analysis_of(v.method)})
    if check_only:
        return Resolved(spec, shapes, {}, {})
    if plan_only:  # what can be sized without running anything: an analysis not run yet leaves its labels unsized
        analyses = {kind: found for kind in needed if (found := _finished_analysis(spec, kind))}
        return Resolved(spec, shapes, analyses, size_all(spec, shapes, analyses) if spec.budget else {})
    if started:
        started()
    analyses = {kind: shared_analysis(spec, kind, run=run_analyses, progress=progress) for kind in needed}
    sizes = size_all(spec, shapes, analyses) if spec.budget else {}
    return Resolved(spec, shapes, analyses, sizes)


def check_data(spec: SweepSpec) -> None:
    """Every distinct data setting of the sweep's cells split once (milliseconds for a task), so a dev plus test
    size the task cannot supply disjointly is a sentence before any cell or analysis runs."""
    from geodiag.config import TrainConfig
    from geodiag.data import load_data

    seen = set()
    for v in spec.variants:
        cfg = TrainConfig.from_dict({k: val for k, val in {**spec.train, **v.train}.items() if k != "store"})
        key = (cfg.task, cfg.dataset, cfg.data_seed, cfg.eval_size, cfg.record_batch, cfg.dev_size, cfg.train_size,
               repr(sorted(cfg.task_options.items())))
        if key not in seen:
            seen.add(key)
            load_data(cfg.task, cfg.dataset, n_train=cfg.train_size, n_eval=max(cfg.eval_size, cfg.record_batch),
                      seed=cfg.data_seed, options=cfg.task_options, n_dev=cfg.dev_size)


def model_shapes(spec: SweepSpec) -> tuple[ModuleShape, ...]:
    """The target modules' shapes, from the model itself (loaded once, on the CPU)."""
    from geodiag.models import load_model, module_shapes, resolve_targets  # torch: only to read shapes

    model = load_model(spec.train.get("model", "smollm2"),
                       trust_remote_code=bool(spec.train.get("trust_remote_code"))).model
    return tuple(module_shapes(model, resolve_targets(model, targets(spec))))


def check_budget(spec: SweepSpec, shapes: tuple[ModuleShape, ...], labels: set[str],
                 vectors: dict[str, Vectors] | None = None) -> dict[str, Sized]:
    """The labelled methods sized (allocation-driven ones from their analysis's `vectors`, by label), or one
    sentence naming the ones that cannot meet the budget."""
    target = spec.budget.params(shapes)
    sizes, misses = {}, []
    for v in (v for v in spec.variants if v.label in labels):
        size = get_method(v.method).size
        if size is None:
            raise GeodiagError(f"{v.method} has no size to match --budget {spec.budget} (it trains every target "
                               "weight); sweep it without a budget.")
        sized = size(target, Geometry(shapes, (vectors or {}).get(v.label, Vectors())))
        if sized is None or sized.error(target) > TOLERANCE:
            misses.append(f"{v.label} ({'no size' if sized is None else f'{sized.params:,} at best'})")
        else:
            sizes[v.label] = sized
    if misses and len(misses) == len(labels):
        raise GeodiagError(f"No method can meet --budget {spec.budget} ({target:,} parameters on "
                           f"{len(shapes)} modules): {', '.join(misses)}.")
    if misses:
        raise GeodiagError(f"--budget {spec.budget} ({target:,} parameters) is out of reach of {', '.join(misses)}; "
                           f"drop {'it' if len(misses) == 1 else 'them'} or change the budget.")
    return sizes


def size_all(spec: SweepSpec, shapes: tuple[ModuleShape, ...], analyses: dict[str, str]) -> dict[str, Sized]:
    """Every label sized; an allocation-driven label only when its analysis is among `analyses` (or its own)."""
    vectors = {}
    for v in (v for v in spec.variants if analysis_of(v.method)):
        run_id = v.options.get("from_analysis") or analyses.get(analysis_of(v.method))
        if run_id:
            vectors[v.label] = stored_analysis(Reader(spec.store), run_id).vectors
    return check_budget(spec, shapes, {v.label for v in spec.variants if not analysis_of(v.method) or v.label in
                                       vectors}, vectors)


def shared_analysis(spec: SweepSpec, kind: str, *, run: bool, progress: bool) -> str:
    """The sweep's finished `geodiag analyze KIND` run, run now (once) if there is none."""
    found = _finished_analysis(spec, kind)
    if found or not run:
        if not found:
            raise GeodiagError(f"Sweep {spec.id} has no finished {kind} analysis yet; run `geodiag sweep FILE "
                               "--analyses-only` first (the Slurm submit script does).")
        return found
    args = [sys.executable, "-m", "geodiag", "analyze", kind, "--sweep", spec.id, "--run-name", f"{spec.id} {kind}"]
    applies = {s.name for s in schema(AnalyzeConfig) if s.applies_to(kind)}  # spectra read no data
    for key in (k for k in ANALYSIS_OPTIONS if k in applies):
        value = targets(spec) if key == "target_modules" else spec.train.get(key)
        if value is not None and value is not False:
            args += [f"--{key.replace('_', '-')}"] + ([] if value is True else [",".join(value) if isinstance(
                value, list) else str(value)])
    if "r" in applies and spec.budget:
        args += ["--r", str(spec.budget.r)]  # the allocations it records, at the sweep's reference rank
    if not progress:
        args.append("--no-progress")
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=None if progress else subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise GeodiagError(f"The sweep's {kind} analysis failed: {(done.stderr or '').strip().splitlines()[-1:]}")
    return done.stdout.split()[-1]  # the command prints the run id last


def _finished_analysis(spec: SweepSpec, kind: str) -> str | None:
    try:
        runs = Reader(spec.store).runs()  # newest first
    except GeodiagError:
        return None  # no store yet
    mine = runs[(runs["kind"] == "analysis") & (runs["method"] == kind) & (runs["status"] == "finished")
                & (runs["sweep"] == spec.id)]
    return None if mine.empty else str(mine["run_id"].iloc[0])
