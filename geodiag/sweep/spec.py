"""What a sweep is: methods x seeds on one model and task, every `geodiag train` option applied to every cell, and
an equal parameter budget. Read from flags or a YAML file; torch-free.

    name: budget-8                 # the sweep id (default: sweep-<hash of everything below>)
    model: smollm2
    methods: [lora, ralora, manifold]      # or a mapping label -> overrides for that label's cells:
    # methods: {lora: {seeds: [0, 1, 2], lr: 1e-3}, pissa: {method: lora, init_lora_weights: pissa}}
    seeds: [0, 1, 2]
    budget: lora-r=8
    steps: 100                     # any `geodiag train` option; method options apply where the method has them
    method_options: {alpha: 16}
    lr_grid: [1e-4, 3e-4, 1e-3, 3e-3]  # select each label's rate on the dev items (per label too: {lr_grid: [...]})
    select_seeds: [0]              # the seeds the selection trains at every grid value (default: the first seed)

With a grid, a label trains in two phases: selection (every grid value on the selection seeds), then its other seeds
at the value with the best mean dev accuracy (ties: the lower dev loss); the selection run at the chosen value is
that seed's final run.

A label names a registered method, an alias (pissa, olora: LoRA with that initialisation) or, with `method:`,
any variant of one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from geodiag.allocation.budget import Budget
from geodiag.config import TrainConfig, read_mapping
from geodiag.errors import GeodiagError
from geodiag.methods import METHODS, analysis_of, get_method
from geodiag.options import schema
from geodiag.sweep.options import SweepOptions

# labels that are a method with an option set
ALIASES = {"pissa": ("lora", {"init_lora_weights": "pissa"}), "olora": ("lora", {"init_lora_weights": "olora"})}
PER_CELL = ("method", "seed", "run_name", "sweep", "label", "budget", "allocation")  # a sweep sets these itself
SWEEP_KEYS = tuple(s.name for s in schema(SweepOptions))  # the sweep's own options, the rest are train options
SELECT, FINAL = "select", "final"  # a cell's phase under learning-rate selection
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


@dataclass(frozen=True)
class Variant:
    label: str
    method: str
    seeds: tuple[int, ...]
    train: dict  # TrainConfig fields for this label's cells
    options: dict  # method options for this label's cells
    lr_grid: tuple[float, ...] = ()  # the learning rates selected among (none: train at the label's lr)
    select_seeds: tuple[int, ...] = ()  # the seeds every grid value trains at

    @property
    def selection(self) -> dict:
        """What a cell's config records of the selection it belongs to (empty without a grid)."""
        return {"grid": list(self.lr_grid), "seeds": list(self.select_seeds)} if self.lr_grid else {}


@dataclass(frozen=True)
class Cell:
    """One `geodiag train` run of a sweep. A final cell of a label with a grid has lr None until its selection is
    done (`Resolved.finalise` fills in the chosen rate)."""

    index: int
    label: str
    method: str
    seed: int
    train: dict
    options: dict
    phase: str = FINAL
    lr: float | None = None
    selection: dict = field(default_factory=dict)

    @property
    def chosen_later(self) -> bool:
        return self.lr is None


@dataclass
class SweepSpec:
    variants: list[Variant]
    train: dict = field(default_factory=dict)  # shared TrainConfig fields
    options: dict = field(default_factory=dict)  # shared method options (applied where a method has them)
    budget: Budget | None = None
    name: str | None = None
    workers: int = 1

    @property
    def needs_analyses(self) -> bool:
        """Whether an allocation-driven method takes the sweep's shared GID / ID analysis."""
        return any(analysis_of(v.method) and "from_analysis" not in v.options for v in self.variants)

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        canon = {"v": [(v.label, v.method, v.seeds, v.train, v.options, *((v.lr_grid, v.select_seeds) if v.lr_grid
                                                                          else ())) for v in self.variants],
                 "t": {k: v for k, v in self.train.items() if k != "store"},  # the same sweep in another store
                 "o": self.options, "b": str(self.budget)}
        return "sweep-" + hashlib.sha1(json.dumps(canon, sort_keys=True, default=str).encode()).hexdigest()[:8]

    @property
    def store(self) -> str:
        return self.train.get("store") or TrainConfig().store

    def cells(self) -> list[Cell]:
        """Every selection cell (label x selection seed x grid value), then every final cell (each label's other
        seeds, or all its seeds without a grid): one index space, so `--cell K` and Slurm arrays address both."""
        todo = [(v, seed, lr, SELECT) for v in self.variants for seed in v.select_seeds for lr in v.lr_grid]
        todo += [(v, seed, None if v.lr_grid else self.lr_of(v), FINAL) for v in self.variants for seed in v.seeds
                 if seed not in v.select_seeds]
        out = []
        for v, seed, lr, phase in todo:
            shared = {k: val for k, val in self.options.items() if k in _option_names(v.method)}
            out.append(Cell(len(out), v.label, v.method, seed, {**self.train, **v.train}, {**shared, **v.options},
                            phase, lr, {**v.selection, "phase": phase} if v.lr_grid else {}))
        return out

    def lr_of(self, v: Variant) -> float:
        return float(v.train.get("lr", self.train.get("lr", TrainConfig().lr)))

    @property
    def phases(self) -> bool:
        return any(v.lr_grid for v in self.variants)

    def to_mapping(self) -> dict:
        """The spec as a YAML/JSON mapping that `from_mapping` reads back to the same sweep (the same id)."""
        return {"name": self.id, **self.train, "method_options": self.options,
                "budget": str(self.budget) if self.budget else None,
                "methods": {v.label: {"method": v.method, "seeds": list(v.seeds), **v.train, **v.options,
                                      **({"lr_grid": list(v.lr_grid), "select_seeds": list(v.select_seeds)}
                                         if v.lr_grid else {})}
                            for v in self.variants}}


