"""LoRA with a spectral rule's ranks: the spectra come from the build context (a stored `geodiag analyze spectra`
run, or measured from the base model's weights right here: they need no data)."""

from __future__ import annotations

from torch import nn

from geodiag import allocation as alloc
from geodiag.methods.base import AllocationRecord
from geodiag.methods.context import BuildContext
from geodiag.methods.lora.model import LoraAdapted, allocated_lora
from geodiag.methods.ruled.config import RuledLoraConfig
from geodiag.models import module_shapes, resolve_targets


def build(model: nn.Module, cfg: RuledLoraConfig, context: BuildContext) -> LoraAdapted:
    name = f"lora-{cfg.RULE}"
    shapes = module_shapes(model, resolve_targets(model, cfg.target_modules))
    if context.allocation:  # a file from `geodiag allocate`: its ranks and alphas as they are
        record = AllocationRecord(name, context.allocation.allocations(shapes), cfg.r)
        return allocated_lora(model, cfg, record, alphas=context.allocation.alphas, dropout=cfg.dropout)
    vectors = context.require_measurements("the pretrained spectra", "spectra").spectra(
        [s.name for s in shapes], cfg.from_analysis)
    settings = alloc.Settings(cfg.RULE, r=cfg.r, rank_rounding=cfg.rank_rounding, budget_scale=cfg.rule_scale)
    record = AllocationRecord(name, list(alloc.plan(settings, vectors, shapes).allocations), cfg.r)
    return allocated_lora(model, cfg, record, alpha_ratio=cfg.alpha_ratio, dropout=cfg.dropout)
