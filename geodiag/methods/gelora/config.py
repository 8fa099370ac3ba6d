"""GeLoRA's options: ranks from the intrinsic-dimension profile, r_i = max(d_{i+1} - d_i, 0) + 1, alpha_i =
32 r_i, as reported for GeLoRA (Ed-dib et al.). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation import Settings, plan
from geodiag.allocation.budget import Geometry, Sized, by_scale
from geodiag.methods.lora.config import AllocatedLoraConfig
from geodiag.methods.registry import MethodSpec, register
from geodiag.names import MIN_ID_POINTS
from geodiag.options import option


@dataclass
class GeLoraConfig(AllocatedLoraConfig):
    KIND: ClassVar[str] = "the gelora method"

    from_analysis: str | None = option(None, "run id of a `geodiag analyze id` run to take the ID profile from; "
                                       "without it an ID pass runs on the training data first")
    alpha_ratio: float = option(32.0, "alpha / r of every module (GeLoRA's runs use alpha_i = 32 r_i)")
    gelora_scale: float = option(1.0, "budget scale on r_i = max(d_{i+1} - d_i, 0) + 1")
    id_tokens: int = option(4000, "tokens per layer for the ID pass when no analysis run is given",
                            group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.gelora_scale > 0, "gelora_scale", "positive")
        self.require(self.id_tokens >= MIN_ID_POINTS, "id_tokens", f"at least {MIN_ID_POINTS} points")


def size(target: int, geo: Geometry) -> Sized | None:
    """r_i = round(gelora_scale x (max(d_{i+1} - d_i, 0) + 1)), at least 1, at most min(d_in, d_out): the scale
    whose count is nearest."""
    ids = geo.vectors.ids
    if any(s.layer is None or s.layer not in ids or s.layer + 1 not in ids for s in geo.shapes):
        return None
    steps = {s.name: max(ids[s.layer + 1] - ids[s.layer], 0.0) + 1 for s in geo.shapes}

    def count(scale: float) -> int:
        return plan(Settings("gelora", budget_scale=scale), geo.vectors, geo.shapes).params

    base = target / sum(steps[s.name] * (s.d_in + s.d_out) for s in geo.shapes)
    return by_scale(target, count, base, "gelora_scale")


# lr 1e-4: alpha = 32 r gives an update scale 16x LoRA's alpha = 2 r
REGISTERED = register(MethodSpec("gelora", GeLoraConfig, "geodiag.methods.gelora.model",
                                 "GeLoRA: ranks from the intrinsic-dimension profile, as reported", size,
                                 lr=1e-4, rule="gelora", fsdp=True))
