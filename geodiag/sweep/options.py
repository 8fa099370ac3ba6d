"""The sweep's own options, declared once: `geodiag sweep`'s flags and the Launch page's Sweep form are both rendered
from this schema (every `geodiag train` option applies to every cell besides). Torch-free.

The values are checked where the sweep is built (`spec.from_mapping`), because a sweep file may give them in richer
shapes than a flag can (methods as a mapping of label -> overrides, a grid per label)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.options import Config, option


@dataclass
class SweepOptions(Config):
    KIND: ClassVar[str] = "geodiag sweep"

    methods: list[str] | None = option(None, "the methods compared, e.g. lora,ralora,manifold (or the aliases pissa, "
                                             "olora: LoRA with that initialisation)")
    seeds: list[str] | None = option(None, "training seeds of every method, e.g. 0,1,2 (default: 0)")
    budget: str | None = option(None, "lora-r=N: every method sized to LoRA's parameter count at rank N on the same "
                                      "modules (empty: each method at its own size)")
    lr_grid: list[str] | None = option(None, "learning rates selected among on the dev items, e.g. "
                                             "1e-4,3e-4,1e-3,3e-3: each method trains at every value on the selection "
                                             "seeds, then its other seeds at the best (per label in a file: lr_grid)")
    select_seeds: list[str] | None = option(None, "the seeds the selection trains at every grid value (default: the "
                                                  "first seed)")
    workers: int = option(1, "cells run at once, each its own process")
    name: str | None = option(None, "the sweep id (default: sweep-<hash of its options>)", group="advanced")
