"""ManifoldLoRA's probes at record time (ManifoldLoRA §3.2, Fig. 3): d_eff, orthonormality, the share of the
projection inputs' variance inside span(Q), and the alignment loss of every adapter-probe pair."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from geodiag.methods.base import Adapted
from geodiag.metrics import orthonormality_error
from geodiag.models import layer_index, linear_modules, module_type
from geodiag.names import PROBE_ALIGNMENT, PROBE_COVERAGE, PROBE_D_EFF, PROBE_ORTHONORMALITY
from geodiag.records import row


@contextlib.contextmanager
def probe_inputs(adapted: Adapted, mask: torch.Tensor) -> Iterator[dict[int, torch.Tensor]]:
    """While open, capture what enters each layer's first adapted projection (q, k and v share one input) as
    (n, h) float64 rows without padding; nothing for a method without probes."""
    inputs: dict[int, torch.Tensor] = {}
    handles = []
    if adapted.has_probes:
        linears, seen = linear_modules(adapted.model), set()
        for name, _, _ in adapted.probe_pairs():
            layer = layer_index(name)
            if layer not in seen:
                seen.add(layer)
                handles.append(linears[name].register_forward_pre_hook(_capture(inputs, layer, mask)))
    try:
        yield inputs
    finally:
        for h in handles:
            h.remove()


def _capture(store: dict, layer: int, mask: torch.Tensor):
    def hook(module, args):
        store[layer] = args[0][mask].to(torch.float64)  # (n, h)

    return hook


@torch.no_grad()
def probe_rows(adapted: Adapted, inputs: dict[int, torch.Tensor], step: int, wall: float) -> list[dict]:
    rows = []
    for layer, probe in enumerate(adapted.probes):
        Q = probe.basis().detach().to(torch.float64)  # (h, p)
        where = {"module": f"layers.{layer}", "layer": layer}
        rows.append(row(step, wall, PROBE_D_EFF, float(probe.gates().sum()), **where))
        rows.append(row(step, wall, PROBE_ORTHONORMALITY, orthonormality_error(Q), **where))
        X = inputs.get(layer)  # (n, h)
        if X is not None and X.shape[0] >= 2:
            Xc = X - X.mean(dim=0)
            coverage = float((Xc @ Q.to(Xc.device)).square().sum() / Xc.square().sum().clamp_min(1e-300))
            rows.append(row(step, wall, PROBE_COVERAGE, coverage, **where))
    for name, value in adapted.alignment_losses().items():
        rows.append(row(step, wall, PROBE_ALIGNMENT, float(value), module=name, layer=layer_index(name),
                        module_type=module_type(name)))
    return rows
