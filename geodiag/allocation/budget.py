"""Equal parameter budgets: `--budget lora-r=8` is the parameter count of LoRA at rank 8 on the same modules, and each
method is sized, through its own knob, to come as close to it as its rule allows (RaLoRA matches by
construction; LoRA+GID and GeLoRA through their scale; ManifoldLoRA through r_div; AdaLoRA through target_r).
Pure functions of module shapes and stored vectors; torch-free. Each method's sizer lives beside its config."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from geodiag.allocation.presets import Vectors
from geodiag.allocation.rules import ModuleShape, lora_params
from geodiag.errors import GeodiagError

TOLERANCE = 0.25  # a method whose closest count is further than this from the budget cannot meet it


@dataclass(frozen=True)
class Budget:
    r: int  # LoRA's rank on the same target modules

    @classmethod
    def parse(cls, text: str) -> Budget:
        m = re.fullmatch(r"\s*lora-r\s*=\s*(\d+)\s*", text or "")
        if not m or int(m.group(1)) < 1:
            raise GeodiagError(f"--budget takes lora-r=N with N a positive rank (LoRA at rank N on the same modules), "
                               f"got {text!r}.")
        return cls(int(m.group(1)))

    def params(self, shapes: Sequence[ModuleShape]) -> int:
        return sum(lora_params(s, self.r) for s in shapes)

    def __str__(self) -> str:
        return f"lora-r={self.r}"


@dataclass(frozen=True)
class Geometry:
    """What a sizer may read: the target modules' shapes and, for allocation-driven methods, the analysis."""

    shapes: tuple[ModuleShape, ...]
    vectors: Vectors = field(default_factory=Vectors)


@dataclass(frozen=True)
class Sized:
    options: dict  # the method options that give this size
    params: int  # trainable parameters of the update under the method's rule
    counts: str = "trainable parameters"  # what `params` counts, when it is not simply that

    def error(self, target: int) -> float:
        return abs(self.params - target) / target


Sizer = Callable[[int, Geometry], Sized | None]  # (target parameters, geometry) -> closest size, or None


def closest(candidates: Iterable[tuple[dict, int]], target: int, counts: str = "trainable parameters") -> Sized | None:
    """The candidate whose count is nearest the target (the first on a tie); None if there is none."""
    best = min(candidates, key=lambda c: abs(c[1] - target), default=None)
    return None if best is None else Sized(best[0], best[1], counts)


def by_scale(target: int, count: Callable[[float], int], base: float, name: str) -> Sized | None:
    """A rule whose size grows with a positive scale (LoRA+GID, GeLoRA): scales base x 2^(k/64), k in [-512, 512],
    the one whose count is nearest. Counts move in whole ranks, so a finer grid would find nothing closer."""
    grid = [round(base * 2 ** (k / 64), 6) for k in range(-512, 513)]
    return closest((({name: s}, count(s)) for s in grid if s > 0), target)


def min_width(shapes: Sequence[ModuleShape]) -> int:
    return min(min(s.d_in, s.d_out) for s in shapes)
