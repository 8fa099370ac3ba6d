"""The statistics the Results page states, each with its n: mean and standard error per method over seeds, each
method's paired difference to a reference over shared seeds with a Student-t 95% interval, the Pareto front of
parameters against accuracy, and Spearman's rho with a Fisher-z interval. Pure numpy/scipy on DataFrames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95


def per_method(df: pd.DataFrame, value: str, by: str = "label") -> pd.DataFrame:
    """n, mean and standard error (sd / sqrt(n), ddof 1; NaN for n = 1) of `value` per method, and its mean
    parameter count."""
    rows = []
    for label, g in df.groupby(by, sort=False):
        x = g[value].dropna().to_numpy(float)
        se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan
        rows.append({by: label, "n": len(x), "mean": float(x.mean()) if len(x) else math.nan, "se": se,
                     "params": float(g["params"].mean())})
    return pd.DataFrame(rows, columns=[by, "n", "mean", "se", "params"])


def t_interval(d: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean of d; NaN when there are fewer than 2 values."""
    if len(d) < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean() - half), float(d.mean() + half)


def paired_differences(df: pd.DataFrame, value: str, reference: str = "lora", by: str = "label") -> pd.DataFrame:
    """For every method but the reference: value(method, seed) - value(reference, seed) over the seeds both
    have; n pairs, the mean difference and its t interval."""
    ref = df[df[by] == reference].set_index("seed")[value]
    rows = []
    for label, g in df[df[by] != reference].groupby(by, sort=False):
        mine = g.set_index("seed")[value]
        seeds = sorted(set(mine.dropna().index) & set(ref.dropna().index))
        d = np.array([mine[s] - ref[s] for s in seeds], float)
        lo, hi = t_interval(d)
        rows.append({by: label, "n_pairs": len(d), "diff": float(d.mean()) if len(d) else math.nan, "lo": lo,
                     "hi": hi})
    return pd.DataFrame(rows, columns=[by, "n_pairs", "diff", "lo", "hi"])


def pareto_front(params: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask of the points no other point dominates (no more parameters and no lower score, one strictly)."""
    params, score = np.asarray(params, float), np.asarray(score, float)
    keep = np.ones(len(params), bool)
    for i in range(len(params)):
        better = (params <= params[i]) & (score >= score[i]) & ((params < params[i]) | (score > score[i]))
        keep[i] = not better.any()
    return keep


def spearman(x, y, level: float = LEVEL) -> dict:
    """Spearman's rho, n, and a Fisher-z interval with Bonett & Wright's (2000) variance (1 + rho^2/2) / (n - 3);
    NaN interval for n < 4, and NaN rho for n < 3 or a constant input."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, n = x[ok], y[ok], int(ok.sum())
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": math.nan, "lo": math.nan, "hi": math.nan, "n": n}
    rho = float(stats.spearmanr(x, y).statistic)
    if n < 4 or abs(rho) == 1:
        return {"rho": rho, "lo": math.nan, "hi": math.nan, "n": n}
    half = stats.norm.ppf(0.5 + level / 2) * math.sqrt((1 + rho**2 / 2) / (n - 3))
    z = math.atanh(rho)
    return {"rho": rho, "lo": math.tanh(z - half), "hi": math.tanh(z + half), "n": n}
