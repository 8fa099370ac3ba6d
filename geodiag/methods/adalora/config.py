"""AdaLoRA's options (Zhang et al. 2023), as peft's AdaLoraConfig takes them, with its schedule given as
fractions of the run. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation.budget import Geometry, Sized, closest, min_width
from geodiag.methods.config import MethodConfig
from geodiag.methods.registry import MethodSpec, register
from geodiag.names import R_REF
from geodiag.options import option


@dataclass
class AdaLoraConfig(MethodConfig):
    KIND: ClassVar[str] = "the adalora method"

    init_r: int = option(12, "initial rank of every adapter")
    target_r: int = option(R_REF, "average rank AdaLoRA prunes towards")
    alpha: float = option(16.0, "scaling numerator (peft lora_alpha)")
    tinit: float = option(0.1, "fraction of steps before pruning starts", group="advanced")
    tfinal: float = option(0.2, "fraction of steps at the end with the final budget", group="advanced")
    delta_t: int = option(10, "steps between two rank reallocations", group="advanced")
    orth_reg_weight: float = option(0.5, "weight of the orthogonality regulariser", group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.init_r >= 1, "init_r", "a positive integer")
        self.require(1 <= self.target_r <= self.init_r, "target_r", f"between 1 and init_r={self.init_r}")
        self.require(0 <= self.tinit < 1 and 0 <= self.tfinal < 1 and self.tinit + self.tfinal < 1,
                     "tinit", "a fraction with tinit + tfinal < 1")
        self.require(self.delta_t >= 1, "delta_t", "a positive integer")


def size(target: int, geo: Geometry) -> Sized | None:
    """AdaLoRA prunes towards target_r ranks per module on average, each rank a column of P, a row of Q and one
    singular value (d_in + d_out + 1); it starts at init_r = 1.5 target_r (peft's 12 for 8)."""
    width = sum(s.d_in + s.d_out + 1 for s in geo.shapes)
    top = min_width(geo.shapes)
    return closest((({"target_r": r, "init_r": min(top, max(r, round(1.5 * r)))}, r * width)
                    for r in range(1, top + 1)), target, "the final budget: target_r ranks per module on average")


REGISTERED = register(MethodSpec("adalora", AdaLoraConfig, "geodiag.methods.adalora.model",
                           "AdaLoRA through peft (Zhang et al. 2023)", size))
