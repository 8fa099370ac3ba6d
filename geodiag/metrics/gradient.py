"""Gradient statistics for rank allocation: importance (RaLoRA Eq. 5) and the empirical Fisher
(RaLoRA App. E.2) that the GID-vs-Fisher table compares against."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from geodiag.metrics._arrays import ArrayLike, as_tensor


def importance(W: ArrayLike, G: ArrayLike) -> float:
    """I(W_l) = mean(|W_l * G_l|): first-order loss sensitivity of a weight (RaLoRA Eq. 5)."""
    Wt = as_tensor(W, "W")
    Gt = as_tensor(G, "G")
    if Wt.shape != Gt.shape:
        raise ValueError(f"W {tuple(Wt.shape)} and G {tuple(Gt.shape)} must have the same shape.")
    return float((Wt.to(torch.float64) * Gt.to(Wt.device, torch.float64)).abs().mean())


def fisher_term(G: ArrayLike) -> float:
    """mean(G^2) of one mini-batch gradient: the diagonal empirical Fisher averaged over a layer."""
    return float(as_tensor(G, "G").to(torch.float64).square().mean())


def empirical_fisher(grads: Iterable[ArrayLike]) -> float:
    """Mean over mini-batches of mean(G_b^2), the layer-averaged diagonal empirical Fisher (RaLoRA App. E.2).

    ``grads`` yields the per-batch gradients of one weight; it is consumed once, so a generator keeps
    only one gradient in memory at a time.
    """
    total, count = 0.0, 0
    for g in grads:
        total += fisher_term(g)
        count += 1
    if count == 0:
        raise ValueError("empirical_fisher needs at least one gradient; got an empty sequence.")
    return total / count
