"""The empirical spectral density (ESD) of a pretrained weight matrix, as heavy-tailed self-regularisation reads it.

Martin & Mahoney (2021, "Implicit Self-Regularization in Deep Neural Networks", JMLR 22) fit the tail of the
eigenvalues of W^T W with a power law; its exponent alpha (about 2-4 for well-trained layers, larger for layers
that learned less) is what AlphaLoRA and Adaptive-Rank-LoRA allocate rank by. WeightWatcher 0.7.7 is the reference
implementation; these functions reproduce its default fits exactly, in vectorised form:

- `powerlaw_tail`: the continuous power-law maximum-likelihood exponent at every candidate xmin, the xmin with the
  smallest Kolmogorov-Smirnov distance kept (Clauset, Shalizi & Newman 2009; WeightWatcher's `WWFit`, whose loop
  over xmin is O(n^2) Python-level work, here one masked array expression);
- `mp_bulk`: WeightWatcher's Marchenko-Pastur fit (`mp_fit`): the eigenvalues rescaled to mean 1, a linear-kernel
  density estimate (bandwidth 0.1) compared with the MP density (the quarter circle for square W) over a grid of
  sigma polished by Nelder-Mead (`scipy.optimize.brute`, as WeightWatcher calls it), and the spikes counted above
  the bulk edge plus its Tracy-Widom margin. WeightWatcher refits the density estimate at every sigma; it does not
  depend on sigma, so it is computed once here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from geodiag.metrics._arrays import ArrayLike, as_tensor
from geodiag.metrics.spectrum import singular_values

EVALS_THRESHOLD = 1e-5  # eigenvalues at or below this are numerical zeros to the power-law fit (WeightWatcher's)
MIN_TAIL = 20  # WeightWatcher switches to a different small-sample estimator below this; we report NaN instead
MP_BANDWIDTH = 0.1  # WeightWatcher's kernel bandwidth for the MP fit
_MP_GRID_POINTS = 1000  # points the density is compared on (WeightWatcher's)
_MP_DENSITY_FLOOR = 0.01  # points whose estimated density is below this are left out of the residual
_ROWS_PER_BLOCK = 512  # candidate xmins per block of the KS computation: memory stays O(512 n)


def esd(W: ArrayLike) -> np.ndarray:
    """Eigenvalues of W^T W (the squared singular values), ascending, float64: min(d_out, d_in) of them."""
    s = singular_values(as_tensor(W, "W", ndim=(2,)))  # descending, float64
    return np.ascontiguousarray((s.numpy() ** 2)[::-1])


@dataclass(frozen=True)
class PowerLawTail:
    """p(lambda) ~ lambda^-alpha for lambda >= xmin, fitted to an ESD's tail."""

    alpha: float
    xmin: float
    ks_distance: float  # the Kolmogorov-Smirnov distance at the chosen xmin
    sigma: float  # (alpha - 1) / sqrt(n_tail), the MLE's standard error
    n_tail: int  # eigenvalues at or above xmin
    reason: str | None = None  # why alpha is NaN, if it is


def powerlaw_tail(evals: ArrayLike, *, threshold: float = EVALS_THRESHOLD) -> PowerLawTail:
    """Continuous power-law MLE at every candidate xmin (each eigenvalue above `threshold` but the largest),
    alpha(xmin) = 1 + n / sum_j log(lambda_j / xmin); the xmin whose fitted CDF 1 - (lambda / xmin)^(1 - alpha)
    is closest to the empirical CDF j / n in KS distance wins (the first on ties), as WeightWatcher's default fit.
    Fewer than 20 eigenvalues above the threshold give NaN with a reason."""
    x = np.sort(as_tensor(evals, "evals", ndim=(1,)).to(torch.float64).numpy())
    x = x[x > threshold]
    n = x.size
    if n < MIN_TAIL:
        return PowerLawTail(math.nan, math.nan, math.nan, math.nan, n,
                            reason=f"only {n} eigenvalue(s) above {threshold:g}; the tail fit needs {MIN_TAIL}")
    logx = np.log(x)
    tail = np.cumsum(logx[::-1])[::-1][:-1]  # (n-1,) sum_{j>=i} log x_j for each candidate i
    count = n - np.arange(n - 1)  # (n-1,) eigenvalues at or above candidate i
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = 1.0 + count / (tail - count * logx[:-1])  # (n-1,)
    ks = np.ones(n - 1)
    for start in range(0, n - 1, _ROWS_PER_BLOCK):
        rows = np.arange(start, min(start + _ROWS_PER_BLOCK, n - 1))
        ks[rows] = _ks_rows(logx, rows, alphas[rows], count[rows])
    best = int(np.argmin(ks))
    alpha = float(alphas[best])
    return PowerLawTail(alpha, float(x[best]), float(ks[best]), (alpha - 1.0) / math.sqrt(count[best]),
                        int(count[best]))


