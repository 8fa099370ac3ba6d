"""EVA's options under peft's names (Paischer et al. 2024, "One Initialization to Rule them All"; peft's
`EvaConfig`). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation.budget import Geometry, Sized
from geodiag.methods.config import MethodConfig
from geodiag.methods.lora.config import size as lora_size
from geodiag.methods.registry import MethodSpec, register
from geodiag.names import R_REF
from geodiag.options import option


@dataclass
class EvaConfig(MethodConfig):
    KIND: ClassVar[str] = "the eva method"

    r: int = option(R_REF, "LoRA rank before redistribution; the budget is r x the number of target modules")
    alpha: float = option(16.0, "LoRA alpha (peft rescales it with each module's new rank)")
    rho: float = option(2.0, "a module may take up to rho x r ranks (1: no redistribution)")
    tau: float = option(0.99, "cosine similarity at which a layer's incremental SVD counts as converged",
                        group="advanced")
    whiten: bool = option(False, "whiten the singular vectors A is initialised with", group="advanced")
    # peft's default is True; on short-answer tasks a batch then has fewer labelled positions than the 2r
    # components, peft skips the SVD every time and it never converges (measured: SmolLM2, the default task)
    use_label_mask: bool = option(False, "only positions with a label (the answer) feed the SVD; off: every "
                                  "non-padding token, prompt included", group="advanced")
    adjust_scaling_factors: bool = option(True, "rescale alpha with each module's rank, so that every LoRA gradient "
                                          "has the same scale", group="advanced")
    eva_batches: int = option(64, "forward passes the SVD may take (peft stops sooner, once every layer's top "
                              "components converged; it cycles these batches until then)", group="advanced")
    dropout: float = option(0.0, "dropout on the adapter input", group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.r >= 1, "r", "a positive integer")
        self.require(self.alpha > 0, "alpha", "positive")
        self.require(self.rho >= 1, "rho", "at least 1")
        self.require(0 <= self.tau <= 1, "tau", "in [0, 1]")
        self.require(self.eva_batches >= 1, "eva_batches", "a positive integer")
        self.require(0 <= self.dropout < 1, "dropout", "in [0, 1)")


def size(target: int, geo: Geometry) -> Sized | None:
    """EVA redistributes r x modules ranks between the modules: sized as LoRA at r, its final count recorded as
    alloc/eva/params once the SVD has placed them."""
    sized = lora_size(target, geo)
    return sized and Sized(sized.options, sized.params, "LoRA's count at r, before EVA moves ranks between modules")


REGISTERED = register(MethodSpec("eva", EvaConfig, "geodiag.methods.eva.model",
                                 "EVA through peft: ranks from an SVD of the activations (Paischer et al. 2024)", size))
