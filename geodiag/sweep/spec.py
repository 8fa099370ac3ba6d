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

A label names a registered method, an alias (pissa, olora: LoRA with that initialisation) or, with `method:`,
any variant of one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from geodiag.allocation import ANALYSIS_OF
from geodiag.allocation.budget import Budget
from geodiag.config import TrainConfig, read_mapping
from geodiag.errors import GeodiagError
from geodiag.methods import METHODS, get_method
from geodiag.options import schema

# labels that are a method with an option set
ALIASES = {"pissa": ("lora", {"init_lora_weights": "pissa"}), "olora": ("lora", {"init_lora_weights": "olora"})}
PER_CELL = ("method", "seed", "run_name", "sweep", "label", "budget", "allocation")  # a sweep sets these itself
SWEEP_KEYS = ("name", "methods", "seeds", "budget", "workers")
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


@dataclass(frozen=True)
class Variant:
    label: str
    method: str
    seeds: tuple[int, ...]
    train: dict  # TrainConfig fields for this label's cells
    options: dict  # method options for this label's cells


@dataclass(frozen=True)
class Cell:
    index: int
    label: str
    method: str
    seed: int
    train: dict
    options: dict


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
        return any(v.method in ANALYSIS_OF and "from_analysis" not in v.options for v in self.variants)

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        canon = {"v": [(v.label, v.method, v.seeds, v.train, v.options) for v in self.variants],
                 "t": {k: v for k, v in self.train.items() if k != "store"},  # the same sweep in another store
                 "o": self.options, "b": str(self.budget)}
        return "sweep-" + hashlib.sha1(json.dumps(canon, sort_keys=True, default=str).encode()).hexdigest()[:8]

    @property
    def store(self) -> str:
        return self.train.get("store") or TrainConfig().store

    def cells(self) -> list[Cell]:
        out = []
        for v in self.variants:
            for seed in v.seeds:
                shared = {k: val for k, val in self.options.items() if k in _option_names(v.method)}
                out.append(Cell(len(out), v.label, v.method, seed, {**self.train, **v.train}, {**shared, **v.options}))
        return out

    def to_mapping(self) -> dict:
        """The spec as a YAML/JSON mapping that `from_mapping` reads back to the same sweep (the same id)."""
        return {"name": self.id, **self.train, "method_options": self.options,
                "budget": str(self.budget) if self.budget else None,
                "methods": {v.label: {"method": v.method, "seeds": list(v.seeds), **v.train, **v.options}
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
    variants = [_variant(label, over, seeds) for label, over in _methods(values.get("methods")).items()]
    budget = Budget.parse(values["budget"]) if values.get("budget") else None
    workers = values.get("workers") or 1
    if not isinstance(workers, int) or workers < 1:
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


def _variant(label: str, over: dict, seeds: tuple[int, ...]) -> Variant:
    method, preset = ALIASES.get(label, (label, {}))
    method = over.pop("method", method)
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
    return Variant(label, method, own_seeds, train, options)


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
