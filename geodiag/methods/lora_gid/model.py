"""LoRA+GID (RaLoRA App. E.4): rank_l = round(scale GID_l), at least 1, as a peft rank_pattern; the GIDs come from
the build context (a stored `geodiag analyze gid` run, or a pass over the training data first)."""

from __future__ import annotations

from torch import nn

from geodiag import allocation as alloc
from geodiag.methods.context import BuildContext
from geodiag.methods.lora.model import LoraAdapted, ruled_lora
from geodiag.methods.lora_gid.config import LoraGidConfig
from geodiag.models import module_shapes, resolve_targets


def build(model: nn.Module, cfg: LoraGidConfig, context: BuildContext) -> LoraAdapted:
    targets = resolve_targets(model, cfg.target_modules)

    def gids() -> alloc.Vectors:
        return alloc.Vectors(gids=context.require_measurements("GIDs", "gid").gids(targets, cfg.from_analysis,
                                                                                   cfg.gid_batches)[0])

    settings = alloc.Settings("lora-gid", r=cfg.r, rank_rounding=cfg.rank_rounding, budget_scale=cfg.gid_scale)
    return ruled_lora(model, cfg, context, "lora-gid", module_shapes(model, targets), settings, gids,
                      alpha_ratio=cfg.alpha_ratio)
