"""The Delta W spectrum of every adapter, from its factors (never the dense matrix), and its gates or
allocated rank where the method has them (ManifoldLoRA §5.4, Fig. 1 and 5); DoRA's magnitude and direction
change where the method has a magnitude vector (Liu et al. 2024 §2.2)."""

from __future__ import annotations

import math

import numpy as np
import torch

from geodiag.methods.base import Adapted, AdapterView
from geodiag.metrics import (
    dora_decomposition,
    effective_rank,
    factor_spectrum,
    frobenius_norm,
    nuclear_norm,
    powerlaw_exponent,
    stable_rank,
)
from geodiag.names import (
    ADALORA_RANK,
    DEAD_GATE,
    DORA_DIRECTION,
    DORA_MAGNITUDE,
    FROBENIUS,
    GATE_DEAD,
    GATE_EFFECTIVE_RANK,
    GATE_VALUE,
    NUCLEAR,
    POWERLAW_ALPHA,
    POWERLAW_N,
    POWERLAW_R2,
    SINGULAR_VALUE,
    SPECTRUM_ERANK,
    STABLE_RANK,
)
from geodiag.records import row


def adapter_rows(adapted: Adapted, step: int, wall: float) -> list[dict]:
    """Delta W spectrum metrics for every adapter, gate/rank metrics where the method has them, and the
    method's run-level scalars."""
    views = [v.whole() for v in adapted.adapters()]
    rows = [r for v in views for r in view_rows(v, step, wall)]
    magnitudes = adapted.magnitudes()
    rows += [r for v in views if v.module in magnitudes for r in decomposition_rows(v, *magnitudes[v.module], step,
                                                                                    wall)]
    rows += [row(step, wall, name, value) for name, value in adapted.extra_state().items()]
    return rows


def decomposition_rows(v: AdapterView, W: torch.Tensor, magnitude: torch.Tensor, step: int, wall: float) -> list[dict]:
    """DoRA's magnitude and direction change of one module (Liu et al. 2024 §2.2), from W and the factors."""
    d = dora_decomposition(W, v.B, v.A, v.scaling, magnitude)
    where = {"module": v.module, "layer": v.layer, "module_type": v.module_type}
    return [row(step, wall, DORA_MAGNITUDE, d.magnitude_change, **where),
            row(step, wall, DORA_DIRECTION, d.direction_change, **where)]


def view_rows(v: AdapterView, step: int, wall: float) -> list[dict]:
    """Spectrum, then gates (ManifoldLoRA) or allocated rank (AdaLoRA) of one adapter."""
    where = {"module": v.module, "layer": v.layer, "module_type": v.module_type}
    s = np.asarray(factor_spectrum(v.B, v.A, gates=v.gates, scaling=v.scaling).cpu())
    rows = [row(step, wall, SINGULAR_VALUE, x, idx=k, **where) for k, x in enumerate(s)]
    scalars = {NUCLEAR: nuclear_norm(s), FROBENIUS: frobenius_norm(s)}
    if s.size and s[0] > 0:  # a zero update (B = 0 at step 0) has no shape to describe
        fit = powerlaw_exponent(s)
        scalars |= {STABLE_RANK: stable_rank(s), SPECTRUM_ERANK: effective_rank(s), POWERLAW_N: fit.n}
        if not math.isnan(fit.alpha):
            scalars |= {POWERLAW_ALPHA: fit.alpha, POWERLAW_R2: fit.r2}
    if v.rank is not None:
        scalars[ADALORA_RANK] = v.rank
    elif v.gates is not None:
        g = v.gates.detach().cpu().to(torch.float64)
        rows += [row(step, wall, GATE_VALUE, x, idx=k, **where) for k, x in enumerate(g.tolist())]
        scalars |= {GATE_EFFECTIVE_RANK: float(g.sum()), GATE_DEAD: int((g < DEAD_GATE).sum())}
    return rows + [row(step, wall, name, value, **where) for name, value in scalars.items()]
