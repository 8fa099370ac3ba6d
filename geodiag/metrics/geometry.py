"""Geometry of representations: participation ratio (ManifoldLoRA Eq. 5), probe orthonormality
(ManifoldLoRA Fig. 3c), and principal angles between subspaces with their random-subspace reference."""

from __future__ import annotations

import functools

import torch

from geodiag.metrics._arrays import ArrayLike, as_tensor


def participation_ratio(H: ArrayLike, *, eps: float = 1e-12) -> float:
    """PR(H) = (sum lambda)^2 / (sum lambda^2 + eps), lambda the eigenvalues of the centred covariance
    H^T H / (n - 1) of the n x h activations H (ManifoldLoRA Eq. 5).

    No eigendecomposition is needed: sum lambda is the trace and sum lambda^2 the squared Frobenius
    norm of the covariance. When n < h the centred Gram matrix (n x n) has the same non-zero
    eigenvalues, so PR is well defined for any n >= 2 (ManifoldLoRA calls it undefined for n < h; it is not).
    Callers should record n beside the value: with n < h, PR is at most n - 1. float64 input is computed
    in float64; float32 input does its GEMM in float32 (PR is a ratio of sums of positive terms, so that
    costs ~1e-6 relative) and the sums in float64.
    """
    X = as_tensor(H, "H", ndim=(2,))
    n, h = X.shape
    if n < 2:
        raise ValueError(f"participation_ratio needs at least 2 rows (observations), got {n}.")
    Xc = X - X.mean(dim=0, keepdim=True)  # (n, h)
    # (h, h) covariance or (n, n) Gram, whichever is smaller: same non-zero spectrum
    C = (Xc.T @ Xc) if n >= h else (Xc @ Xc.T)
    C = C.to(torch.float64) / (n - 1)
    trace = float(torch.diagonal(C).sum())  # sum lambda
    if trace <= 0.0:
        raise ValueError("H has zero variance (all rows are identical); its participation ratio is undefined.")
    sum_sq = float((C * C).sum())  # sum lambda^2 = ||C||_F^2
    return trace**2 / (sum_sq + eps)


def orthonormality_error(Q: ArrayLike) -> float:
    """||Q^T Q - I||_F for a basis Q with orthonormal columns (ManifoldLoRA Fig. 3c); 0 for an exact one."""
    Qt = as_tensor(Q, "Q", ndim=(2,)).to(torch.float64)
    eye = torch.eye(Qt.shape[1], dtype=torch.float64, device=Qt.device)
    return float(torch.linalg.matrix_norm(Qt.T @ Qt - eye))


def principal_angles(U: ArrayLike, V: ArrayLike) -> torch.Tensor:
    """Principal angles in degrees, ascending, between span(U) and span(V) (Björck & Golub 1973).

    U (n, k1) and V (n, k2) need not be orthonormal: both are orthonormalised by QR first. The cosines
    are the singular values of Q_U^T Q_V; there are min(k1, k2) angles. 0 means a shared direction,
    90 an orthogonal one; two random k-dimensional subspaces of R^n sit near 90 when k << n. Small angles
    come from the sines, singular values of (I - Q_U Q_U^T) Q_V, since arccos loses them near cos = 1
    (Knyazev & Argentati 2002).
    """
    Ut = as_tensor(U, "U", ndim=(2,)).to(torch.float64)
    Vt = as_tensor(V, "V", ndim=(2,)).to(torch.float64)
    if Ut.shape[0] != Vt.shape[0]:
        raise ValueError(f"U has {Ut.shape[0]} rows and V has {Vt.shape[0]}: the subspaces must live in one space.")
    Qu = torch.linalg.qr(Ut).Q  # (n, k1)
    Qv = torch.linalg.qr(Vt.to(Ut.device)).Q  # (n, k2)
    if Qu.shape[1] < Qv.shape[1]:
        Qu, Qv = Qv, Qu  # k1 >= k2 below, so both decompositions give k2 values
    M = Qu.T @ Qv  # (k1, k2)
    cos = torch.linalg.svdvals(M).clamp(0.0, 1.0)  # descending
    sin = torch.sort(torch.linalg.svdvals(Qv - Qu @ M).clamp(0.0, 1.0)).values  # ascending: same order
    angles = torch.where(sin * sin < 0.5, torch.arcsin(sin), torch.arccos(cos))
    return torch.rad2deg(angles)


@functools.lru_cache(maxsize=256)
def random_subspace_angle(n: int, k1: int, k2: int, *, draws: int = 16, seed: int = 0) -> float:
    """Mean principal angle (degrees) between two independent uniformly random subspaces of dimensions k1
    and k2 in R^n, by Monte Carlo over `draws` seeded pairs (Gaussian matrices span Haar-random subspaces).

    The reference a measured angle needs: two random 8-dimensional subspaces of R^576 already sit near 83
    degrees, two random lines in the plane at 45 on average, and any subspace at 0 from one that fills the
    space (k = n). Cached per shape, since collectors ask for the same few shapes at every record step.
    """
    if min(k1, k2) < 1 or max(k1, k2) > n:
        raise ValueError(f"subspace dimensions {k1} and {k2} must lie in 1..n={n}.")
    g = torch.Generator().manual_seed(seed)
    means = [principal_angles(torch.randn(n, k1, generator=g, dtype=torch.float64),
                              torch.randn(n, k2, generator=g, dtype=torch.float64)).mean() for _ in range(draws)]
    return float(torch.stack(means).mean())