def _ks_rows(logx: np.ndarray, rows: np.ndarray, alphas: np.ndarray, count: np.ndarray) -> np.ndarray:
    """KS distance of each candidate xmin (row) over the eigenvalues at or above it; 1 where alpha <= 1 (no
    normalisable power law), as WeightWatcher leaves it."""
    j = np.arange(logx.size)
    above = j[None, :] >= rows[:, None]  # (b, n) the tail of each candidate
    rank = (j[None, :] - rows[:, None]) / count[:, None]  # (b, n) empirical CDF k / n_tail along the tail
    with np.errstate(over="ignore", invalid="ignore"):
        fitted = 1.0 - np.exp((1.0 - alphas[:, None]) * (logx[None, :] - logx[rows][:, None]))  # (b, n)
    gap = np.where(above, np.abs(fitted - rank), 0.0)
    return np.where(alphas > 1.0, gap.max(axis=1), 1.0)


@dataclass(frozen=True)
class MPBulk:
    """The Marchenko-Pastur bulk fitted to an ESD rescaled to mean 1, and the spikes above it."""

    sigma: float  # the fitted MP scale, in the rescaled units
    bulk_max: float  # lambda_+ = (sigma (1 + 1/sqrt(Q)))^2, in the eigenvalues' own units
    edge: float  # lambda_+ plus its Tracy-Widom margin (own units): eigenvalues above it are spikes
    spikes: int
    scale: float  # the rescaling factor applied to the eigenvalues before the fit (n / sum lambda)


def mp_bulk(evals: ArrayLike, n_rows: int, n_cols: int, *, bandwidth: float = MP_BANDWIDTH) -> MPBulk:
    """WeightWatcher's MP fit of the ESD of an n_rows x n_cols matrix (its `mp_fit` with rescaling on)."""
    from scipy import optimize

    lam = np.asarray(as_tensor(evals, "evals", ndim=(1,)).to(torch.float64).numpy())
    N, M = max(n_rows, n_cols), min(n_rows, n_cols)
    Q = N / M
    if not lam.size or float(lam.sum()) <= 0.0:
        raise ValueError("mp_bulk: the eigenvalues are all zero; a zero matrix has no bulk to fit.")
    scale = lam.size / float(lam.sum())
    lam = lam * scale  # mean 1
    fit = np.sqrt(lam) if Q == 1 else lam  # the quarter-circle law is a law of singular values
    xs, density = _linear_kde(fit, bandwidth)
    top = math.sqrt(float(lam.max()) / (1 + 1 / math.sqrt(Q)) ** 2)  # the sigma whose edge is the largest value
    grid = (slice(0.05 * top, 2.0 * top, 0.01 * top),)
    sigma = float(optimize.brute(_mp_residual, grid, args=(xs, density, Q), full_output=True)[0][0])
    bulk_max = (sigma * (1 + 1 / math.sqrt(Q))) ** 2
    edge = bulk_max + math.sqrt(bulk_max ** (2 / 3) * M ** (-2 / 3) / math.sqrt(Q))
    return MPBulk(sigma, bulk_max / scale, edge / scale, int((lam > edge).sum()), scale)


def _linear_kde(values: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """The density estimate with the linear (triangular) kernel, (1 / nh) sum_i max(0, 1 - |x - v_i| / h), on
    1000 points from 0 to max + 0.5, keeping the points where it exceeds 0.01 (WeightWatcher's grid and cut)."""
    xs = np.linspace(0.0, float(values.max()) + 0.5, _MP_GRID_POINTS)
    density = np.zeros_like(xs)
    for chunk in np.array_split(values, max(1, values.size // 256)):  # (1000, <=256) at a time
        density += np.clip(1.0 - np.abs(xs[:, None] - chunk[None, :]) / h, 0.0, None).sum(axis=1)
    density /= values.size * h
    keep = density > _MP_DENSITY_FLOOR
    return xs[keep], density[keep]


def _mp_residual(p: np.ndarray, xs: np.ndarray, density: np.ndarray, Q: float) -> float:
    """Sum of squared differences between the MP (or quarter-circle) density at sigma and the estimate; 1000 per
    point when the bulk edge misses the estimate's peak or passes its last point (WeightWatcher's rule)."""
    sigma = float(np.asarray(p).reshape(-1)[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        if Q == 1:
            mp = np.nan_to_num(np.sqrt(4 - xs**2) / (np.pi * sigma * sigma))
        else:
            b, a = (sigma * (1 + 1 / math.sqrt(Q))) ** 2, (sigma * (1 - 1 / math.sqrt(Q))) ** 2
            peak = xs[np.argmax(density)]
            if b < peak or b > xs.max() or a > peak:
                return 1000.0**2 * xs.size
            mp = np.nan_to_num(np.sqrt((b - xs) * (xs - a)) * Q / (2 * np.pi * sigma * sigma * xs))
    return float(((mp - density) ** 2).sum())
