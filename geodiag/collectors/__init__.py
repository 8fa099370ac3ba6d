"""Collectors: turn a model's state into metric rows at record time (model -> collectors -> metrics -> store).

`adapter_rows` reads the adapters' factors (spectra never form dense Delta W); `activation_rows` runs one
no-grad forward on a fixed record batch and measures the hidden states (participation ratio) and, for
ManifoldLoRA, the probes (d_eff, orthonormality, activation coverage, alignment per adapter-probe pair).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from geodiag.methods import Adapted, AdapterView
from geodiag.methods.manifold import ManifoldAdapted
from geodiag.metrics import (
    effective_rank,
    factor_spectrum,
    factor_svd,
    frobenius_norm,
    nuclear_norm,
    orthonormality_error,
    participation_ratio,
    powerlaw_exponent,
    principal_angles,
    random_subspace_angle,
    stable_rank,
)
from geodiag.models import backbone, layer_index, linear_modules, module_type

DEAD_GATE = 0.05  # 002 §3: a gate below this is dead


def row(step: int, wall: float, name: str, value: float, *, module: str | None = None, layer: int | None = None,
        module_type: str | None = None, idx: int | None = None) -> dict:
    return {"step": step, "wall_time": wall, "name": name, "module": module, "layer": layer,
            "module_type": module_type, "idx": idx, "value": float(value)}


def adapter_rows(adapted: Adapted, step: int, wall: float) -> list[dict]:
    """Delta W spectrum metrics for every adapter, and gate/rank metrics where the method has them."""
    rows = [r for v in adapted.adapters() for r in _view_rows(v, step, wall)]
    rows += [row(step, wall, name, value) for name, value in adapted.extra_state().items()]
    return rows


def _view_rows(v: AdapterView, step: int, wall: float) -> list[dict]:
    """Spectrum (never dense Delta W), then gates (ManifoldLoRA) or allocated rank (AdaLoRA) of one adapter."""
    where = {"module": v.module, "layer": v.layer, "module_type": v.module_type}
    s = np.asarray(factor_spectrum(v.B, v.A, gates=v.gates, scaling=v.scaling).cpu())
    rows = [row(step, wall, "spectrum/singular_value", x, idx=k, **where) for k, x in enumerate(s)]
    scalars = {"spectrum/nuclear": nuclear_norm(s), "spectrum/frobenius": frobenius_norm(s)}
    if s.size and s[0] > 0:  # a zero update (B = 0 at step 0) has no shape to describe
        fit = powerlaw_exponent(s)
        scalars |= {"spectrum/stable_rank": stable_rank(s), "spectrum/erank": effective_rank(s),
                    "spectrum/alpha_n": fit.n}
        if not math.isnan(fit.alpha):
            scalars |= {"spectrum/alpha": fit.alpha, "spectrum/alpha_r2": fit.r2}
    if v.rank is not None:
        scalars["adalora/rank"] = v.rank
    elif v.gates is not None:
        g = v.gates.detach().cpu().to(torch.float64)
        rows += [row(step, wall, "gate/value", x, idx=k, **where) for k, x in enumerate(g.tolist())]
        scalars |= {"gate/effective_rank": float(g.sum()), "gate/dead": int((g < DEAD_GATE).sum())}
    return rows + [row(step, wall, name, value, **where) for name, value in scalars.items()]


@torch.no_grad()
def activation_rows(adapted: Adapted, batch: dict[str, torch.Tensor], step: int, wall: float) -> list[dict]:
    """Participation ratio of every block's output on the record batch; probe metrics for ManifoldLoRA."""
    model = adapted.model
    mask = batch["attention_mask"].bool()  # (B, T)
    inputs, handles = {}, []
    if isinstance(adapted, ManifoldAdapted):  # capture what enters each layer's adapted projections
        linears = linear_modules(model)
        for name, probe_layer in _probe_inputs(adapted):
            handles.append(linears[name].register_forward_pre_hook(_capture(inputs, probe_layer, mask)))
    try:
        with _recording(adapted):
            # the decoder stack alone: the LM head's logits over the whole vocabulary are not needed here
            out = backbone(model)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    rows = []
    for layer, H in enumerate(out.hidden_states[1:]):  # block outputs, (B, T, h) each
        tokens = H[mask].float()  # (n, h), padding dropped
        if tokens.shape[0] >= 2:
            rows.append(row(step, wall, "geometry/participation_ratio", participation_ratio(tokens),
                            module=f"layers.{layer}", layer=layer))
            rows.append(row(step, wall, "geometry/participation_ratio_n", tokens.shape[0],
                            module=f"layers.{layer}", layer=layer))
    if isinstance(adapted, ManifoldAdapted):
        rows += _probe_rows(adapted, inputs, step, wall)
    return rows


@contextlib.contextmanager
def _recording(adapted: Adapted):
    """Eval mode for a record-time forward, which must not feed ManifoldLoRA's PCA statistics either;
    the training state comes back afterwards, whatever happens."""
    model = adapted.model
    was_training = model.training
    stats_flag = getattr(adapted, "training_stats", None)
    model.eval()
    if stats_flag is not None:
        adapted.training_stats = False
    try:
        yield
    finally:
        model.train(was_training)
        if stats_flag is not None:
            adapted.training_stats = stats_flag


def _probe_inputs(adapted):
    """(module, layer) of the first adapted projection per layer: q, k and v share one input."""
    seen = set()
    for name, _, _ in adapted.pairs():
        layer = layer_index(name)
        if layer not in seen:
            seen.add(layer)
            yield name, layer


def _capture(store: dict, layer: int, mask: torch.Tensor):
    def hook(module, args):
        store[layer] = args[0][mask].to(torch.float64)  # (n, h)

    return hook


