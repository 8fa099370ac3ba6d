"""Methods registered by name, as peft lays out its tuners: each method is a folder with a torch-free
`config.py` and its adapter code, and its `__init__.py` registers a `MethodSpec`. The registry imports no
torch: the adapter module is imported on the first build, so the dashboard can list every method's options.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from geodiag.allocation.budget import Sizer
from geodiag.allocation.registry import get_rule
from geodiag.errors import GeodiagError
from geodiag.methods.config import MethodConfig
from geodiag.methods.context import BuildContext


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config: type[MethodConfig]
    module: str  # defines build(model, config, context) -> Adapted (and restore(...) for hook adapters)
    summary: str
    # (target parameters, Geometry) -> the options that come closest under the method's rule (allocation.budget);
    # None: the method has no size to match (full fine-tuning)
    size: Sizer | None = None
    # a learning rate at which it learns the default task on SmolLM2-135M in 100 steps (the sample store's runs):
    # what the Launch form pre-fills when the store has selected none for it
    lr: float = 1e-3
    rule: str | None = None  # the allocation rule (geodiag.allocation.RULES) it takes its ranks from
    # FSDP shards parameters; a method whose code reads or rewrites whole parameters outside a forward (AdaLoRA's
    # rank masking, ManifoldLoRA's probe QR, RaLoRA's hook blocks) would see shards, so it says it cannot
    fsdp: bool = False

    @property
    def analysis(self) -> str | None:
        """The `geodiag analyze` kind whose run its rule reads (a sweep shares one between its methods)."""
        return get_rule(self.rule).analysis if self.rule else None

    def code(self):
        """The adapter module (imports torch)."""
        return importlib.import_module(self.module)


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    METHODS[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise GeodiagError(f"Unknown method '{name}'; choose one of {', '.join(sorted(METHODS))}.")
    return METHODS[name]


def analysis_of(name: str) -> str | None:
    """The analysis kind a method's ranks come from; None for a method without a rule (or an unknown name)."""
    spec = METHODS.get(name)
    return spec.analysis if spec else None


def build(name: str, model: Any, options: dict | None = None, *, total_steps: int = 1,
          context: BuildContext | None = None):
    """The method `name` attached to `model`, configured by `options` (validated, naming a bad field)."""
    spec = get_method(name)
    cfg = spec.config.from_dict(options or {})
    return spec.code().build(model, cfg, context or BuildContext(total_steps=total_steps))
