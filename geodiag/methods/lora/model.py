"""LoRA through peft (LoraConfig), saved in peft's own format; also the peft LoRA with a per-module
rank_pattern / alpha_pattern that the allocation-driven methods (LoRA+GID, GeLoRA) train."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from geodiag.allocation import ModuleShape, Settings, Vectors, plan
from geodiag.methods.base import AdapterView, AllocationRecord, minus_initial, whole
from geodiag.methods.config import MethodConfig
from geodiag.methods.context import BuildContext
from geodiag.methods.lora.config import FROM_W, LoraConfig
from geodiag.methods.peft_adapted import PeftAdapted, check_rank, wrap
from geodiag.models import layer_index, module_type, resolve_targets

INITIAL_FACTORS = "initial_factors.safetensors"


class LoraAdapted(PeftAdapted):
    method = "lora"

    def __init__(self, model: nn.Module, config: MethodConfig | None):
        super().__init__(model, config)
        # PiSSA / OLoRA move B0 A0 out of W at initialisation: keep them, so that Delta W = s (B A - B0 A0)
        init = getattr(config, "init_lora_weights", "default")
        self.initial = {name: (m.lora_B["default"].weight.detach().clone(), m.lora_A["default"].weight.detach().clone())
                        for name, m in self.lora_layers()} if init in FROM_W else {}

    def adapters(self) -> list[AdapterView]:
        """Delta W = s B A; after PiSSA / OLoRA, s (B A - B0 A0) = s [B, -B0] [A; A0], rank <= 2r, from factors."""
        out = []
        for name, m in self.lora_layers():
            B, A = m.lora_B["default"].weight.detach(), m.lora_A["default"].weight.detach()  # (d_out, r), (r, d_in)
            if name in self.initial:
                B, A = minus_initial(whole(B), whole(A), *self.initial[name])  # FSDP: gathered before joining
            out.append(AdapterView(name, layer_index(name), module_type(name), B, A, None, float(m.scaling["default"])))
        return out

    def base_weight(self, name: str) -> torch.Tensor:
        """After PiSSA / OLoRA peft's base layer holds W - s B0 A0; the original W is that plus s B0 A0."""
        W = super().base_weight(name)
        if name not in self.initial:
            return W
        B0, A0 = self.initial[name]
        scaling = float(dict(self.lora_layers())[name].scaling["default"])
        return W + (scaling * B0 @ A0).to(W.dtype)

    def save(self, directory: Path, *, main: bool = True) -> None:
        """peft's format; after PiSSA / OLoRA also B0, A0 (initial_factors.safetensors), which the update is
        measured from (peft itself recomputes them from W when it loads the adapter)."""
        super().save(directory, main=main)
        if self.initial and main:
            from safetensors.torch import save_file

            save_file({f"{n}.{part}": t.contiguous().cpu() for n, (B0, A0) in self.initial.items()
                       for part, t in (("B0", B0), ("A0", A0))}, str(Path(directory) / INITIAL_FACTORS))


def build(model: nn.Module, cfg: LoraConfig, context: BuildContext) -> LoraAdapted:
    from peft import LoraConfig as PeftLoraConfig

    targets = resolve_targets(model, cfg.target_modules)
    check_rank(model, targets, cfg.r, "r")
    init = True if cfg.init_lora_weights == "default" else cfg.init_lora_weights
    peft_cfg = PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                              init_lora_weights=init, task_type="CAUSAL_LM")
    return LoraAdapted(wrap(model, peft_cfg), cfg)


def ruled_lora(model: nn.Module, cfg: MethodConfig, context: BuildContext, method: str, shapes: list[ModuleShape],
               settings: Settings, vectors: Callable[[], Vectors], *, alpha_ratio: float) -> LoraAdapted:
    """peft LoRA with the ranks an allocation rule gives (LoRA+GID, GeLoRA, the spectral rules): from an allocation
    file when the context has one (its ranks and alphas as they are), else `settings` applied to `vectors()`
    (measured or read only when no file is given); the GIDs behind the ranks, if any, are recorded with them."""
    if context.allocation:
        record = AllocationRecord(method, context.allocation.allocations(shapes), cfg.r)
        return allocated_lora(model, cfg, record, alphas=context.allocation.alphas, dropout=cfg.dropout)
    measured = vectors()
    record = AllocationRecord(method, list(plan(settings, measured, shapes).allocations), cfg.r, dict(measured.gids))
    return allocated_lora(model, cfg, record, alpha_ratio=alpha_ratio, dropout=cfg.dropout)


def allocated_lora(model: nn.Module, cfg: MethodConfig, record: AllocationRecord, *, dropout: float,
                   alpha_ratio: float = 2.0, alphas: dict[str, float] | None = None) -> LoraAdapted:
    """peft LoRA with rank_l and alpha_l per module: `alphas` as given, or alpha_ratio * rank_l (alpha / r
    constant)."""
    from peft import LoraConfig as PeftLoraConfig

    ranks = {a.module: a.rank for a in record.allocations}
    alphas = {m: alphas[m] for m in ranks} if alphas else {m: alpha_ratio * r for m, r in ranks.items()}
    top = max(ranks, key=ranks.get)
    peft_cfg = PeftLoraConfig(r=ranks[top], lora_alpha=alphas[top], lora_dropout=dropout, target_modules=list(ranks),
                              rank_pattern=ranks, alpha_pattern=alphas,
                              task_type="CAUSAL_LM")
    adapted = LoraAdapted(wrap(model, peft_cfg), cfg)
    adapted.method, adapted.allocation = record.method, record
    return adapted

