"""GeLoRA (Ed-dib et al., as reported): r_i = max(d_{i+1} - d_i, 0) + 1 for every adapted matrix of block i,
from the TwoNN intrinsic dimensions of hidden_states[0..L], as a peft rank_pattern. The profile comes from the
build context (a stored `geodiag analyze id` run, or a sweep on the training data first)."""

from __future__ import annotations

from torch import nn

from geodiag import allocation as alloc
from geodiag.methods.base import AllocationRecord
from geodiag.methods.context import BuildContext
from geodiag.methods.gelora.config import GeLoraConfig
from geodiag.methods.lora.model import LoraAdapted, allocated_lora
from geodiag.models import module_shapes, resolve_targets


def build(model: nn.Module, cfg: GeLoraConfig, context: BuildContext) -> LoraAdapted:
    targets = resolve_targets(model, cfg.target_modules)
    if context.allocation:  # a file from `geodiag allocate`: its ranks and alphas as they are
        record = AllocationRecord("gelora", context.allocation.allocations(module_shapes(model, targets)), cfg.r)
        return allocated_lora(model, cfg, record, alphas=context.allocation.alphas, dropout=cfg.dropout)
    ids = context.require_measurements("an intrinsic-dimension profile", "id").id_profile(cfg.from_analysis,
                                                                                        cfg.id_tokens)
    settings = alloc.Settings("gelora", r=cfg.r, budget_scale=cfg.gelora_scale)
    allocations = list(alloc.plan(settings, alloc.Vectors(ids=dict(enumerate(ids))), module_shapes(model, targets))
                       .allocations)
    record = AllocationRecord("gelora", allocations, cfg.r)
    return allocated_lora(model, cfg, record, alpha_ratio=cfg.alpha_ratio, dropout=cfg.dropout)
