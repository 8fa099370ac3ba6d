"""What a GID pass holds at its peak, as a formula (README, "Analyses at scale"): the model, one float32
accumulator per target weight, and one transient gradient (the hook folds each gradient into its accumulator
and frees it at once), plus one batch's activations, which the formula leaves out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from geodiag.allocation import ModuleShape

GB = 1e9


@dataclass(frozen=True)
class GidMemory:
    model: int  # bytes: every parameter at the model's dtype
    accumulators: int  # bytes: 4 * sum(d_out * d_in) over the target weights
    gradient: int  # bytes: the largest target weight's gradient at the model's dtype

    @property
    def total(self) -> int:
        return self.model + self.accumulators + self.gradient

    def sentence(self) -> str:
        return (f"peak memory about {self.total / GB:.2f} GB: model {self.model / GB:.2f} GB + float32 accumulators "
                f"{self.accumulators / GB:.2f} GB + one gradient {self.gradient / GB:.3f} GB, plus one batch's "
                "activations")


def gid_memory(n_params: int, bytes_per_param: int, shapes: Sequence[ModuleShape]) -> GidMemory:
    """The formula: n_params * b + 4 * sum(d_out * d_in) + b * max(d_out * d_in)."""
    sizes = [s.d_out * s.d_in for s in shapes]
    return GidMemory(n_params * bytes_per_param, 4 * sum(sizes), bytes_per_param * max(sizes, default=0))
