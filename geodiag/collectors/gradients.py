"""GID dynamics under full fine-tuning (RaLoRA Eq. 3, Fig. 3c): the entropy effective rank of each target
weight's current gradient."""

from __future__ import annotations

import torch

from geodiag.metrics import effective_rank
from geodiag.models import layer_index, module_type
from geodiag.names import GID
from geodiag.records import row


def gid_rows(weights: dict[str, torch.Tensor], step: int, wall: float) -> list[dict]:
    return [row(step, wall, GID, effective_rank(w.grad.detach()), module=name, layer=layer_index(name),
                module_type=module_type(name)) for name, w in weights.items() if w.grad is not None]
