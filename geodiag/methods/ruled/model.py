"""LoRA with a spectral rule's ranks: the spectra come from the build context (a stored `geodiag analyze spectra`
run, or measured from the base model's weights right here: they need no data)."""

from __future__ import annotations

from torch import nn

from geodiag import allocation as alloc
from geodiag.methods.context import BuildContext
from geodiag.methods.lora.model import LoraAdapted, ruled_lora
from geodiag.methods.ruled.config import RuledLoraConfig
from geodiag.models import module_shapes, resolve_targets


def build(model: nn.Module, cfg: RuledLoraConfig, context: BuildContext) -> LoraAdapted:
    shapes = module_shapes(model, resolve_targets(model, cfg.target_modules))

    def spectra() -> alloc.Vectors:
        return context.require_measurements("the pretrained spectra", "spectra").spectra([s.name for s in shapes],
                                                                                       cfg.from_analysis)

    settings = alloc.Settings(cfg.RULE, r=cfg.r, rank_rounding=cfg.rank_rounding, budget_scale=cfg.rule_scale)
    return ruled_lora(model, cfg, context, f"lora-{cfg.RULE}", shapes, settings, spectra,
                      alpha_ratio=cfg.alpha_ratio)
