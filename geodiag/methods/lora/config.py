"""LoRA's options (Hu et al. 2022), as peft's LoraConfig takes them. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation.budget import Geometry, Sized, closest, min_width
from geodiag.methods.config import MethodConfig
from geodiag.methods.registry import MethodSpec, register
from geodiag.names import R_REF
from geodiag.options import option

INITS = ("default", "gaussian", "pissa", "olora")
# the inits that take their factors out of W: the update is then s (B A - B0 A0), not s B A
FROM_W = ("pissa", "olora")


@dataclass
class LoraConfig(MethodConfig):
    KIND: ClassVar[str] = "the lora method"

    r: int = option(R_REF, "LoRA rank")
    alpha: float = option(16.0, "LoRA alpha; the update is scaled by alpha / r")
    dropout: float = option(0.0, "dropout on the adapter input", group="advanced")
    init_lora_weights: str = option("default", "peft's initialisation: default (A Kaiming, B zero: Delta W = 0), "
                                    "gaussian, pissa (B A = W's top-r singular part, W keeps the residual; "
                                    "Meng et al. 2024) or olora (B A from a QR of W; Buyukakyuz 2024)",
                                    choices=INITS)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.r >= 1, "r", "a positive integer")
        self.require(self.alpha > 0, "alpha", "positive")
        self.require(0 <= self.dropout < 1, "dropout", "in [0, 1)")


def size(target: int, geo: Geometry) -> Sized | None:
    """r (d_in + d_out) per module: the rank whose count is nearest, at most min(d_in, d_out)."""
    width = sum(s.d_in + s.d_out for s in geo.shapes)
    return closest((({"r": r}, r * width) for r in range(1, min_width(geo.shapes) + 1)), target)


REGISTERED = register(MethodSpec("lora", LoraConfig, "geodiag.methods.lora.model",
                                 "LoRA through peft (Hu et al. 2022)", size, fsdp=True))


@dataclass
class AllocatedLoraConfig(MethodConfig):
    """What the LoRA methods whose ranks come from an analysis share (LoRA+GID, GeLoRA): peft LoRA with a
    rank_pattern, alpha / r held constant, and the LoRA rank their budget is compared with."""

    from_analysis: str | None = option(None, "run id of the `geodiag analyze` run to take the allocation from; "
                                       "without it the analysis runs on the training data first")
    alpha_ratio: float = option(2.0, "alpha / r of every module (the scaling alpha / r stays constant)")
    r: int = option(R_REF, "reference LoRA rank: params/lora_reference counts LoRA at this rank", group="advanced")
    dropout: float = option(0.0, "dropout on the adapter input", group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.alpha_ratio > 0, "alpha_ratio", "positive")
        self.require(self.r >= 1, "r", "a positive integer")
        self.require(0 <= self.dropout < 1, "dropout", "in [0, 1)")
