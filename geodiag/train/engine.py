"""The distributed engine under the loop: Hugging Face `accelerate`.

`Accelerator` places the model, picks the backend (nccl on CUDA, gloo on the CPU), wraps the step module in
DDP, or in FSDP / DeepSpeed ZeRO-1/2 when the user's `accelerate launch --config_file` asks for it, and runs
backward. `--fsdp` shards with torch's FSDP2 (`fully_shard`) directly, which is what works on a CPU mesh
(accelerate ignores its FSDP plugin there) and on GPUs alike.

What DDP and FSDP wrap is a `StepModule`: the base model plus the adapter modules that ride on forward hooks
outside it (ManifoldLoRA, RaLoRA), so the engine synchronises every trainable parameter; its forward returns
the LM loss and, on the step's last micro-batch, the auxiliary losses, so each backward sees one graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from geodiag.errors import GeodiagError
from geodiag.methods import METHODS
from geodiag.methods.base import Adapted
from geodiag.models import decoder_layers

Batch = dict[str, torch.Tensor]
T = TypeVar("T")

class StepModule(nn.Module):
    """The model and the adapters living outside it, as one module whose forward is the training loss."""

    def __init__(self, adapted: Adapted, loss: Callable[[Batch], torch.Tensor]):
        super().__init__()
        self.model = adapted.model
        self.outside = nn.ModuleDict(adapted.outside_modules())
        self._adapted, self._loss = adapted, loss  # not modules: plain attributes
        trained = {id(p) for p in adapted.trainable()}
        for p in self.parameters():  # what the method never updates (ManifoldLoRA's PCA-mode probe bases) is
            p.requires_grad_(id(p) in trained)  # frozen, so DDP waits for no gradient that may never come

    def forward(self, batch: Batch | None = None, aux_at: float | None = None, call: Callable | None = None):
        """(LM loss, {name: (aux value, weight)}), the auxiliary losses at training progress `aux_at` if given;
        or, with `call`, call() inside this forward (see Engine.through_root)."""
        if call is not None:
            return call()
        aux = self._adapted.aux_losses(aux_at) if aux_at is not None else {}
        return self._loss(batch), aux


@dataclass
class Engine:
    """The accelerator, the module forward and backward go through, and whether parameters are sharded."""

    accelerator: object  # accelerate.Accelerator
    module: nn.Module
    sharded: bool = False

    def __post_init__(self) -> None:
        # the FSDP2 root, whose gradient sync no_sync toggles (found once: sync runs every micro-batch)
        self._fsdp = next((m for m in self.module.modules() if hasattr(m, "set_requires_gradient_sync")), None)

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @contextlib.contextmanager
    def sync(self, last: bool) -> Iterator[None]:
        """Gradients are synchronised on the last micro-batch of a step only (no_sync before it)."""
        if last:
            yield
        elif self._fsdp is not None:
            self._fsdp.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                self._fsdp.set_requires_gradient_sync(True)
        else:
            with self.accelerator.no_sync(self.module):
                yield

    @property
    def strategy(self) -> str:
        """How this run is distributed, in words, for its config: e.g. 'DDP over gloo, 2 processes'."""
        kind = self.accelerator.distributed_type.value
        if kind == "NO":
            return "single process"
        if self.sharded and kind.startswith("MULTI"):
            name = "FSDP2"  # our own fully_shard under torchrun
        else:
            name = {"FSDP": "FSDP", "DEEPSPEED": "DeepSpeed"}.get(kind, "DDP")
        return f"{name} over {self.accelerator.state.backend}, {self.world} processes"

    def through_root(self, fn: Callable[[], T]) -> T:
        """fn() (record forwards, generation) run inside the root module's forward under FSDP, which is where
        FSDP makes the root's own parameters (embeddings, head) whole; each decoder layer gathers its own.
        A collective there: every rank runs the same fn. Elsewhere just fn()."""
        return self.module(call=fn) if self.sharded else fn()

    def mean(self, value: float) -> float:
        """The mean of a per-rank number over the ranks (one small all-reduce; itself on one process)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.accelerator.device)
        return float(self.accelerator.reduce(t, reduction="mean").item())

    def end(self) -> None:
        self.accelerator.end_training()


def prepare(accelerator, step: StepModule, adapted: Adapted, make_optimizer: Callable, *, fsdp: bool
            ) -> tuple[Engine, torch.optim.Optimizer]:
    """Wrap the step module (DDP, or FSDP/DeepSpeed from the accelerate config, or our own FSDP2 shards with
    --fsdp) and build the optimiser over the parameters as they are after wrapping."""
    kind = accelerator.distributed_type.value
    refuse_unsupported(accelerator, adapted, fsdp=fsdp or kind == "FSDP")
    if fsdp and kind != "FSDP":  # an accelerate FSDP config already shards: then --fsdp adds nothing
        if accelerator.num_processes < 2:
            raise GeodiagError("--fsdp shards over several processes; launch with torchrun --nproc_per_node N "
                               "(N >= 2) or leave it out.")
        shard(step)
        return Engine(accelerator, step, sharded=True), make_optimizer()
    module, optimizer = accelerator.prepare(step, make_optimizer())
    return Engine(accelerator, module, sharded=kind == "FSDP"), optimizer  # ZeRO-1/2 keeps parameters whole


def refuse_unsupported(accelerator, adapted: Adapted, *, fsdp: bool) -> None:
    """One sentence for a method and strategy that do not go together (README, "Distributed training")."""
    sharded = sorted(name for name, spec in METHODS.items() if spec.fsdp)  # each method says whether it can be
    if fsdp and adapted.method not in sharded:
        raise GeodiagError(f"FSDP supports {', '.join(sharded)}; {adapted.method} reads whole parameters "
                           "outside the forward, so train it with DDP (leave out --fsdp or the FSDP config).")
    if accelerator.state.dynamo_plugin.backend.value != "NO" and not adapted.compiles:
        raise GeodiagError(f"--torch-compile cannot trace {adapted.method} with these options (its forward keeps "
                           "Python-side statistics); leave out --torch-compile.")
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None and plugin.zero_stage == 3:
        raise GeodiagError("DeepSpeed ZeRO-3 partitions the adapter factors the collectors read; use ZeRO stage 1 "
                           "or 2, or FSDP (--fsdp, or an accelerate FSDP config).")


def shard(step: StepModule) -> None:
    """torch FSDP2: each decoder layer its own unit, then the rest (embeddings, head, outside adapters)."""
    from torch.distributed.fsdp import fully_shard

    for layer in decoder_layers(step.model):
        fully_shard(layer)
    fully_shard(step)
