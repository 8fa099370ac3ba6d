"""Intruder dimensions of every adapted module (Shuttleworth et al. 2024): how many of the top-k singular
vectors of the fine-tuned W' have no counterpart among the pre-trained W's. W's singular vectors are taken
once, before training, and cached; W' = W + Delta W (row-rescaled for DoRA) is only ever an operator. Full
fine-tuning's W' is its current weight, compared with the weight it started from."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from geodiag.methods.base import Adapted, AdapterView, whole
from geodiag.metrics import base_singular_vectors, intruder_count, top_singular_vectors
from geodiag.metrics.decomposition import row_norms
from geodiag.metrics.intruders import EPSILON, TOP_K
from geodiag.models import layer_index, module_type
from geodiag.names import INTRUDER_COS, INTRUDERS
from geodiag.records import row

Operator = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, float, torch.Tensor | None]


@dataclass
class Intruders:
    top_k: int = TOP_K
    epsilon: float = EPSILON
    bases: dict[str, torch.Tensor] = field(default_factory=dict)  # module -> W's left singular vectors

    def start(self, adapted: Adapted) -> None:
        """Cache W's singular vectors, before training changes anything (full fine-tuning's W0 included)."""
        for name, (W, *_), _ in _operators(adapted):  # W: the weight before adaptation (PiSSA's original too)
            self.bases[name] = base_singular_vectors(W)

    def rows(self, adapted: Adapted, step: int, wall: float) -> list[dict]:
        rows = []
        for name, (W, B, A, scaling, row_scale), where in _operators(adapted):
            k = min(self.top_k, min(W.shape) - 1)
            U_top, _ = top_singular_vectors(W, B, A, scaling, row_scale, k=k)
            count, cos = intruder_count(self.bases[name], U_top, self.epsilon)
            rows.append(row(step, wall, INTRUDERS, count, **where))
            rows += [row(step, wall, INTRUDER_COS, float(c), idx=i, **where) for i, c in enumerate(cos)]
        return rows


def _operators(adapted: Adapted) -> list[tuple[str, Operator, dict]]:
    """(module, (W, B, A, scaling, row_scale) with W' = diag(row_scale)(W + scaling B A), where) per module."""
    full = adapted.gradient_weights()
    if full:  # full fine-tuning: W' is the weight itself
        return [(n, (whole(w.detach()), None, None, 1.0, None),
                 {"module": n, "layer": layer_index(n), "module_type": module_type(n)}) for n, w in full.items()]
    magnitudes = adapted.magnitudes()
    out = []
    for v in (v.whole() for v in adapted.adapters()):
        W = whole(adapted.base_weight(v.module))
        B, A = _two_dimensional(v)
        scale = None
        if v.module in magnitudes:  # DoRA: W' = m / ‖W + sBA‖ per row, times (W + sBA)
            scale = magnitudes[v.module][1].double() / row_norms(W, B, A, v.scaling)
        out.append((v.module, (W, B, A, v.scaling, scale),
                    {"module": v.module, "layer": v.layer, "module_type": v.module_type}))
    return out


def _two_dimensional(v: AdapterView) -> tuple[torch.Tensor, torch.Tensor]:
    """B (d_out, R), A (R, d_in) of the update: gates folded into B, stacked blocks laid out block-diagonally."""
    B, A = v.B, v.A
    if B.dim() == 3:  # (n, d_out/n, r), (n, r, d_in/n): RaLoRA's blocks
        B, A = torch.block_diag(*B), torch.block_diag(*A)  # (d_out, n r), (n r, d_in)
    if v.gates is not None:
        B = B * v.gates.to(B.dtype)
    return B, A
