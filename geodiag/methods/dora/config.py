"""DoRA's options (Liu et al. 2024), as peft's LoraConfig(use_dora=True) takes them. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation.budget import Geometry, Sized, closest, min_width
from geodiag.methods.lora.config import LoraConfig
from geodiag.methods.registry import MethodSpec, register
from geodiag.options import option


@dataclass
class DoraConfig(LoraConfig):
    KIND: ClassVar[str] = "the dora method"

    # the magnitude/direction split is measured against W; PiSSA and OLoRA would replace W by a residual
    init_lora_weights: str = option("default", "peft's initialisation of B and A: default (B zero) or gaussian",
                                    choices=("default", "gaussian"))


def size(target: int, geo: Geometry) -> Sized | None:
    """r (d_in + d_out) + d_out per module (the magnitude vector m)."""
    width, magnitudes = sum(s.d_in + s.d_out for s in geo.shapes), sum(s.d_out for s in geo.shapes)
    return closest((({"r": r}, r * width + magnitudes) for r in range(1, min_width(geo.shapes) + 1)), target)


REGISTERED = register(MethodSpec("dora", DoraConfig, "geodiag.methods.dora.model",
                                 "DoRA through peft: magnitude and direction (Liu et al. 2024)", size))
