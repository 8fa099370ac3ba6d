"""Full fine-tuning of the target weights: the reference RaLoRA's GID dynamics are measured on (RaLoRA §5.1,
Fig. 3c, App. E.3). Only the target modules' weights train; everything else stays frozen.

With `geodiag train --method full --record-gid-every K` the trainer records gid/erank of each target's
gradient every K steps (the step's gradient, summed over its grad_accum micro-batches).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from geodiag.methods.base import Adapted, whole
from geodiag.methods.context import BuildContext
from geodiag.methods.full.config import FullConfig
from geodiag.models import linear_modules, resolve_targets


class FullAdapted(Adapted):
    method = "full"

    def __init__(self, model: nn.Module, cfg: FullConfig):
        super().__init__(model, cfg)
        self.names = resolve_targets(model, cfg.target_modules)
        for p in model.parameters():
            p.requires_grad_(False)
        for w in self.targets.values():
            w.requires_grad_(True)

    @property
    def targets(self) -> dict[str, nn.Parameter]:
        """name -> the weight as the model holds it now (FSDP swaps parameters for sharded ones)."""
        linears = linear_modules(self.model)
        return {name: linears[name].weight for name in self.names}

    def gradient_weights(self) -> dict[str, nn.Parameter]:
        return self.targets

    def save(self, directory: Path, *, main: bool = True) -> None:
        from safetensors.torch import save_file

        # under FSDP each weight is gathered in turn, on every rank
        state = {f"{n}.weight": whole(w.detach()).contiguous().cpu() for n, w in self.targets.items()}
        if main:
            directory.mkdir(parents=True, exist_ok=True)
            save_file(state, str(directory / "full_weights.safetensors"))


def build(model: nn.Module, cfg: FullConfig, context: BuildContext) -> FullAdapted:
    return FullAdapted(model, cfg)
