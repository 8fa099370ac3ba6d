"""Spectral estimators on matrices and on their singular values.

Sources: entropy effective rank and threshold rank from RaLoRA (Eq. 2, Eq. 3, App. D);
stable rank, nuclear/Frobenius norms and the power-law decay exponent from ManifoldLoRA
(ManifoldLoRA §5.4, Fig. 5b-d). ``factor_spectrum`` computes the spectrum of a (block-diagonal) LoRA
update from its factors, never forming the dense d_out x d_in matrix.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from geodiag.metrics._arrays import ArrayLike, as_tensor, singular_value_vector

# Below this size a plain SVD is as fast as the Gram route and simpler.
_GRAM_MIN_DIM = 256


def singular_values(M: ArrayLike, *, method: str = "auto") -> torch.Tensor:
    """Singular values of a matrix, descending, as float64.

    ``method="gram"`` takes eigenvalues of the smaller float64 Gram matrix (syrk + syevr): on a 2-core
    CPU that is about 2x faster than ``torch.linalg.svdvals`` in float32 (2048 x 2048), and exact to
    float64 rounding of the Gram matrix (|sigma_i^2 error| <~ eps64 * sigma_1^2, so sigma_i is resolved
    to ~1e-8 sigma_1, far below float32 SVD's own error). ``"svd"`` calls
    ``torch.linalg.svdvals``. ``"auto"`` uses the Gram route for CPU matrices of at least 256 on the
    short side.
    """
    t = as_tensor(M, "M", ndim=(2,))
    if method not in ("auto", "gram", "svd"):
        raise ValueError(f"method must be 'auto', 'gram' or 'svd', got {method!r}.")
    use_gram = method == "gram" or (
        method == "auto" and t.device.type == "cpu" and min(t.shape) >= _GRAM_MIN_DIM
    )
    if not use_gram:
        return torch.linalg.svdvals(t.to(torch.float64))
    g = t.to(torch.float64)
    if g.shape[0] > g.shape[1]:
        g = g.T  # (short, long): the Gram matrix is short x short
    return torch.flip(_gram_eigenvalues(g), dims=(0,)).clamp_min_(0.0).sqrt_()


def _gram_eigenvalues(g: torch.Tensor) -> torch.Tensor:
    """Ascending eigenvalues of g @ g.T (float64). On CPU: BLAS syrk fills one triangle (half a GEMM's
    flops, no copy of g), and LAPACK's MRRR solver (syevr) reads that triangle in place."""
    if g.device.type != "cpu":
        return torch.linalg.eigvalsh(g @ g.T)
    from scipy.linalg import blas, eigh

    a = g.numpy()
    # syrk on the Fortran view of a C-ordered g (that is, g^T) with trans=1 computes g g^T, lower part
    lower = blas.dsyrk(1.0, a.T if a.flags.c_contiguous else np.asfortranarray(a.T), trans=1, lower=1)
    lam = eigh(lower, lower=True, eigvals_only=True, driver="evr", check_finite=False, overwrite_a=True)
    return torch.from_numpy(lam)


def effective_rank(x: ArrayLike, *, method: str = "auto") -> float:
    """Entropy effective rank (Roy & Vetterli 2007; RaLoRA Eq. 3).

    erank = exp(-sum p_i log p_i) with p_i = sigma_i / sum_j sigma_j (singular values, not squared).
    ``x`` is a matrix or a 1-D vector of singular values. Bounds: 1 <= erank <= rank (RaLoRA Eq. 20).
    An all-zero input has no spectrum to measure: the result is NaN with a RuntimeWarning.
    """
    s = singular_values(x, method=method) if _ndim(x) == 2 else singular_value_vector(x)
    total = float(s.sum())
    if total <= 0.0:
        warnings.warn("effective_rank: all singular values are zero; the effective rank is undefined (NaN).",
                      RuntimeWarning, stacklevel=2)
        return math.nan
    p = s[s > 0] / total
    return float(torch.exp(-(p * torch.log(p)).sum()))


def threshold_rank(singular_values: ArrayLike, eps: float, *, relative: bool = False) -> int:
    """Number of singular values above ``eps`` (RaLoRA Eq. 2; App. D uses absolute eps 1e-1/1e-3/1e-5).

    With ``relative=True`` the threshold is ``eps * sigma_max``.
    """
    if not eps >= 0:
        raise ValueError(f"eps must be a non-negative number, got {eps!r}.")
    s = singular_value_vector(singular_values)
    cut = eps * float(s[0]) if (relative and s.numel()) else eps
    return int((s > cut).sum())


def stable_rank(singular_values: ArrayLike) -> float:
    """||M||_F^2 / ||M||_2^2 (ManifoldLoRA §5.4). NaN with a warning for an all-zero spectrum."""
    s = singular_value_vector(singular_values)
    if s.numel() == 0 or float(s[0]) == 0.0:
        warnings.warn("stable_rank: all singular values are zero; the stable rank is undefined (NaN).",
                      RuntimeWarning, stacklevel=2)
        return math.nan
    return float((s**2).sum() / s[0] ** 2)


def nuclear_norm(singular_values: ArrayLike) -> float:
    """sum sigma (ManifoldLoRA Fig. 5c)."""
    return float(singular_value_vector(singular_values).sum())


def frobenius_norm(singular_values: ArrayLike) -> float:
    """sqrt(sum sigma^2) (ManifoldLoRA Fig. 5c)."""
    return float(torch.linalg.vector_norm(singular_value_vector(singular_values)))


@dataclass(frozen=True)
class PowerLawFit:
    """log sigma_k = alpha log k + intercept over the non-zero singular values (ManifoldLoRA Fig. 5d)."""

    alpha: float
    intercept: float
    r2: float
    n: int
    reason: str | None = None  # why alpha is NaN, if it is


def powerlaw_exponent(singular_values: ArrayLike, *, min_points: int = 5, rel_zero: float = 1e-10) -> PowerLawFit:
    """Least-squares slope of log sigma_k against log k (k = 1..n), ManifoldLoRA Fig. 5d.

    Values below ``rel_zero * sigma_max`` count as zero. Fewer than ``min_points`` non-zero values give
    ``alpha = NaN`` and a ``reason`` rather than an exception: a rank-1 update has no decay to fit.
    """
    s = singular_value_vector(singular_values)
    s = s[s > rel_zero * float(s[0])] if s.numel() and float(s[0]) > 0 else s[:0]
    n = int(s.numel())
    if n < min_points:
        return PowerLawFit(math.nan, math.nan, math.nan, n,
                           reason=f"only {n} non-zero singular value(s); a power-law fit needs {min_points}")
    x = np.log(np.arange(1, n + 1, dtype=np.float64))
    y = np.log(s.numpy())
    alpha, intercept = np.polyfit(x, y, 1)
    resid = y - (alpha * x + intercept)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return PowerLawFit(float(alpha), float(intercept), r2, n)


def factor_spectrum(
    B: ArrayLike,
    A: ArrayLike,
    *,
    gates: ArrayLike | None = None,
    scaling: float = 1.0,
    blocks: int = 1,
) -> np.ndarray | torch.Tensor:
    """Singular values (descending) of ``scaling * B diag(gates) A`` from the factors alone.

    B is (d_out, r) and A is (r, d_in). QR of B diag(g) and of A^T leaves an r x r core whose singular
    values are those of the update: O((d_out + d_in) r^2) instead of O(d_out d_in min(d_out, d_in)).
    Computed in float64 whatever the input dtype.

    Block-diagonal updates (RaLoRA §3.3), Delta W = diag(B_1 A_1, ..., B_n A_n), come either as
    stacked blocks, B (n, d_out/n, r) and A (n, r, d_in/n), or as the block-diagonal matrices
    themselves, B (d_out, n r) and A (n r, d_in) with ``blocks=n``. The result is the spectrum of the
    whole block-diagonal matrix: the union of the blocks' spectra, sorted.

    Returns a torch tensor if B or A is one, else a numpy array.
    """
    Bt = as_tensor(B, "B", ndim=(2, 3)).to(torch.float64)
    At = as_tensor(A, "A", ndim=(2, 3)).to(torch.float64)
    gt = None if gates is None else as_tensor(gates, "gates", ndim=(1, 2)).to(torch.float64)
    if not math.isfinite(scaling):
        raise ValueError(f"scaling must be finite, got {scaling!r}.")
    Bb, Ab, gb = _as_blocks(Bt.to(At.device), At, gt, blocks)  # (n, o, r), (n, r, c), (n, r) | None
    if gb is not None:
        Bb = Bb * gb.to(Bb.device)[:, None, :]  # B diag(g)
    _, Rb = torch.linalg.qr(Bb)  # (n, k1, r)
    _, Ra = torch.linalg.qr(Ab.transpose(-1, -2))  # (n, k2, r)
    core = Rb @ Ra.transpose(-1, -2)  # (n, k1, k2), same singular values as the block
    s = torch.linalg.svdvals(core).reshape(-1) * abs(float(scaling))
    s = torch.sort(s, descending=True).values
    if isinstance(B, torch.Tensor) or isinstance(A, torch.Tensor):
        return s
    return s.cpu().numpy()


def factor_svd(
    B: ArrayLike,
    A: ArrayLike,
    k: int,
    *,
    gates: ArrayLike | None = None,
    scaling: float = 1.0,
    blocks: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k singular triplets (U (d_out, k), s (k,), V (d_in, k)) of ``scaling * B diag(gates) A``.

    The same QR route as `factor_spectrum`: B diag(g) = Q_B R_B and A^T = Q_A R_A leave the r x r core
    R_B R_A^T = U_c S V_c^T, so Delta W = (Q_B U_c) S (Q_A V_c)^T. For block-diagonal updates each block's
    vectors are embedded at its offset and the k largest across blocks are kept. float64 throughout.
    """
    Bt = as_tensor(B, "B", ndim=(2, 3)).to(torch.float64)
    At = as_tensor(A, "A", ndim=(2, 3)).to(torch.float64)
    gt = None if gates is None else as_tensor(gates, "gates", ndim=(1, 2)).to(torch.float64)
    Bb, Ab, gb = _as_blocks(Bt.to(At.device), At, gt, blocks)  # (n, o, r), (n, r, c), (n, r) | None
    if gb is not None:
        Bb = Bb * gb.to(Bb.device)[:, None, :]
    Qb, Rb = torch.linalg.qr(Bb)  # (n, o, k1), (n, k1, r)
    Qa, Ra = torch.linalg.qr(Ab.transpose(-1, -2))  # (n, c, k2), (n, k2, r)
    Uc, S, Vch = torch.linalg.svd(Rb @ Ra.transpose(-1, -2))  # (n, k1, m), (n, m), (n, m, k2)
    Ub, Vb = Qb @ Uc, Qa @ Vch.transpose(-1, -2)  # (n, o, m), (n, c, m)
    n, o, m = Ub.shape
    c = Vb.shape[1]
    order = torch.argsort(S.reshape(-1), descending=True)[: max(0, int(k))]
    U = torch.zeros(n * o, order.numel(), dtype=torch.float64, device=Ub.device)
    V = torch.zeros(n * c, order.numel(), dtype=torch.float64, device=Vb.device)
    for col, flat in enumerate(order.tolist()):
        blk, j = divmod(flat, m)
        U[blk * o:(blk + 1) * o, col] = Ub[blk, :, j]
        V[blk * c:(blk + 1) * c, col] = Vb[blk, :, j]
    return U, S.reshape(-1)[order] * abs(float(scaling)), V


def _as_blocks(B: torch.Tensor, A: torch.Tensor, g: torch.Tensor | None, blocks: int):
    if not isinstance(blocks, int) or blocks < 1:
        raise ValueError(f"blocks must be a positive integer, got {blocks!r}.")
    if A.ndim == 3 or B.ndim == 3:
        if A.ndim != 3 or B.ndim != 3:
            raise ValueError("stacked blocks need both B (n, d_out/n, r) and A (n, r, d_in/n) as 3-D arrays.")
        n = A.shape[0]
        if blocks not in (1, n):
            raise ValueError(f"blocks={blocks} disagrees with the {n} stacked blocks in A.")
        if B.shape[0] != n or B.shape[2] != A.shape[1]:
            raise ValueError(f"B {tuple(B.shape)} and A {tuple(A.shape)} are not matching stacked blocks.")
        return B, A, _block_gates(g, n, A.shape[1])
    d_out, R = B.shape
    if A.shape[0] != R:
        raise ValueError(f"B is {tuple(B.shape)} and A is {tuple(A.shape)}: B's columns must equal A's rows.")
    d_in = A.shape[1]
    n = blocks
    if n == 1:
        return B[None], A[None], _block_gates(g, 1, R)
    for name, size in (("rank", R), ("d_out", d_out), ("d_in", d_in)):
        if size % n:
            raise ValueError(f"blocks={n} does not divide {name}={size}.")
    r, o, c = R // n, d_out // n, d_in // n
    A4 = A.reshape(n, r, n, c)
    B4 = B.reshape(n, o, n, r)
    Ab = torch.diagonal(A4, dim1=0, dim2=2).permute(2, 0, 1)  # (n, r, c)
    Bb = torch.diagonal(B4, dim1=0, dim2=2).permute(2, 0, 1)  # (n, o, r)
    for name, blocks4 in (("A", A4), ("B", B4)):
        block_mass = blocks4.abs().sum(dim=(1, 3))  # (n, n): zero off the diagonal, exactly
        if bool((block_mass - torch.diag(torch.diagonal(block_mass)) != 0).any()):
            raise ValueError(
                f"{name} has non-zero entries outside its {n} diagonal blocks; pass the blocks stacked "
                "(B as (n, d_out/n, r), A as (n, r, d_in/n)) or use blocks=1."
            )
    return Bb, Ab, _block_gates(g, n, r)


def _block_gates(g: torch.Tensor | None, n: int, r: int) -> torch.Tensor | None:
    if g is None:
        return None
    if g.numel() != n * r:
        raise ValueError(f"gates has {g.numel()} values but the factors have rank {n * r} ({n} block(s) of {r}).")
    return g.reshape(n, r)


def _ndim(x: ArrayLike) -> int:
    return x.ndim if hasattr(x, "ndim") else np.ndim(x)
