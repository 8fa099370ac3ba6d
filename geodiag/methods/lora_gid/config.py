"""LoRA+GID's options (RaLoRA App. E.4: rank_l = round(GID_l) as a peft rank_pattern). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation import ROUNDINGS, Settings, plan
from geodiag.allocation.budget import Geometry, Sized, by_scale
from geodiag.methods.lora.config import AllocatedLoraConfig
from geodiag.methods.registry import MethodSpec, register
from geodiag.options import option


@dataclass
class LoraGidConfig(AllocatedLoraConfig):
    KIND: ClassVar[str] = "the lora-gid method"

    from_analysis: str | None = option(None, "run id of a `geodiag analyze gid` run to take GIDs from; without it "
                                       "a GID pass runs on the training data first")
    gid_scale: float = option(1.0, "budget scale: rank = rounding(gid_scale x GID), at least 1")
    rank_rounding: str = option("round", "rank = rounding(GID): round, ceil or floor", choices=ROUNDINGS,
                                group="advanced")
    gid_batches: int = option(16, "mini-batches for the GID pass when no analysis run is given", group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.gid_batches >= 1, "gid_batches", "a positive integer")
        self.require(self.gid_scale > 0, "gid_scale", "positive")


def size(target: int, geo: Geometry) -> Sized | None:
    """The rule's rank_l = round(gid_scale x GID_l), at least 1, at most min(d_in, d_out): the scale whose count
    is nearest."""
    gids = geo.vectors.gids
    if not gids or any(s.name not in gids for s in geo.shapes):
        return None

    def count(scale: float) -> int:
        return plan(Settings("lora-gid", budget_scale=scale), geo.vectors, geo.shapes).params

    base = target / max(sum(gids[s.name] * (s.d_in + s.d_out) for s in geo.shapes), 1e-12)
    return by_scale(target, count, base, "gid_scale")


REGISTERED = register(MethodSpec("lora-gid", LoraGidConfig, "geodiag.methods.lora_gid.model",
                                 "LoRA with rank = round(GID) per module (RaLoRA App. E.4)", size,
                                 rule="lora-gid", fsdp=True))
