"""Building RaLoRA / RaLoRA-Pro: GIDs (and importances) from a stored analysis or a sweep run first."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from geodiag.methods.allocated import gid_measurements
from geodiag.methods.base import BuildContext, option
from geodiag.methods.ralora import RaLoraAdapted, RaLoraConfig, allocate
from geodiag.models import resolve_targets


@dataclass
class RaLoraProConfig(RaLoraConfig):
    pro: bool = option(True, "RaLoRA-Pro: importance-based ranks first")


def build_ralora(model: nn.Module, cfg: RaLoraConfig, total_steps: int,
                 context: BuildContext | None = None) -> RaLoraAdapted:
    targets = resolve_targets(model, cfg.target_modules)
    gids, importance = gid_measurements(model, targets, cfg.from_analysis, context or BuildContext(),
                                        cfg.gid_batches)
    return RaLoraAdapted(model, cfg, allocate(model, cfg, gids, importance), gids)
