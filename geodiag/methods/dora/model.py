"""DoRA through peft: W' = m ⊙ (W + s B A) / ‖W + s B A‖ per output row. The adapter view is the direction
update s B A (its spectrum is exact, from the factors); W' - W is not low-rank, so the magnitude vector is
handed to the collectors too, which record DoRA's magnitude and direction changes (metrics.decomposition)."""

from __future__ import annotations

import torch
from torch import nn

from geodiag.methods.context import BuildContext
from geodiag.methods.dora.config import DoraConfig
from geodiag.methods.lora.model import LoraAdapted
from geodiag.methods.peft_adapted import check_rank, wrap
from geodiag.models import resolve_targets


class DoraAdapted(LoraAdapted):
    method = "dora"

    def magnitudes(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """module -> (W, m): the frozen base weight (d_out, d_in) and the trained magnitude (d_out,)."""
        return {name: (m.get_base_layer().weight.detach(), m.lora_magnitude_vector["default"].weight.detach())
                for name, m in self.lora_layers()}


def build(model: nn.Module, cfg: DoraConfig, context: BuildContext) -> DoraAdapted:
    from peft import LoraConfig as PeftLoraConfig

    targets = resolve_targets(model, cfg.target_modules)
    check_rank(model, targets, cfg.r, "r")
    init = True if cfg.init_lora_weights == "default" else cfg.init_lora_weights
    peft_cfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                              init_lora_weights=init, use_dora=True, task_type="CAUSAL_LM")
    return DoraAdapted(wrap(model, peft_cfg), cfg)
