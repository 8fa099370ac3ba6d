"""LoRA+GID (RaLoRA App. E.4): rank_l = round(scale GID_l), at least 1, as a peft rank_pattern; the GIDs come from
the build context (a stored `geodiag analyze gid` run, or a sweep on the training data first)."""

from __future__ import annotations

from torch import nn

from geodiag import allocation as alloc
from geodiag.methods.base import AllocationRecord
from geodiag.methods.context import BuildContext
from geodiag.methods.lora.model import LoraAdapted, allocated_lora
from geodiag.methods.lora_gid.config import LoraGidConfig
from geodiag.models import module_shapes, resolve_targets


def build(model: nn.Module, cfg: LoraGidConfig, context: BuildContext) -> LoraAdapted:
    targets = resolve_targets(model, cfg.target_modules)
    if context.allocation:  # a file from `geodiag allocate`: its ranks and alphas as they are
        record = AllocationRecord("lora-gid", context.allocation.allocations(module_shapes(model, targets)), cfg.r)
        return allocated_lora(model, cfg, record, alphas=context.allocation.alphas, dropout=cfg.dropout)
    gids, _ = context.require_measurements("GIDs", "gid").gids(targets, cfg.from_analysis, cfg.gid_batches)
    settings = alloc.Settings("lora-gid", r=cfg.r, rank_rounding=cfg.rank_rounding, budget_scale=cfg.gid_scale)
    allocations = list(alloc.plan(settings, alloc.Vectors(gids=gids), module_shapes(model, targets)).allocations)
    record = AllocationRecord("lora-gid", allocations, cfg.r, gids)
    return allocated_lora(model, cfg, record, alpha_ratio=cfg.alpha_ratio, dropout=cfg.dropout)
