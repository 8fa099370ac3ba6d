"""Intruder dimensions (Shuttleworth et al. 2024, "LoRA vs Full Fine-tuning: An Illusion of Equivalence",
§3, Fig. 1): a top-k left singular vector of the fine-tuned W' is an *intruder* when its largest absolute
cosine similarity with any singular vector of the pre-trained W is below ε. Defaults are peft's
(`reduce_intruder_dimension`: top_k 10, ε 0.5).

W's singular vectors come from one dense SVD (the caller caches it); W' = diag(row_scale) (W + s B A) is
never formed: its top-k singular triplets come from Lanczos iterations (ARPACK, `scipy.sparse.linalg.svds`)
on the operator x -> row_scale * (W x + s B (A x)), in float64.
"""

from __future__ import annotations

import numpy as np
import torch

TOP_K, EPSILON = 10, 0.5


def base_singular_vectors(W: torch.Tensor) -> torch.Tensor:
    """Every left singular vector of W (d_out, min(d_out, d_in)), float32 on the CPU: the cached side."""
    return torch.linalg.svd(W.detach().to(torch.float64).cpu(), full_matrices=False).U.to(torch.float32)


def top_singular_vectors(W: torch.Tensor, B: torch.Tensor | None = None, A: torch.Tensor | None = None,
                         scaling: float = 1.0, row_scale: torch.Tensor | None = None,
                         k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """(U (d_out, k), σ (k,)) of W' = diag(row_scale) (W + s B A), descending, without forming W' (W (d_out, d_in),
    B (d_out, r), A (r, d_in)). k must be below min(d_out, d_in)."""
    from scipy.sparse.linalg import LinearOperator, svds

    W64 = W.detach().to(torch.float64).cpu().numpy()
    B64 = None if B is None else scaling * B.detach().to(torch.float64).cpu().numpy()
    A64 = None if A is None else A.detach().to(torch.float64).cpu().numpy()
    d = np.ones(W64.shape[0]) if row_scale is None else row_scale.detach().to(torch.float64).cpu().numpy()

    def matvec(x: np.ndarray) -> np.ndarray:  # (d_in,) or (d_in, j) -> (d_out, ...)
        y = W64 @ x if B64 is None else W64 @ x + B64 @ (A64 @ x)
        return d.reshape(-1, *[1] * (y.ndim - 1)) * y

    def rmatvec(y: np.ndarray) -> np.ndarray:  # (d_out, ...) -> (d_in, ...)
        y = d.reshape(-1, *[1] * (y.ndim - 1)) * y
        return W64.T @ y if B64 is None else W64.T @ y + A64.T @ (B64.T @ y)

    op = LinearOperator(W64.shape, matvec=matvec, rmatvec=rmatvec, matmat=matvec, rmatmat=rmatvec, dtype=np.float64)
    v0 = np.ones(min(W64.shape)) / np.sqrt(min(W64.shape))  # deterministic start: the same answer every record
    U, s, _ = svds(op, k=k, v0=v0, tol=1e-10)  # ARPACK: PROPACK is faster but failed to converge on some W
    order = np.argsort(s)[::-1]
    return U[:, order], s[order]


def intruder_count(U_base: torch.Tensor | np.ndarray, U_top: np.ndarray, epsilon: float = EPSILON
                   ) -> tuple[int, np.ndarray]:
    """(number of intruders, each top vector's max |cos| with W's singular vectors (k,)): the vectors are unit
    norm, so the cosines are the entries of U_topᵀ U_base."""
    base = U_base.numpy() if isinstance(U_base, torch.Tensor) else U_base
    cos = np.abs(U_top.T @ base.astype(np.float64)).max(axis=1)  # (k,)
    return int((cos < epsilon).sum()), cos
