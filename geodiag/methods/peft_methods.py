"""LoRA and AdaLoRA through peft (LoraConfig / AdaLoraConfig), saved in peft's own format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from geodiag.errors import GeodiagError
from geodiag.methods.base import Adapted, AdapterView, MethodConfig, option
from geodiag.models import layer_index, linear_modules, module_type, resolve_targets

_PREFIX = "base_model.model."


@dataclass
class LoraMethodConfig(MethodConfig):
    r: int = option(8, "LoRA rank")
    alpha: float = option(16.0, "LoRA alpha; the update is scaled by alpha / r")
    dropout: float = option(0.0, "dropout on the adapter input")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(isinstance(self.r, int) and self.r >= 1, "r", "a positive integer")
        self._require(self.alpha > 0, "alpha", "positive")
        self._require(0 <= self.dropout < 1, "dropout", "in [0, 1)")


@dataclass
class AdaLoraMethodConfig(MethodConfig):
    init_r: int = option(12, "initial rank of every adapter")
    target_r: int = option(8, "average rank AdaLoRA prunes towards")
    alpha: float = option(16.0, "scaling numerator (peft lora_alpha)")
    tinit: float = option(0.1, "fraction of steps before pruning starts")
    tfinal: float = option(0.2, "fraction of steps at the end with the final budget")
    delta_t: int = option(10, "steps between two rank reallocations")
    orth_reg_weight: float = option(0.5, "weight of the orthogonality regulariser")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(self.init_r >= 1, "init_r", "a positive integer")
        self._require(1 <= self.target_r <= self.init_r, "target_r", f"between 1 and init_r={self.init_r}")
        self._require(0 <= self.tinit < 1 and 0 <= self.tfinal < 1 and self.tinit + self.tfinal < 1,
                      "tinit", "a fraction with tinit + tfinal < 1")
        self._require(self.delta_t >= 1, "delta_t", "a positive integer")


class PeftAdapted(Adapted):
    def save(self, directory: Path) -> None:
        self.model.save_pretrained(str(directory))  # PeftModel.from_pretrained loads it back

    def _layers(self):
        from peft.tuners.lora import LoraLayer

        for name, m in self.model.named_modules():
            if isinstance(m, LoraLayer) and "default" in getattr(m, "lora_A", {}):
                base = name.removeprefix(_PREFIX)
                yield base, m


class LoraAdapted(PeftAdapted):
    method = "lora"

    def adapters(self) -> list[AdapterView]:
        return [AdapterView(name, layer_index(name), module_type(name), m.lora_B["default"].weight.detach(),
                            m.lora_A["default"].weight.detach(), None, float(m.scaling["default"]))
                for name, m in self._layers()]


class AdaLoraAdapted(PeftAdapted):
    method = "adalora"

    def aux_losses(self, progress: float) -> dict[str, tuple[torch.Tensor, float]]:
        """peft's orthogonality regulariser on P (lora_B) and Q (lora_A): mean ||P^T P - I||_F, ||Q Q^T - I||_F."""
        terms = []
        for _, m in self._layers():
            A, B = m.lora_A["default"], m.lora_B["default"]  # (r, d_in), (d_out, r)
            for cov in (A @ A.T, B.T @ B):  # (r, r) each
                terms.append(torch.linalg.matrix_norm(cov - torch.eye(cov.shape[0], dtype=cov.dtype,
                                                                      device=cov.device)))
        return {"loss/orthogonality": (torch.stack(terms).mean(), self.config.orth_reg_weight)} if terms else {}

    def after_step(self, step: int) -> None:
        self.model.base_model.update_and_allocate(step)  # needs this step's gradients: before zero_grad

    def adapters(self) -> list[AdapterView]:
        # peft keeps the allocation as {"<module>.lora_E.default": [kept, ...]} once pruning began (older
        # versions key it "base_model.model.<module>.%s.default"); "<module>." matches both
        pattern = getattr(self.model.peft_config["default"], "rank_pattern", None) or {}
        out = []
        for name, m in self._layers():
            E = m.lora_E["default"].detach().reshape(-1)  # (r,) singular values, pruned ones are 0
            scaling = float(m.scaling["default"]) / (float(m.ranknum["default"]) + 1e-5)  # as SVDLinear
            kept = next((v for k, v in pattern.items() if f"{name}." in k), None)
            rank = int(sum(kept)) if kept is not None else int(m.r["default"])
            out.append(AdapterView(name, layer_index(name), module_type(name), m.lora_B["default"].detach(),
                                   m.lora_A["default"].detach(), E, scaling, rank=rank))
        return out


def _check_rank(model: nn.Module, targets: list[str], r: int, field: str) -> None:
    """A rank above min(d_out, d_in) adds parameters that cannot add rank: refuse it by name."""
    linears = linear_modules(model)
    for name in targets:
        d_out, d_in = linears[name].out_features, linears[name].in_features
        if r > min(d_out, d_in):
            raise GeodiagError(f"{field}={r} is larger than {name} ({d_out}x{d_in}) allows; choose {field} <= "
                               f"{min(d_out, d_in)} or leave that module out of target_modules.")


def build_lora(model: nn.Module, cfg: LoraMethodConfig, total_steps: int, context=None) -> LoraAdapted:
    from peft import LoraConfig, get_peft_model

    targets = resolve_targets(model, cfg.target_modules)
    _check_rank(model, targets, cfg.r, "r")
    peft_cfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                          task_type="CAUSAL_LM")
    return LoraAdapted(get_peft_model(model, peft_cfg), cfg)


def build_adalora(model: nn.Module, cfg: AdaLoraMethodConfig, total_steps: int, context=None) -> AdaLoraAdapted:
    from peft import AdaLoraConfig, get_peft_model

    targets = resolve_targets(model, cfg.target_modules)
    _check_rank(model, targets, cfg.init_r, "init_r")
    tinit = int(cfg.tinit * total_steps)
    tfinal = int(cfg.tfinal * total_steps)
    peft_cfg = AdaLoraConfig(init_r=cfg.init_r, target_r=cfg.target_r, lora_alpha=cfg.alpha,
                             tinit=tinit, tfinal=tfinal, deltaT=cfg.delta_t, total_step=max(total_steps, 1),
                             orth_reg_weight=0.0, target_modules=targets, task_type="CAUSAL_LM")
    # peft would add the regulariser into outputs.loss, hiding it inside loss/lm; geodiag adds the same term
    # as its own auxiliary loss (loss/orthogonality), once per step since it depends on the parameters only
    return AdaLoraAdapted(get_peft_model(model, peft_cfg), cfg)
