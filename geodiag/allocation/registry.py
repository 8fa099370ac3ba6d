"""Allocation rules registered by name, one torch-free object each: the analysis whose run it reads, the function
that allocates, its alpha convention and where it comes from. `geodiag allocate`, the allocation lab, sweeps
(which analysis to share) and allocation files all ask this object, never a list kept by hand.

Adding a rule: a module that defines its allocate function and calls `register_rule(Rule(...))`, and one import
line in `geodiag/allocation/__init__.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from geodiag.errors import GeodiagError

if TYPE_CHECKING:  # presets imports this module: the types only, for the annotations
    from geodiag.allocation.presets import Settings, Vectors
    from geodiag.allocation.rules import Allocation, ModuleShape

ANALYSES = ("gid", "id", "spectra")  # the `geodiag analyze` kinds a rule can read


@dataclass(frozen=True)
class Constant:
    """A number a rule's paper fixes (AlphaLoRA's beta): the paper's value is the default, and the lab and
    `geodiag allocate --constant NAME=VALUE` may move it."""

    name: str
    value: float
    help: str
    low: float = 0.0  # the smallest value that still makes the rule mean something
    high: float = math.inf


@dataclass(frozen=True)
class Rule:
    name: str
    analysis: str  # the `geodiag analyze` kind whose run it reads
    allocate: Callable[[Settings, Vectors, Sequence[ModuleShape]], list[Allocation]]
    summary: str  # where it comes from, in one line
    # raises one sentence when the stored vectors cannot serve the rule on these modules; None: nothing to check
    check: Callable[[Vectors, Sequence[ModuleShape]], None] | None = None
    alpha_ratio: float = 2.0  # alpha_l = alpha_ratio x r_l under the ratio presets (RaLoRA's 16 at r = 8)
    constants: tuple[Constant, ...] = field(default=())  # the paper's own numbers, as its convention fixes them

    def __post_init__(self) -> None:
        if self.analysis not in ANALYSES:
            raise ValueError(f"rule {self.name}: analysis must be one of {', '.join(ANALYSES)}, got "
                             f"{self.analysis!r}")

    def constant(self, name: str) -> Constant:
        for c in self.constants:
            if c.name == name:
                return c
        have = f"its constants are {', '.join(c.name for c in self.constants)}" if self.constants else "it has none"
        raise GeodiagError(f"The {self.name} rule has no constant '{name}'; {have}.")


RULES: dict[str, Rule] = {}


def register_rule(rule: Rule) -> Rule:
    RULES[rule.name] = rule
    return rule


def get_rule(name: str) -> Rule:
    if name not in RULES:
        raise GeodiagError(f"There is no allocation rule '{name}'; choose one of {', '.join(RULES)}.")
    return RULES[name]


def rules_reading(analysis: str) -> list[str]:
    """The rules that allocate from one kind of analysis run, in registration order."""
    return [r.name for r in RULES.values() if r.analysis == analysis]
