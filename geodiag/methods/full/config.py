"""Full fine-tuning's options: which weights train. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.methods.config import MethodConfig
from geodiag.methods.registry import MethodSpec, register
from geodiag.options import option


@dataclass
class FullConfig(MethodConfig):
    KIND: ClassVar[str] = "the full method"

    target_modules: list[str] = option(["q_proj", "k_proj", "v_proj", "o_proj"],
                                       "linear modules whose weights train (names or suffixes)", group="advanced")


REGISTERED = register(MethodSpec("full", FullConfig, "geodiag.methods.full.model",
                           "full fine-tuning of the target weights (the reference for GID dynamics, RaLoRA Fig. 3c)",
                           lr=2e-5, fsdp=True))
