"""What every adaptation method hands the trainer and the collectors: an `Adapted`.

The trainable model, its optimiser parameter groups, auxiliary losses, a per-step hook, and read-only
views of the adapters' factors. What only some methods have is a capability the collectors ask for, never
a type they check: `has_probes` (ManifoldLoRA's probe bases), `gradient_weights()` (full fine-tuning's
trainable base weights), `allocation` (the per-module ranks an allocation-driven method was sized with).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from geodiag.allocation import Allocation
from geodiag.errors import GeodiagError
from geodiag.methods.config import MethodConfig


@dataclass(frozen=True)
class AdapterView:
    """One adapted module's update, Delta W = scaling * B diag(gates) A (block-diagonal if stacked)."""

    module: str  # qualified name in the base model, e.g. model.layers.3.self_attn.q_proj
    layer: int | None
    module_type: str
    B: torch.Tensor  # (d_out, r) or stacked blocks (n, d_out/n, r)
    A: torch.Tensor  # (r, d_in) or stacked blocks (n, r, d_in/n)
    gates: torch.Tensor | None = None  # (r,)
    scaling: float = 1.0
    rank: int | None = None  # allocated rank where the method prunes (AdaLoRA)

    def whole(self) -> AdapterView:
        """The same view with whole factors: under FSDP a parameter is a shard (a DTensor) until gathered. A
        collective there, so every rank gathers the same views in the same order."""
        return dataclasses.replace(self, B=whole(self.B), A=whole(self.A),
                                   gates=None if self.gates is None else whole(self.gates))


def minus_initial(B: torch.Tensor, A: torch.Tensor, B0: torch.Tensor, A0: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """B A - B0 A0 as factors [B, -B0] (d_out, 2r) and [A; A0] (2r, d_in): the update after PiSSA / OLoRA."""
    return torch.cat([B, -B0.to(B.dtype)], dim=1), torch.cat([A, A0.to(A.dtype)], dim=0)


def whole(t: torch.Tensor) -> torch.Tensor:
    """A tensor whole on this rank: a sharded DTensor gathered (`full_tensor`), anything else as it is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


@dataclass(frozen=True)
class AllocationRecord:
    """The allocation a method was built with, the GIDs behind it, and the LoRA rank it is compared with."""

    method: str
    allocations: list[Allocation]
    r_ref: int
    gids: dict[str, float] = field(default_factory=dict)


class Adapted(abc.ABC):
    """Base behaviour shared by the methods; subclasses fill in what differs."""

    method: str = ""
    compiles: bool = True  # its training forward traces under torch.compile without Python-side state
    has_probes: ClassVar[bool] = False  # probes, probe_pairs() and alignment_losses() exist (ManifoldLoRA)
    allocation: AllocationRecord | None = None

    def __init__(self, model: nn.Module, config: MethodConfig | None):
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

    def gradient_weights(self) -> dict[str, nn.Parameter]:
        """Base weights that train and whose gradient GID is measured on (full fine-tuning only)."""
        return {}

    def base_weight(self, name: str) -> torch.Tensor:
        """The weight W (d_out, d_in) of module `name` before adaptation: the layer computes W + Delta W (its
        view; DoRA rescales rows on top). For PiSSA / OLoRA, W is the original weight, not peft's residual."""
        raise GeodiagError(f"{self.method} does not expose the base weight of {name}.")

    def magnitudes(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """DoRA: module -> (frozen W (d_out, d_in), trained magnitude m (d_out,)); empty for the others."""
        return {}

    def outside_modules(self) -> dict[str, nn.Module]:
        """Trainable modules that live outside `model` (adapters applied by forward hooks)."""
        return {}

    def extra_state(self) -> dict[str, float]:
        """Run-level scalars worth recording (e.g. mean temperature)."""
        return {}

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Eval mode for a record-time forward (no dropout; hook adapters keep no training statistics from
        it); the training state comes back afterwards, whatever happens."""
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    @abc.abstractmethod
    def save(self, directory: Path, *, main: bool = True) -> None:
        """Write the trained adapter so that it can be loaded again; only where `main`. Every rank of a sharded
        run calls it, so that the gathers have all their ranks."""

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.trainable())

    def total_parameters(self) -> int:
        inside = {id(p) for p in self.model.parameters()}
        outside = sum(p.numel() for p in self.trainable() if id(p) not in inside)  # hook-applied adapters
        return sum(p.numel() for p in self.model.parameters()) + outside

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]


class FactorViews(Adapted):
    """Read-only: the factors of adapters that were trained elsewhere (an imported PEFT adapter), enough for
    the spectral collectors; with the base model's weights (`base`, module -> W) also for the intruder count,
    and with DoRA's magnitude vectors (module -> m) for its magnitude/direction change."""

    def __init__(self, method: str, views: list[AdapterView], *, base: dict[str, torch.Tensor] | None = None,
                 magnitude: dict[str, torch.Tensor] | None = None, params: int | None = None):
        super().__init__(nn.Module(), None)
        self.method = method
        self._views = views
        self.base, self.magnitude = base, magnitude or {}
        self.params = params  # the adapter's own parameter count, as saved

    def adapters(self) -> list[AdapterView]:
        return self._views

    def base_weight(self, name: str) -> torch.Tensor:
        if self.base is None or name not in self.base:
            raise GeodiagError(f"The base weight of {name} is needed; pass the base model (--base MODEL).")
        return self.base[name]

    def magnitudes(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        if self.base is None:
            return {}
        return {name: (self.base[name], m) for name, m in self.magnitude.items() if name in self.base}

    def save(self, directory: Path, *, main: bool = True) -> None:
        raise GeodiagError("An imported adapter is read from its own folder; geodiag does not save it again.")
