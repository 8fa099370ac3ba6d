"""RaLoRA and RaLoRA-Pro options (RaLoRA §3.3-3.4; defaults r = 8, alpha = 16, n_max = 32). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation import ROUNDINGS, Settings, plan
from geodiag.allocation.budget import Geometry, Sized, closest, min_width
from geodiag.methods.config import MethodConfig
from geodiag.methods.lora.config import size as lora_size
from geodiag.methods.registry import MethodSpec, register
from geodiag.names import R_REF
from geodiag.options import option


@dataclass
class RaLoraConfig(MethodConfig):
    KIND: ClassVar[str] = "the ralora method"
    pro: ClassVar[bool] = False  # RaLoRA-Pro re-allocates ranks by importance first

    r: int = option(R_REF, "rank of every block (RaLoRA) or reference rank r_ref (RaLoRA-Pro)")
    alpha: float = option(16.0, "scaling numerator: each block is scaled by alpha / r")
    from_analysis: str | None = option(None, "run id of a `geodiag analyze gid` run to take GIDs from; without it "
                                       "a GID pass runs on the training data first")
    n_max: int = option(32, "maximum number of blocks (a power of two)", group="advanced")
    block_rounding: str = option("floor", "exponent rounding: floor, ceil (RaLoRA Eq. 4) or round",
                                 choices=ROUNDINGS, group="advanced")
    gid_batches: int = option(16, "mini-batches for the GID pass when no analysis run is given", group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.r >= 1, "r", "a positive integer")
        self.require(self.alpha > 0, "alpha", "positive")
        self.require(self.n_max >= 1 and (self.n_max & (self.n_max - 1)) == 0, "n_max", "a power of two")
        self.require(self.gid_batches >= 1, "gid_batches", "a positive integer")


@dataclass
class RaLoraProConfig(RaLoraConfig):
    KIND: ClassVar[str] = "the ralora-pro method"
    pro: ClassVar[bool] = True

    rank_rounding: str = option("round", "rank rounding: round, ceil (RaLoRA Eq. 8) or floor",
                                choices=ROUNDINGS, group="advanced")


def size(target: int, geo: Geometry) -> Sized | None:
    """n blocks of rank r on d/n slices cost r (d_in + d_out), LoRA's count at r: RaLoRA matches by construction."""
    return lora_size(target, geo)


def size_pro(target: int, geo: Geometry) -> Sized | None:
    """RaLoRA-Pro spends LoRA's budget at r_ref by importance (RaLoRA Eq. 6-8); rounding and the [r_ref/2, 2 r_ref]
    clip move it a little: the r_ref whose allocation is nearest."""
    if not geo.vectors.importance:
        return None

    def count(r: int) -> int:
        return plan(Settings("ralora-pro", "paper", r=r), geo.vectors, geo.shapes).params

    return closest((({"r": r}, count(r)) for r in range(1, min_width(geo.shapes) + 1)), target)


REGISTERED = (register(MethodSpec("ralora", RaLoraConfig, "geodiag.methods.ralora.model",
                                  "RaLoRA: block-diagonal LoRA with GID-sized blocks", size, rule="ralora")),
              register(MethodSpec("ralora-pro", RaLoraProConfig, "geodiag.methods.ralora.model",
                                  "RaLoRA-Pro: importance-based ranks, then GID-sized blocks", size_pro,
                                  rule="ralora-pro")))
