"""TwoNN intrinsic dimension (Facco, d'Errico, Rodriguez & Laio 2017, Sci. Rep. 7:12140).

For every point, mu = r2 / r1 (distances to its 2nd and 1st nearest neighbour) follows a Pareto law
with shape d. Sorting mu and fitting -log(1 - F_emp(mu)) = d log(mu) through the origin on the
smallest (1 - discard_fraction) of the ratios estimates d. GeLoRA (Ed-dib et al.) uses it per layer.

What this implementation adds for real activations:
- near duplicates: hidden states of repeated tokens are fp32 twins with r1 ~ 1e-4, not 0, which sends
  mu to huge values and the estimate towards 0. Points closer than ``dedup_tol`` (relative to the
  larger norm of the pair) are merged and counted;
- speed: candidates come from one GEMM + top-k over chunks of centred data, then are re-measured
  exactly in float64 and re-ranked. Where the hardware has fast bf16 (AVX512-BF16/AMX CPUs, GPUs) the
  GEMM runs in bf16 and each row is *certified*: a rigorous bound on bf16 rounding proves that no
  point outside the candidates can be nearer than the second neighbour found; rows that cannot be
  certified (very dense, low-dimensional data) are searched again in float32. The result equals the
  float32 search, at about twice its speed;
- an error bar: the standard deviation of the fit over bootstrap resamples of the ratios.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from geodiag.metrics._arrays import ArrayLike, as_tensor

_CANDIDATES = 8  # neighbours searched per point before exact re-ranking; doubled when too few survive
_CHUNK_BYTES = 1 << 24  # score block per chunk: 16 MiB stays cache- and allocator-friendly
_EXACT_ROWS = 128  # rows per float64 re-measuring block: (128, k, D) stays in cache
_U_BF16 = 2.0**-8  # unit roundoff of bfloat16 (8-bit significand)


@dataclass(frozen=True)
class TwoNNResult:
    dimension: float
    error: float  # bootstrap standard deviation (NaN when n_bootstrap == 0)
    n_used: int  # distinct points whose ratios define the empirical distribution
    n_duplicates: int  # points dropped as (near) duplicates of a kept point
    n_fit: int  # smallest ratios that enter the regression
    discard_fraction: float

    def __float__(self) -> float:
        return self.dimension


def twonn(
    X: ArrayLike,
    *,
    discard_fraction: float = 0.1,
    dedup_tol: float = 1e-5,
    n_bootstrap: int = 100,
    seed: int = 0,
    search: str = "auto",
) -> TwoNNResult:
    """TwoNN intrinsic dimension of the rows of ``X`` (n points in D dimensions, numpy or torch).

    ``dedup_tol``: two points with ||x_i - x_j|| <= dedup_tol * max(||x_i||, ||x_j||) count as one
    (exact duplicates always do). 1e-5 sits well above float32 rounding (~1e-7 relative) and well below
    the nearest-neighbour spacing of any manifold sampled by fewer than ~1e10 points per dimension.
    ``search``: "auto" (certified bf16 where the hardware has it, else float32), "bf16" or "fp32";
    every choice returns the same neighbours.
    """
    if search not in ("auto", "bf16", "fp32"):
        raise ValueError(f"search must be 'auto', 'bf16' or 'fp32', got {search!r}.")
    if not 0.0 <= discard_fraction < 1.0:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction!r}.")
    if dedup_tol < 0:
        raise ValueError(f"dedup_tol must be non-negative, got {dedup_tol!r}.")
    Xt = as_tensor(X, "X", ndim=(2,))
    n = Xt.shape[0]
    if n < 3:
        raise ValueError(f"TwoNN needs at least 3 points, got {n}.")
    lowp = search == "bf16" or (search == "auto" and _fast_bf16(Xt.device))
    r1, r2, kept = _two_nearest(Xt, dedup_tol, lowp)
    mu = (r2[kept] / r1[kept]).cpu().numpy()  # (N,)
    N = mu.size
    n_fit = min(int(N * (1.0 - discard_fraction)), N - 1)  # F(mu_(N)) = 1 would give -log(0)
    if n_fit < 2:
        raise ValueError(f"only {N} distinct point(s) remain after removing duplicates; TwoNN needs more.")
    dimension = float(_fit(np.sort(mu), N, n_fit))
    error = _bootstrap_error(mu, n_fit, n_bootstrap, seed)
    return TwoNNResult(dimension, error, N, n - N, n_fit, discard_fraction)


def _fit(mu_sorted: np.ndarray, N: int, n_fit: int) -> float:
    """Slope through the origin of -log(1 - i/N) against log mu_(i), i = 1..n_fit (Facco 2017 Eq. 4)."""
    x = np.log(mu_sorted[..., :n_fit])
    y = -np.log1p(-np.arange(1, n_fit + 1) / N)
    return (x @ y) / (x * x).sum(axis=-1)


def _bootstrap_error(mu: np.ndarray, n_fit: int, n_bootstrap: int, seed: int) -> float:
    if n_bootstrap <= 1:
        return math.nan
    rng = np.random.default_rng(seed)
    N = mu.size
    dims = []
    for start in range(0, n_bootstrap, 32):  # (32, N) resamples at a time
        idx = rng.integers(0, N, size=(min(32, n_bootstrap - start), N))
        dims.append(_fit(np.sort(mu[idx], axis=1), N, n_fit))
    return float(np.std(np.concatenate(dims), ddof=1))


def _two_nearest(
    X: torch.Tensor, tol: float, lowp: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distances to the 1st and 2nd nearest distinct neighbour of every kept point, and the kept mask.

    Iterates to a fixed point. A round searches candidates for the pending rows among the kept points,
    re-measures them exactly, drops the later point of every duplicate pair, and resolves the rows whose
    two nearest valid neighbours are certified. The first round searches a cheap space (top principal
    components, bf16 where fast), whose scores bound every distance from below; rows it cannot certify,
    rows that lacked valid candidates, and rows whose neighbours were dropped later go round again in
    the full space in float32, which is trusted as every float32 kNN library trusts it.
    """
    n = X.shape[0]
    X64 = X.to(torch.float64)  # exact distances and duplicate tests
    Xc = (X64 - X64.mean(dim=0)).to(torch.float32)  # centring keeps the low-precision search accurate
    full = _SearchSpace(Xc, lowp=False, trusted=True)
    space = _cheap_space(Xc, lowp) or full
    norms = torch.linalg.vector_norm(X64, dim=1)  # (n,) uncentred: fp32 rounding scales with these
    kept = torch.ones(n, dtype=torch.bool, device=X.device)
    r1 = torch.full((n,), math.nan, dtype=torch.float64, device=X.device)
    r2 = r1.clone()
    nb = torch.full((n, 2), -1, dtype=torch.long, device=X.device)
    pending = torch.arange(n, device=X.device)
    k = _CANDIDATES
    while pending.numel():
        pool = kept.nonzero().squeeze(1)
        if pool.numel() < 3:
            raise ValueError(f"only {pool.numel()} distinct point(s) remain after removing duplicates; "
                             "TwoNN needs at least 3.")
        k_eff = min(k, pool.numel() - 1)
        cand, dist, bound = _candidates(space, X64, pending, pool, k_eff)  # (p, k), ascending
        dup = (dist == 0) | (dist <= tol * torch.maximum(norms[pending, None], norms[cand]))
        _drop_duplicates(kept, pending, cand, dup)
        valid = kept[cand] & ~dup
        enough = valid.sum(dim=1) >= 2
        if space.trusted and k_eff == pool.numel() - 1 and not bool(enough[kept[pending]].all()):
            raise ValueError("fewer than 3 distinct points remain after removing duplicates; TwoNN needs 3.")
        # columns of the two nearest valid candidates (candidates are sorted by distance)
        first_two = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)[:, :2]
        d12 = dist.gather(1, first_two)  # (p, 2)
        certified = d12[:, 1] ** 2 <= bound  # no point outside the candidates can be nearer
        rows = enough & certified & kept[pending]
        resolved = pending[rows]
        r1[resolved], r2[resolved] = d12[rows, 0], d12[rows, 1]
        nb[resolved] = cand[rows].gather(1, first_two[rows])
        if bool((kept[pending] & ~enough).any()):
            k *= 2  # some rows saw too few valid candidates (duplicates crowd them out)
        # Kept rows not resolved, plus resolved rows that lost a neighbour to a later drop, go again.
        stale = kept & (nb >= 0).all(dim=1) & ~(kept[nb.clamp_min(0)].all(dim=1))
        again = pending[kept[pending] & ~rows]
        pending = torch.unique(torch.cat([again, stale.nonzero().squeeze(1)]))
        nb[pending] = -1
        space = full
    return r1, r2, kept


