"""What every adaptation method provides to the trainer and the collectors.

A method is a config dataclass (fields with help text, validated in __post_init__) plus a build function
returning an `Adapted`: the trainable model, its optimiser parameter groups, any auxiliary losses, a
per-step hook, and read-only views of its adapters' factors for the spectral collectors.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from geodiag.errors import GeodiagError


def option(default, help: str, *, choices: tuple | None = None):  # noqa: A002 - mirrors argparse's vocabulary
    """A config field whose help text (and, for a closed set of values, its choices) the CLI and the Launch
    page show; `check_choices` enforces the choices for every config alike."""
    metadata = {"help": help} | ({"choices": tuple(choices)} if choices else {})
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def check_choices(config) -> None:
    """Raise one sentence naming the field, its bad value and the allowed ones, for any field declared with
    choices whose value is not among them (called from the configs' __post_init__)."""
    for f in dataclasses.fields(config):
        allowed = f.metadata.get("choices")
        value = getattr(config, f.name)
        if allowed and value not in allowed:
            listed = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}" if len(allowed) > 1 else str(allowed[0])
            raise GeodiagError(f"{f.name} must be {listed}, got {value!r}.")


@dataclass
class MethodConfig:
    target_modules: list[str] = option(["q_proj", "v_proj"], "linear modules to adapt (names or suffixes)")

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, str):
            self.target_modules = [t.strip() for t in self.target_modules.split(",") if t.strip()]
        if not self.target_modules:
            raise GeodiagError("target_modules is empty; name at least one linear module, e.g. q_proj,v_proj.")
        check_choices(self)

    @classmethod
    def from_dict(cls, values: dict) -> MethodConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GeodiagError(f"Unknown option(s) {', '.join(unknown)} for this method; it takes "
                               f"{', '.join(sorted(known))}.")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def _require(self, ok: bool, name: str, rule: str) -> None:
        if not ok:
            raise GeodiagError(f"{name} must be {rule}, got {getattr(self, name)!r}.")


@dataclass
class BuildContext:
    """What a method may need beyond the model: the store (to read a stored analysis) and fresh training
    batches (to run a sweep first, as RaLoRA's GID does)."""

    store: str | None = None
    batches: Callable[[], Iterator[dict]] | None = None
    progress: bool = False


@dataclass(frozen=True)
class AdapterView:
    """One adapted module's update, Delta W = scaling * B diag(gates) A (block-diagonal if blocks > 1)."""

    module: str  # qualified name in the base model, e.g. model.layers.3.self_attn.q_proj
    layer: int | None
    module_type: str
    B: torch.Tensor  # (d_out, r) or stacked (n, d_out/n, r)
    A: torch.Tensor  # (r, d_in) or stacked (n, r, d_in/n)
    gates: torch.Tensor | None = None  # (r,)
    scaling: float = 1.0
    rank: int | None = None  # allocated rank where the method prunes (AdaLoRA)


class Adapted(abc.ABC):
    """Base behaviour shared by the methods; subclasses fill in what differs."""

    method: str = ""

    def __init__(self, model: nn.Module, config: MethodConfig):
        self.model = model
        self.config = config

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        return [{"params": self.trainable(), "lr": lr, "weight_decay": weight_decay, "name": "adapter"}]

    def aux_losses(self, progress: float) -> dict[str, tuple[torch.Tensor, float]]:
        """Extra loss terms as name -> (value, weight) at training progress in [0, 1]."""
        return {}

    def after_step(self, step: int) -> None:  # noqa: B027 - an optional hook, not an abstract one
        """Called after optimizer.step() and before zero_grad() (AdaLoRA allocates ranks here)."""

    def adapters(self) -> list[AdapterView]:
        return []

    def initial_rows(self) -> list[dict]:
        """Rows recorded once at step 0 (e.g. the rank allocation a method chose)."""
        return []

    def extra_state(self) -> dict[str, float]:
        """Run-level scalars worth recording (e.g. mean temperature)."""
        return {}

    @abc.abstractmethod
    def save(self, directory: Path) -> None:
        """Write the trained adapter so that it can be loaded again."""

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.trainable())

    def total_parameters(self) -> int:
        inside = {id(p) for p in self.model.parameters()}
        outside = sum(p.numel() for p in self.trainable() if id(p) not in inside)  # hook-applied adapters
        return sum(p.numel() for p in self.model.parameters()) + outside

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]
