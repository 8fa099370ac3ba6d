"""LoRA through peft (LoraConfig), saved in peft's own format; also the peft LoRA with a per-module
rank_pattern / alpha_pattern that the allocation-driven methods (LoRA+GID, GeLoRA) train."""

from __future__ import annotations

from torch import nn

from geodiag.methods.base import AdapterView, AllocationRecord
from geodiag.methods.config import MethodConfig
from geodiag.methods.context import BuildContext
from geodiag.methods.lora.config import LoraConfig
from geodiag.methods.peft_adapted import PeftAdapted, check_rank, wrap
from geodiag.models import layer_index, module_type, resolve_targets


class LoraAdapted(PeftAdapted):
    method = "lora"

    def adapters(self) -> list[AdapterView]:
        return [AdapterView(name, layer_index(name), module_type(name), m.lora_B["default"].weight.detach(),
                            m.lora_A["default"].weight.detach(), None, float(m.scaling["default"]))
                for name, m in self.lora_layers()]


def build(model: nn.Module, cfg: LoraConfig, context: BuildContext) -> LoraAdapted:
    from peft import LoraConfig as PeftLoraConfig

    targets = resolve_targets(model, cfg.target_modules)
    check_rank(model, targets, cfg.r, "r")
    peft_cfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                              task_type="CAUSAL_LM")
    return LoraAdapted(wrap(model, peft_cfg), cfg)


def allocated_lora(model: nn.Module, cfg: MethodConfig, record: AllocationRecord, *, alpha_ratio: float,
                   dropout: float) -> LoraAdapted:
    """peft LoRA with rank_l and alpha_l = alpha_ratio * rank_l per module (alpha / r constant)."""
    from peft import LoraConfig as PeftLoraConfig

    ranks = {a.module: a.rank for a in record.allocations}
    top = max(ranks.values())
    peft_cfg = PeftLoraConfig(r=top, lora_alpha=alpha_ratio * top, lora_dropout=dropout, target_modules=list(ranks),
                              rank_pattern=ranks, alpha_pattern={m: alpha_ratio * r for m, r in ranks.items()},
                              task_type="CAUSAL_LM")
    adapted = LoraAdapted(wrap(model, peft_cfg), cfg)
    adapted.method, adapted.allocation = record.method, record
    return adapted

