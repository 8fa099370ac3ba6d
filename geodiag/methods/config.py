"""What every method's config shares: the modules it adapts. Torch-free, like every method's config.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.options import Config, option


@dataclass
class MethodConfig(Config):
    KIND: ClassVar[str] = "this method"

    target_modules: list[str] = option(["q_proj", "v_proj"], "linear modules to adapt (names or suffixes)",
                                       group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(bool(self.target_modules), "target_modules", "at least one linear module, e.g. q_proj,v_proj")
