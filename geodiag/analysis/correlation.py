"""GID vs empirical Fisher (RaLoRA Table 8): do the two layer-importance signals agree?"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def gid_fisher_correlations(gid: Sequence[float], fisher: Sequence[float],
                            groups: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per group (module type) and over all modules ("all"): Pearson on log F, Pearson on 1/F, Spearman.

    Groups with fewer than 3 modules, or with a constant variable, give NaN: a correlation of two points
    says nothing."""
    gid, fisher, groups = np.asarray(gid, float), np.asarray(fisher, float), np.asarray(groups)
    out = {}
    for g in [*sorted(set(groups.tolist())), "all"]:
        sel = np.ones(len(gid), bool) if g == "all" else groups == g
        x, f = gid[sel], fisher[sel]
        ok = len(x) >= 3 and np.ptp(x) > 0 and np.ptp(f) > 0 and (f > 0).all()
        out[g] = {"pearson_log": _pearson(x, np.log(f)) if ok else math.nan,
                  "pearson_inv": _pearson(x, 1.0 / f) if ok else math.nan,
                  "spearman": float(stats.spearmanr(x, f).statistic) if ok else math.nan,
                  "n": float(len(x))}
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(stats.pearsonr(x, y).statistic)