def from_mapping(values: dict) -> SweepSpec:
    """A spec from a mapping (a YAML file, or flags gathered into one); every bad key or value is a sentence."""
    values = dict(values)
    stray = sorted(set(values) - TRAIN_FIELDS - set(SWEEP_KEYS) - {"method_options", "task_options"})
    if stray:
        what = "is not a sweep or train option" if len(stray) == 1 else "are not sweep or train options"
        raise GeodiagError(f"{', '.join(stray)} {what}; `geodiag sweep --help` lists them.")
    fixed = sorted(k for k in PER_CELL if values.get(k) is not None and k not in SWEEP_KEYS)
    if fixed:
        raise GeodiagError(f"{', '.join(fixed)} cannot be set for a whole sweep: it sets them per cell (use methods "
                           "and seeds).")
    seeds = _seeds(values.get("seeds", [0]))
    train = {k: v for k, v in values.items() if k in TRAIN_FIELDS and k not in (*SWEEP_KEYS, "method_options")}
    TrainConfig.from_dict(train)  # every shared option validated once, naming a bad field
    selection = _grid(values.get("lr_grid")), values.get("select_seeds")
    variants = [_variant(label, over, seeds, selection) for label, over in _methods(values.get("methods")).items()]
    selecting = [v.label for v in variants if v.lr_grid and not {**train, **v.train}.get("dev_size", 1)]
    if selecting:
        raise GeodiagError(f"Learning-rate selection needs dev items, and the {selecting[0]} cells have dev_size 0; "
                           "give --dev-size (e.g. 128) or drop lr_grid.")
    budget = Budget.parse(values["budget"]) if values.get("budget") else None
    workers = 1 if values.get("workers") is None else values["workers"]
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise GeodiagError(f"workers must be a positive integer, got {workers!r}.")
    return SweepSpec(variants, train, dict(values.get("method_options") or {}), budget, values.get("name"), workers)


def read_spec(path: str | Path, **overrides) -> SweepSpec:
    return from_mapping({**read_mapping(path), **{k: v for k, v in overrides.items() if v is not None}})


def _methods(methods) -> dict[str, dict]:
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if isinstance(methods, list):
        methods = {m: {} for m in methods}
    if not isinstance(methods, dict) or not methods:
        raise GeodiagError("A sweep needs methods, e.g. --methods lora,ralora (or a methods: list in the file).")
    return {str(k): dict(v or {}) for k, v in methods.items()}


def _variant(label: str, over: dict, seeds: tuple[int, ...], selection: tuple) -> Variant:
    method, preset = ALIASES.get(label, (label, {}))
    method = over.pop("method", method)
    grid = _grid(over.pop("lr_grid")) if "lr_grid" in over else selection[0]
    chosen = over.pop("select_seeds", selection[1])
    if method not in METHODS:
        raise GeodiagError(f"Unknown method '{method}' in the sweep; choose from {', '.join(sorted(METHODS))} "
                           f"(or the aliases {', '.join(ALIASES)}).")
    own_seeds = _seeds(over.pop("seeds")) if "seeds" in over else seeds
    train = {k: v for k, v in over.items() if k in TRAIN_FIELDS}
    options = {**preset, **{k: v for k, v in over.items() if k not in TRAIN_FIELDS}}
    unknown = sorted(set(options) - _option_names(method))
    if unknown:
        raise GeodiagError(f"{', '.join(unknown)} {'is not an option' if len(unknown) == 1 else 'are not options'} "
                           f"of {method} (the sweep's {label} cells).")
    get_method(method).config.from_dict(options)  # validated now, not in the middle of the sweep
    return Variant(label, method, own_seeds, train, options, grid, _select_seeds(label, grid, chosen, own_seeds, train))


def _grid(grid) -> tuple[float, ...]:
    """Learning rates from a list or a comma string: positive numbers, distinct, ascending."""
    if grid is None or grid == []:
        return ()
    items = [g.strip() for g in grid.split(",") if g.strip()] if isinstance(grid, str) else grid
    items = items if isinstance(items, list | tuple) else [items]
    out = []
    for g in items:
        try:
            value = float(g)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(g, bool) or not math.isfinite(value) or value <= 0:
            raise GeodiagError(f"lr_grid values must be positive numbers, e.g. 1e-4,3e-4,1e-3; got {g!r}.")
        out.append(value)
    return tuple(sorted(set(out)))


def _select_seeds(label: str, grid: tuple[float, ...], chosen, seeds: tuple[int, ...], train: dict
                  ) -> tuple[int, ...]:
    """The selection seeds of a label with a grid (default: its first seed); they must be among its seeds."""
    if not grid:
        return ()
    if "lr" in train:
        raise GeodiagError(f"The sweep's {label} cells have both lr and lr_grid; give one (the grid selects lr).")
    out = _seeds(chosen) if chosen is not None else seeds[:1]
    stray = [s for s in out if s not in seeds]
    if stray:
        raise GeodiagError(f"select_seeds {stray[0]} is not one of the {label} cells' seeds {list(seeds)}.")
    return out


def _seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, str):
        seeds = [s for s in seeds.split(",") if s.strip()]
    try:
        out = tuple(int(s) for s in (seeds if isinstance(seeds, list | tuple) else [seeds]))
    except (TypeError, ValueError):
        raise GeodiagError(f"seeds must be integers, e.g. 0,1,2; got {seeds!r}.") from None
    if not out or len(set(out)) != len(out):
        raise GeodiagError(f"seeds must be distinct integers, got {seeds!r}.")
    return out


def _option_names(method: str) -> set[str]:
    return {s.name for s in schema(get_method(method).config)}
