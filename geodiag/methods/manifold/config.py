"""ManifoldLoRA's options, with the paper's defaults (ManifoldLoRA §4.1, App. A). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation.budget import Geometry, Sized, closest, min_width
from geodiag.methods.config import MethodConfig
from geodiag.methods.registry import MethodSpec, register
from geodiag.names import LAMBDA_A, LAMBDA_S
from geodiag.options import option


@dataclass
class ManifoldConfig(MethodConfig):
    KIND: ClassVar[str] = "the manifold method"

    r_div: int = option(16, "rank divisor: r_max = floor(min(d_out, d_in) / r_div)")
    probe_div: int = option(32, "probe divisor: p = floor(hidden / probe_div)")
    lambda_s: float = option(LAMBDA_S, "sparsity loss weight (ManifoldLoRA App. A: 0.03-0.10 prunes)")
    lambda_a: float = option(LAMBDA_A, "alignment loss weight")
    gate_lr_ratio: float = option(10.0, "learning rate of the gate logits over --lr, the rate of A, B and the "
                                        "probe bases (the paper: 1e-3 / 1e-4)")
    temperature_lr_ratio: float = option(10.0, "learning rate of the log-temperatures over --lr (the paper: "
                                               "1e-3 / 1e-4)")
    probe_mode: str = option("learned", "'learned' (the paper) or 'pca': Q = top principal directions of the "
                             "projection inputs, refreshed every pca_every steps", choices=("learned", "pca"))
    pca_every: int = option(25, "steps between PCA probe refreshes (probe_mode=pca)", group="advanced")
    lambda_a_warmup: float = option(0.0, "fraction of steps over which lambda_a ramps up from 0", group="advanced")
    gamma0: float = option(0.0, "initial gate logit (g = sigmoid(0) = 0.5)", group="advanced")
    T0: float = option(1.0, "initial gate temperature", group="advanced")
    scaling: float = option(1.0, "multiplier of B diag(g) A (the paper uses none, i.e. 1)", group="advanced")
    init: str = option("lora", "'lora': A Kaiming-uniform, B zero (starts at the base model); 'random': B small too",
                       choices=("lora", "random"), group="advanced")
    eps: float = option(1e-8, "epsilon in the alignment loss denominator", group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.r_div >= 1, "r_div", "a positive integer")
        self.require(self.probe_div >= 1, "probe_div", "a positive integer")
        self.require(self.T0 > 0, "T0", "positive")
        self.require(self.gate_lr_ratio > 0, "gate_lr_ratio", "positive")
        self.require(self.temperature_lr_ratio > 0, "temperature_lr_ratio", "positive")
        self.require(self.lambda_s >= 0, "lambda_s", "non-negative")
        self.require(self.lambda_a >= 0, "lambda_a", "non-negative")
        self.require(0 <= self.lambda_a_warmup <= 1, "lambda_a_warmup", "a fraction in [0, 1]")
        self.require(self.pca_every >= 1, "pca_every", "a positive integer")


def size(target: int, geo: Geometry) -> Sized | None:
    """r_max = floor(min(d_out, d_in) / r_div) per module, each rank a column of B, a row of A and a gate, plus a
    log-temperature per module. The probes (h x p per layer) are training-time machinery the adapted model does
    not keep: counted in the run's trainable parameters, not in the budget."""
    def count(r_div: int) -> int:
        return sum((min(s.d_in, s.d_out) // r_div) * (s.d_in + s.d_out + 1) + 1 for s in geo.shapes)

    return closest((({"r_div": d}, count(d)) for d in range(1, min_width(geo.shapes) + 1)), target,
                   "adapter parameters (factors, gates, temperatures; the probes are not counted)")


REGISTERED = register(MethodSpec("manifold", ManifoldConfig, "geodiag.methods.manifold.model",
                           "ManifoldLoRA: gated adaptive rank + manifold probes", size, lr=2e-3))