def _probe_rows(adapted, inputs: dict[int, torch.Tensor], step: int, wall: float) -> list[dict]:
    rows = []
    for layer, probe in enumerate(adapted.probes):
        Q = probe.basis().detach().to(torch.float64)  # (h, p)
        mod = f"layers.{layer}"
        rows.append(row(step, wall, "probe/d_eff", float(probe.gates().sum()), module=mod, layer=layer))
        rows.append(row(step, wall, "probe/orthonormality", orthonormality_error(Q), module=mod, layer=layer))
        X = inputs.get(layer)
        if X is not None and X.shape[0] >= 2:
            Xc = X - X.mean(dim=0)
            coverage = float((Xc @ Q).square().sum() / Xc.square().sum().clamp_min(1e-300))
            rows.append(row(step, wall, "probe/activation_coverage", coverage, module=mod, layer=layer))
    for name, value in adapted.alignment_losses().items():
        rows.append(row(step, wall, "probe/alignment", float(value), module=name, layer=layer_index(name),
                        module_type=module_type(name)))
    return rows


def gid_rows(weights: dict[str, torch.Tensor], step: int, wall: float) -> list[dict]:
    """gid/erank of each weight's current gradient (003 Eq. 2); full fine-tuning's GID dynamics (Fig. 3c)."""
    rows = []
    for name, w in weights.items():
        if w.grad is not None:
            rows.append(row(step, wall, "gid/erank", effective_rank(w.grad.detach()), module=name,
                            layer=layer_index(name), module_type=module_type(name)))
    return rows


def subspace_rows(adapted: Adapted, batch: dict[str, torch.Tensor], k: int, step: int, wall: float) -> list[dict]:
    """Principal angles (degrees, idx = angle number) between three top-k subspaces per adapted module.

    - subspace/angle_dw_grad: column space of Delta W (top-k left singular vectors, from the factors) vs the
      top-k left singular subspace of G, the full fine-tuning gradient of the frozen W on the record batch.
    - subspace/angle_dw_probe and subspace/angle_grad_probe (ManifoldLoRA): the probe basis Q lives in
      the layer's input space, so all of span(Q) (p directions) is compared with the top-k right singular
      (row) subspaces of Delta W and of G, which live there too: min(k, p) angles, each measuring how far a
      row direction of Delta W or G sits outside the probe's span.
    Each pair also gets subspace/random_* (no idx): the mean angle two random subspaces of the same
    dimensions would make, the line a measured angle has to clear to mean anything.
    Rows are skipped where a subspace is undefined (Delta W = 0 at step 0).
    """
    views = adapted.adapters()
    grads = _base_gradients(adapted, batch, [v.module for v in views])
    probes = {}
    if isinstance(adapted, ManifoldAdapted):
        probes = {layer: p.basis().detach().to(torch.float64).cpu() for layer, p in enumerate(adapted.probes)}
    rows = []
    for v in views:
        where = {"module": v.module, "layer": v.layer, "module_type": v.module_type}
        G = grads[v.module]  # (d_out, d_in)
        Ug, Vg = _top_singular_vectors(G, k)
        Ud, s, Vd = factor_svd(v.B, v.A, k, gates=v.gates, scaling=v.scaling)  # stacked RaLoRA blocks as they are
        top = float(s[0]) if s.numel() else 0.0
        keep = (s > top * 1e-12).cpu() if top > 0 else torch.zeros(s.numel(), dtype=torch.bool)  # drop null directions
        Ud, Vd = Ud.cpu()[:, keep], Vd.cpu()[:, keep]
        Q = probes.get(v.layer)
        pairs = {"subspace/angle_dw_grad": (Ud, Ug)}
        if Q is not None:  # the whole probe span: its columns carry no order, so a first-k cut would be arbitrary
            pairs |= {"subspace/angle_dw_probe": (Vd, Q), "subspace/angle_grad_probe": (Vg, Q)}
        for name, (X, Y) in pairs.items():
            if X.shape[1] and Y.shape[1]:
                angles = principal_angles(X, Y)
                rows += [row(step, wall, name, a, idx=i, **where) for i, a in enumerate(angles.tolist())]
                chance = random_subspace_angle(X.shape[0], X.shape[1], Y.shape[1])  # same dimensions, random
                rows.append(row(step, wall, name.replace("/angle_", "/random_"), chance, **where))
    return rows


def _top_singular_vectors(G: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k left (d_out, k) and right (d_in, k) singular vectors of G, float64."""
    U, _, Vh = torch.linalg.svd(G.to(torch.float64), full_matrices=False)
    return U[:, :k], Vh[:k].T


def _base_gradients(adapted: Adapted, batch: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """dL/dW of each named frozen base weight on the batch, leaving every .grad and requires_grad untouched."""
    model = adapted.model
    weights = {n: _base_weight(model, n) for n in names}
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        for w in weights.values():
            w.requires_grad_(True)
        adapted.attention_mask = batch["attention_mask"]
        with _recording(adapted), torch.enable_grad():
            loss = model(**batch).loss
            grads = torch.autograd.grad(loss, list(weights.values()))
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
    return {n: g.detach().cpu() for n, g in zip(weights, grads, strict=True)}


def _base_weight(model: torch.nn.Module, name: str) -> torch.nn.Parameter:
    """The frozen weight of the base module `name` (peft wraps it in `.base_layer`; hooks leave it as is)."""
    for qual, m in model.named_modules():
        if qual == name or qual.endswith("." + name):
            base = getattr(m, "base_layer", m)
            return base.weight
    raise KeyError(name)