@dataclass
class _SearchSpace:
    """Coordinates the candidate search runs in: squared distances there never exceed the true ones."""

    Y: torch.Tensor  # (n, D') float32: centred data, or its projection on top principal components
    lowp: bool  # GEMM in bf16
    trusted: bool  # full space in float32: no certificate needed

    @functools.cached_property
    def sq_norms(self) -> torch.Tensor:  # (n,) float64, computed once per space, not once per round
        return torch.linalg.vector_norm(self.Y, dim=1, dtype=torch.float64).square()


def _cheap_space(Xf: torch.Tensor, lowp: bool) -> _SearchSpace | None:
    """Top principal components holding all but 1e-3 of the variance, if they are at most half of D.

    Projection on any orthonormal basis V shortens every difference vector, so distances there are
    lower bounds on the true ones and certificates stay rigorous whatever V is; a good V only makes
    them tighter. V is re-orthonormalised in float64 so the contraction is exact to rounding.
    """
    n, D = Xf.shape
    if D < 64 or D > 2048 or n < D:
        return _SearchSpace(Xf, lowp, trusted=False) if lowp else None
    sample = Xf[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:2048].to(Xf.device)]
    evals, evecs = torch.linalg.eigh(sample.T @ sample)  # ascending; a rough basis is enough
    energy = torch.cumsum(evals.flip(0).clamp_min(0).to(torch.float64), 0)
    keep = int((energy < (1 - 1e-3) * energy[-1]).sum()) + 1
    keep = min(D, -(-keep // 16) * 16)  # GEMM-friendly width
    if keep > D // 2:
        return _SearchSpace(Xf, lowp, trusted=False) if lowp else None
    V, _ = torch.linalg.qr(evecs.flip(1)[:, :keep].to(torch.float64))  # (D, keep), orthonormal
    return _SearchSpace(Xf @ V.to(torch.float32), lowp, trusted=False)


def _candidates(
    space: _SearchSpace, X64: torch.Tensor, rows: torch.Tensor, pool: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k nearest pool points of each row (itself excluded) in the search space, their exact float64
    distances (ascending), and a lower bound on the squared distance of every pool point not returned.

    fp32: score_j = ||p_j||^2 / 2 - q.p_j in one fused GEMM. bf16: the norm term rides in the GEMM as
    two extra bf16 columns (hi + lo), so the bf16 output is the score ||p_j||^2 - 2 q.p_j directly.
    The bound is the (k+1)-th best score as a squared distance, minus its worst-case rounding error.
    """
    Y = space.Y
    n, D = Y.shape
    m = pool.numel()
    slot = torch.full((n,), -1, dtype=torch.long, device=Y.device)
    slot[pool] = torch.arange(m, device=Y.device)  # position of each point inside the pool
    P = Y if m == n else Y[pool]  # (m, D)
    p_sq = space.sq_norms[pool]  # (m,)
    p_max = float(p_sq.max().sqrt())
    if space.lowp:
        hi = p_sq.to(torch.bfloat16)
        lo = (p_sq - hi.to(torch.float64)).to(torch.bfloat16)
        PT = torch.cat([P.to(torch.bfloat16).mul_(-2), hi[:, None], lo[:, None]], dim=1).T.contiguous()
    else:
        PT = P.T  # (D, m) view: BLAS reads it transposed, no copy
        p_half = (0.5 * p_sq).to(torch.float32)[None, :]  # (1, m)
    extra = 0 if (space.trusted or m - 1 <= k) else 1  # one more score bounds the ones not returned
    chunk = max(1, min(rows.numel(), _CHUNK_BYTES // ((2 if space.lowp else 4) * max(1, m))))
    out_idx, out_dist, out_bound = [], [], []
    for start in range(0, rows.numel(), chunk):
        r = rows[start : start + chunk]
        Q = Y[r]  # (c, D)
        if space.lowp:
            ones = torch.ones(len(r), 2, dtype=torch.bfloat16, device=Y.device)
            S = torch.cat([Q.to(torch.bfloat16), ones], dim=1) @ PT  # (c, m) = ||p||^2 - 2 q.p
        else:
            S = torch.addmm(p_half, Q, PT, alpha=-1.0)  # (c, m) = ||p||^2 / 2 - q.p
        S[torch.arange(len(r), device=S.device), slot[r]] = math.inf  # not its own neighbour
        vals, top = torch.topk(S, k + extra, dim=1, largest=False, sorted=True)
        idx = pool[top[:, :k]]  # (c, k)
        exact, order = torch.sort(_exact_distances(X64, r, idx), dim=1)
        out_idx.append(idx.gather(1, order))
        out_dist.append(exact)
        if extra:
            q_norm = torch.linalg.vector_norm(Q.to(torch.float64), dim=1)
            score = vals[:, k].to(torch.float64) * (1.0 if space.lowp else 2.0)
            err = _score_error(q_norm, p_max, D, space.lowp)
            out_bound.append(q_norm.square() + score - err)
        else:
            out_bound.append(torch.full((len(r),), math.inf, dtype=torch.float64, device=Y.device))
    return torch.cat(out_idx), torch.cat(out_dist), torch.cat(out_bound)


def _score_error(q_norm: torch.Tensor, p_max: float, D: int, lowp: bool) -> torch.Tensor:
    """Rigorous bound on |computed - exact| squared distance ||q||^2 + (||p||^2 - 2 q.p).

    bf16: inputs rounded to bf16 (relative u each: 2u + u^2 per product, doubled by the factor -2), the
    hi + lo split of ||p||^2 (u^2), fp32 accumulation over D + 2 terms (gamma) and the output rounded to
    bf16 (u of |score| <= ||p||^2 + 2 ||q|| ||p||). fp32: accumulation, the rounding of ||p||^2 / 2 and of
    the output, doubled. Both add float32 rounding of the coordinates themselves, and 5% slack.
    """
    u32 = 2.0**-24
    gamma = (D + 2) * u32
    if lowp:
        u = _U_BF16
        cross = 2 * (2 * u + u * u) + 2 * gamma + 2 * u * (1 + gamma)
        square = u * u + gamma + u * (1 + gamma)
    else:
        cross = 2 * gamma + 4 * u32
        square = 4 * u32
    coords = 4 * u32  # q and p themselves are float32 roundings of the exact projection
    return 1.05 * ((cross + 2 * coords) * q_norm * p_max + (square + coords) * (q_norm.square() + p_max**2))


def _exact_distances(X64: torch.Tensor, rows: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """||x_row - x_idx|| in float64 by direct differences, in cache-sized blocks. (c, k)."""
    out = torch.empty(idx.shape, dtype=torch.float64, device=X64.device)
    for s in range(0, len(rows), _EXACT_ROWS):
        e = s + _EXACT_ROWS
        out[s:e] = torch.linalg.vector_norm(X64[rows[s:e], None, :] - X64[idx[s:e]], dim=2)
    return out


@functools.cache
def _fast_bf16(device: torch.device) -> bool:
    """bf16 GEMMs beat float32 on GPUs and on CPUs with AVX512-BF16 or AMX; elsewhere they are emulated."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _drop_duplicates(kept: torch.Tensor, rows: torch.Tensor, cand: torch.Tensor, dup: torch.Tensor) -> None:
    """For every duplicate pair whose points are both still kept, drop the one with the larger index."""
    if not bool(dup.any()):
        return
    i = rows[:, None].expand_as(cand)[dup]
    j = cand[dup]
    pairs = torch.stack([torch.minimum(i, j), torch.maximum(i, j)], dim=1).unique(dim=0).tolist()
    for lo, hi in pairs:  # sequential, so that a chain a~b~c keeps exactly one point
        if kept[lo] and kept[hi]:
            kept[hi] = False
