"""AdaLoRA through peft (AdaLoraConfig): Delta W = B diag(E) A * alpha / r, with E pruned by importance
after each optimiser step; saved in peft's own format."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from geodiag.methods.adalora.config import AdaLoraConfig
from geodiag.methods.base import AdapterView
from geodiag.methods.context import BuildContext
from geodiag.methods.peft_adapted import PeftAdapted, check_rank, wrap
from geodiag.models import layer_index, module_type, resolve_targets
from geodiag.names import LOSS_ORTHOGONALITY


class AdaLoraAdapted(PeftAdapted):
    method = "adalora"

    def save(self, directory: Path, *, main: bool = True) -> None:
        with warnings.catch_warnings():
            # a module AdaLoRA pruned to rank 0 saves (0, d) factors, which peft mistakes for an ungathered shard
            warnings.filterwarnings("ignore", message=".*LoRA tensor\\(s\\) have invalid shape.*")
            super().save(directory, main=main)

    def aux_losses(self, progress: float) -> dict[str, tuple[torch.Tensor, float]]:
        """peft's orthogonality regulariser on P (lora_B) and Q (lora_A): mean ||P^T P - I||_F, ||Q Q^T - I||_F."""
        terms = []
        for _, m in self.lora_layers():
            A, B = m.lora_A["default"], m.lora_B["default"]  # (r, d_in), (d_out, r)
            for cov in (A @ A.T, B.T @ B):  # (r, r) each
                eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
                terms.append(torch.linalg.matrix_norm(cov - eye))
        return {LOSS_ORTHOGONALITY: (torch.stack(terms).mean(), self.config.orth_reg_weight)} if terms else {}

    def after_step(self, step: int) -> None:
        self.model.base_model.update_and_allocate(step)  # needs this step's gradients: before zero_grad

    def adapters(self) -> list[AdapterView]:
        # peft keeps the allocation as {"<module>.lora_E.default": [kept, ...]} once pruning began (older
        # versions key it "base_model.model.<module>.%s.default"); "<module>." matches both
        pattern = getattr(self.model.peft_config["default"], "rank_pattern", None) or {}
        out = []
        for name, m in self.lora_layers():
            E = m.lora_E["default"].detach().reshape(-1)  # (r,) singular values, pruned ones are 0
            scaling = float(m.scaling["default"]) / (float(m.ranknum["default"]) + 1e-5)  # as SVDLinear
            kept = next((v for k, v in pattern.items() if f"{name}." in k), None)
            rank = int(sum(kept)) if kept is not None else int(m.r["default"])
            out.append(AdapterView(name, layer_index(name), module_type(name), m.lora_B["default"].detach(),
                                   m.lora_A["default"].detach(), E, scaling, rank=rank))
        return out


def build(model: nn.Module, cfg: AdaLoraConfig, context: BuildContext) -> AdaLoraAdapted:
    from peft import AdaLoraConfig as PeftAdaLoraConfig

    targets = resolve_targets(model, cfg.target_modules)
    check_rank(model, targets, cfg.init_r, "init_r")
    steps = max(context.total_steps, 1)
    peft_cfg = PeftAdaLoraConfig(init_r=cfg.init_r, target_r=cfg.target_r, lora_alpha=cfg.alpha,
                                 tinit=int(cfg.tinit * steps), tfinal=int(cfg.tfinal * steps), deltaT=cfg.delta_t,
                                 total_step=steps, orth_reg_weight=0.0, target_modules=targets, task_type="CAUSAL_LM")
    # peft would add the regulariser into outputs.loss, hiding it inside loss/lm; geodiag adds the same term
    # as its own auxiliary loss (loss/orthogonality), once per step since it depends on the parameters only
    adapted = AdaLoraAdapted(wrap(model, peft_cfg), cfg)
    for _, m in adapted.lora_layers():
        # peft's float32 autocast of the adapter under a bfloat16 model re-creates ranknum as a parameter that
        # requires grad; it is a constant (the rank the scaling divides by), never trained
        m.ranknum["default"].requires_grad_(False)
    return adapted
