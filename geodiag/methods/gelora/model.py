"""GeLoRA (Ed-dib et al., as reported): r_i = max(d_{i+1} - d_i, 0) + 1 for every adapted matrix of block i,
from the TwoNN intrinsic dimensions of hidden_states[0..L], as a peft rank_pattern. The profile comes from the
build context (a stored `geodiag analyze id` run, or a pass over the training data first)."""

from __future__ import annotations

from torch import nn

from geodiag import allocation as alloc
from geodiag.methods.context import BuildContext
from geodiag.methods.gelora.config import GeLoraConfig
from geodiag.methods.lora.model import LoraAdapted, ruled_lora
from geodiag.models import module_shapes, resolve_targets


def build(model: nn.Module, cfg: GeLoraConfig, context: BuildContext) -> LoraAdapted:
    def profile() -> alloc.Vectors:
        ids = context.require_measurements("an intrinsic-dimension profile", "id").id_profile(cfg.from_analysis,
                                                                                            cfg.id_tokens)
        return alloc.Vectors(ids=dict(enumerate(ids)))

    settings = alloc.Settings("gelora", r=cfg.r, budget_scale=cfg.gelora_scale)
    return ruled_lora(model, cfg, context, "gelora", module_shapes(model, resolve_targets(model, cfg.target_modules)),
                      settings, profile, alpha_ratio=cfg.alpha_ratio)
