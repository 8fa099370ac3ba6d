"""Principal angles between Delta W, the full fine-tuning gradient and the probe span (beyond the papers)."""

from __future__ import annotations

import torch

from geodiag.methods.base import Adapted, AdapterView
from geodiag.metrics import factor_svd, principal_angles, random_subspace_angle
from geodiag.models import frozen_weight
from geodiag.names import ANGLE_DW_GRAD, ANGLE_DW_PROBE, ANGLE_GRAD_PROBE, random_reference
from geodiag.records import row


def subspace_rows(adapted: Adapted, batch: dict[str, torch.Tensor], k: int, step: int, wall: float) -> list[dict]:
    """Principal angles (degrees, idx = angle number) between three top-k subspaces per adapted module.

    - subspace/angle_dw_grad: column space of Delta W (top-k left singular vectors, from the factors) vs the
      top-k left singular subspace of G, the full fine-tuning gradient of the frozen W on the record batch.
    - subspace/angle_dw_probe and subspace/angle_grad_probe (methods with probes): the probe basis Q lives in
      the layer's input space, so all of span(Q) (p directions) is compared with the top-k right singular
      (row) subspaces of Delta W and of G, which live there too: min(k, p) angles, each measuring how far a
      row direction of Delta W or G sits outside the probe's span.
    Each pair also gets subspace/random_* (no idx): the mean angle two random subspaces of the same
    dimensions would make, the line a measured angle has to clear to mean anything.
    Rows are skipped where a subspace is undefined (Delta W = 0 at step 0).
    """
    views = adapted.adapters()
    grads = base_gradients(adapted, batch, [v.module for v in views])
    probes = {}
    if adapted.has_probes:
        probes = {layer: p.basis().detach().to(torch.float64).cpu() for layer, p in enumerate(adapted.probes)}
    rows = []
    for v in views:
        where = {"module": v.module, "layer": v.layer, "module_type": v.module_type}
        for name, (X, Y) in _subspace_pairs(v, grads[v.module], k, probes.get(v.layer)).items():
            if X.shape[1] and Y.shape[1]:
                angles = principal_angles(X, Y).tolist()
                rows += [row(step, wall, name, a, idx=i, **where) for i, a in enumerate(angles)]
                chance = random_subspace_angle(X.shape[0], X.shape[1], Y.shape[1])  # same dimensions, random
                rows.append(row(step, wall, random_reference(name), chance, **where))
    return rows


def _subspace_pairs(v: AdapterView, G: torch.Tensor, k: int, Q: torch.Tensor | None) -> dict:
    """metric name -> (X, Y), two orthonormal bases whose principal angles it records."""
    Ug, Vg = _top_singular_vectors(G, k)  # (d_out, k), (d_in, k)
    Ud, s, Vd = factor_svd(v.B, v.A, k, gates=v.gates, scaling=v.scaling)  # stacked RaLoRA blocks as they are
    top = float(s[0]) if s.numel() else 0.0
    keep = (s > top * 1e-12).cpu() if top > 0 else torch.zeros(s.numel(), dtype=torch.bool)  # drop null directions
    Ud, Vd = Ud.cpu()[:, keep], Vd.cpu()[:, keep]
    pairs = {ANGLE_DW_GRAD: (Ud, Ug)}
    if Q is not None:  # the whole probe span: its columns carry no order, so a first-k cut would be arbitrary
        pairs |= {ANGLE_DW_PROBE: (Vd, Q), ANGLE_GRAD_PROBE: (Vg, Q)}
    return pairs


def _top_singular_vectors(G: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k left (d_out, k) and right (d_in, k) singular vectors of G, float64."""
    U, _, Vh = torch.linalg.svd(G.to(torch.float64), full_matrices=False)
    return U[:, :k], Vh[:k].T


def base_gradients(adapted: Adapted, batch: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """dL/dW of each named frozen base weight on the batch, leaving every .grad and requires_grad untouched."""
    model = adapted.model
    weights = {n: frozen_weight(model, n) for n in names}
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        for w in weights.values():
            w.requires_grad_(True)
        with adapted.recording(), torch.enable_grad():
            loss = model(**batch).loss
            grads = torch.autograd.grad(loss, list(weights.values()))
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
    return {n: g.detach().cpu() for n, g in zip(weights, grads, strict=True)}
