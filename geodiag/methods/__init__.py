"""Adaptation methods, registered by name the way peft lays out its tuners: a config dataclass plus a
build function. `geodiag train --method NAME` and the Launch page list what is registered here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from geodiag.errors import GeodiagError
from geodiag.methods.allocated import AllocatedLoraConfig, GeLoraConfig, build_gelora, build_lora_gid
from geodiag.methods.base import Adapted, AdapterView, BuildContext, MethodConfig
from geodiag.methods.full import FullConfig, build_full
from geodiag.methods.manifold import ManifoldConfig, build_manifold
from geodiag.methods.peft_methods import AdaLoraMethodConfig, LoraMethodConfig, build_adalora, build_lora
from geodiag.methods.ralora import RaLoraConfig
from geodiag.methods.ralora_build import RaLoraProConfig, build_ralora


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config: type[MethodConfig]
    build: Callable[..., Adapted]  # (model, config, total_steps, context) -> Adapted
    summary: str


METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> None:
    METHODS[spec.name] = spec


register(MethodSpec("lora", LoraMethodConfig, build_lora, "LoRA through peft (Hu et al. 2022)"))
register(MethodSpec("adalora", AdaLoraMethodConfig, build_adalora, "AdaLoRA through peft (Zhang et al. 2023)"))
register(MethodSpec("manifold", ManifoldConfig, build_manifold,
                    "ManifoldLoRA: gated adaptive rank + manifold probes (paper 002)"))
register(MethodSpec("ralora", RaLoraConfig, build_ralora, "RaLoRA: block-diagonal LoRA with GID-sized blocks (003)"))
register(MethodSpec("ralora-pro", RaLoraProConfig, build_ralora,
                    "RaLoRA-Pro: importance-based ranks, then GID-sized blocks (003)"))
register(MethodSpec("full", FullConfig, build_full,
                    "full fine-tuning of the target weights (the reference for GID dynamics, 003 Fig. 3c)"))
register(MethodSpec("lora-gid", AllocatedLoraConfig, build_lora_gid, "LoRA with rank = round(GID) per module (003)"))
register(MethodSpec("gelora", GeLoraConfig, build_gelora,
                    "GeLoRA: ranks from the intrinsic-dimension profile, as reported (001)"))


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise GeodiagError(f"Unknown method '{name}'; choose one of {', '.join(sorted(METHODS))}.")
    return METHODS[name]


def build(name: str, model: nn.Module, options: dict | None = None, *, total_steps: int = 1,
          context: BuildContext | None = None) -> Adapted:
    spec = get_method(name)
    cfg = spec.config.from_dict(options or {})
    return spec.build(model, cfg, total_steps, context or BuildContext())


__all__ = ["METHODS", "Adapted", "AdapterView", "BuildContext", "MethodConfig", "MethodSpec", "build", "get_method",
           "register"]
