"""Estimator benchmarks: ours against the obvious reference, timed side by side in the same process.

Prints one line per benchmark with the speed ratio and the accuracy against the reference; `python -m
bench` writes the numbers to bench/results/metrics.json. Goals (issue 2): spectra >= 1000x at rel. error <= 1e-5,
TwoNN >= 5x within 2% of scikit-dimension, erank >= 2x at 1e-4.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.linalg
import skdim
import torch

from geodiag.metrics import effective_rank, factor_spectrum, twonn

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Minimum wall time over `repeats` calls (after one warm-up), and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_spectra(n_adapters: int = 128, d: int = 4096, r: int = 16, n_dense: int = 2) -> dict:
    """Delta W spectra of rank-16 4096x4096 adapters: factors (QR + r x r SVD) vs dense svdvals."""
    rng = np.random.default_rng(0)
    bound = 1.0 / np.sqrt(d)
    adapters = [(rng.normal(0, 0.02, (d, r)).astype(np.float32),  # trained B: no longer zero
                 rng.uniform(-bound, bound, (r, d)).astype(np.float32)) for _ in range(n_adapters)]
    scaling = 2.0  # alpha / r = 32 / 16
    t0 = time.perf_counter()
    ours = [factor_spectrum(B, A, scaling=scaling) for B, A in adapters]
    t_ours = (time.perf_counter() - t0) / n_adapters
    t_dense, rel_err = [], []
    for (B, A), s in zip(adapters[:n_dense], ours[:n_dense], strict=True):
        t0 = time.perf_counter()
        dense = scipy.linalg.svdvals(scaling * (B.astype(np.float64) @ A.astype(np.float64)), check_finite=False)
        t_dense.append(time.perf_counter() - t0)
        rel_err.append(float(np.max(np.abs(s[:r] - dense[:r]) / dense[:r])))
    per_dense = float(np.mean(t_dense))
    return {"n_adapters": n_adapters, "shape": [d, d], "rank": r, "ours_s_per_matrix": t_ours,
            "dense_s_per_matrix": per_dense, "dense_matrices_timed": n_dense,
            "ours_total_s": t_ours * n_adapters, "dense_total_s_extrapolated": per_dense * n_adapters,
            "speedup": per_dense / t_ours, "max_rel_error": max(rel_err), "goal_speedup": 1000,
            "goal_rel_error": 1e-5}


def embedded_gaussian(n: int, D: int, d: int, width: int, seed: int = 0) -> np.ndarray:
    """A d-dim Gaussian through a random tanh layer of `width` units, rotated into R^D (float32)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    H = np.tanh(Z @ rng.standard_normal((d, width)) / np.sqrt(d))  # (n, width)
    W = rng.standard_normal((width, D)) / np.sqrt(width)
    if width == D:
        W = np.linalg.qr(W)[0]
    return (H @ W).astype(np.float32)


def bench_twonn(n: int = 10_000, D: int = 768, d: int = 10, repeats: int = 3) -> dict:
    """TwoNN on n = 10k points in R^768: ours vs scikit-dimension's TwoNN (its D > 25 path)."""
    out = {}
    for label, width in (("full_rank_embedding", D), ("rank_64_embedding", 64)):
        X = embedded_gaussian(n, D, d, width)
        t_ours, ours = best_of(lambda X=X: twonn(X), repeats)
        t_ref, ref = best_of(lambda X=X: skdim.id.TwoNN().fit(X).dimension_, max(1, repeats - 1))
        out[label] = {"n": n, "D": D, "true_id": d, "ours_s": t_ours, "skdim_s": t_ref,
                      "speedup": t_ref / t_ours, "ours_id": ours.dimension, "ours_error": ours.error,
                      "skdim_id": float(ref), "rel_diff": abs(ours.dimension - ref) / ref,
                      "goal_speedup": 5, "goal_rel_diff": 0.02}
    return out


def gradient_like(n: int = 2048, tokens: int = 4096, seed: int = 0) -> torch.Tensor:
    """sum_t delta_t x_t^T over 4096 tokens with anisotropic inputs: an accumulated weight gradient."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, n, generator=g) * torch.arange(1, n + 1).float().pow(-0.5)  # (T, d_in)
    delta = torch.randn(tokens, n, generator=g) * torch.arange(1, n + 1).float().pow(-0.3)  # (T, d_out)
    return delta.T @ x  # (d_out, d_in) float32


def bench_erank(repeats: int = 3) -> dict:
    """Entropy effective rank of a 2048x2048 gradient-like matrix: Gram route vs torch.linalg.svdvals."""
    G = gradient_like()

    def erank_of(s: torch.Tensor) -> float:
        return effective_rank(s.to(torch.float64))

    t_ours, ours = best_of(lambda: effective_rank(G), repeats)
    t_f32, ref32 = best_of(lambda: erank_of(torch.linalg.svdvals(G)), repeats)
    G64 = G.double()
    t_f64, ref64 = best_of(lambda: erank_of(torch.linalg.svdvals(G64)), repeats)
    return {"shape": list(G.shape), "ours_s": t_ours, "svdvals_f32_s": t_f32, "svdvals_f64_s": t_f64,
            "speedup_vs_f32": t_f32 / t_ours, "speedup_vs_f64": t_f64 / t_ours, "erank": ours,
            "rel_diff_vs_f64": abs(ours - ref64) / ref64, "rel_diff_f32_vs_f64": abs(ref32 - ref64) / ref64,
            "goal_speedup": 2, "goal_rel_diff": 1e-4}


def run(quick: bool = False) -> dict:
    spectra = bench_spectra(n_adapters=16 if quick else 128, n_dense=1 if quick else 2)
    print(f"dW spectra  {spectra['n_adapters']} x rank-{spectra['rank']} {spectra['shape'][0]}x{spectra['shape'][1]}: "
          f"factors {spectra['ours_s_per_matrix'] * 1e3:.2f} ms vs dense svdvals {spectra['dense_s_per_matrix']:.1f} s "
          f"per matrix -> {spectra['speedup']:,.0f}x (goal >= 1000x), max rel. error {spectra['max_rel_error']:.1e}")
    id_res = bench_twonn(repeats=1 if quick else 3)
    for label, r in id_res.items():
        print(f"TwoNN {label:<20} n={r['n']} D={r['D']}: ours {r['ours_s']:.2f} s vs skdim {r['skdim_s']:.2f} s "
              f"-> {r['speedup']:.1f}x (goal >= 5x); ID {r['ours_id']:.3f} +- {r['ours_error']:.3f} vs "
              f"{r['skdim_id']:.3f} (rel. diff {r['rel_diff']:.1e}, goal <= 2%)")
    er = bench_erank(repeats=1 if quick else 3)
    print(f"erank 2048x2048: Gram route {er['ours_s']:.3f} s vs svdvals f32 {er['svdvals_f32_s']:.3f} s "
          f"({er['speedup_vs_f32']:.2f}x, goal >= 2x) and f64 {er['svdvals_f64_s']:.3f} s "
          f"({er['speedup_vs_f64']:.2f}x); rel. diff vs f64 {er['rel_diff_vs_f64']:.1e} "
          f"(svdvals f32 itself: {er['rel_diff_f32_vs_f64']:.1e})")
    return {"spectra": spectra, "twonn": id_res, "erank": er}
