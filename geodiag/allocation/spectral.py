"""Spectral allocation rules: ranks from the pretrained weights' spectra, as a `geodiag analyze spectra` run
measures them (WeightWatcher's power-law alpha, its Marchenko-Pastur spike count, the stable rank). Heavy-tailed
self-regularisation reads a large alpha as a layer that learned little in pre-training, so the rules give it more
rank. Each is one `Rule`; this file and its import line in `allocation/__init__.py` are all a rule needs.

Each paper's own numbers (0.7, 2.5) are the rules' `constants`: the defaults, movable in the lab and by
`geodiag allocate --constant`.

- `alpha` (Adaptive-Rank-LoRA): score_l = 0.7 norm(alpha_l) + 0.3 (1 - norm(spikes_l)), norm the min-max
  normalisation over the allocated modules (0.5 where every module has the same value); the rank is linear in
  the score, r_l = rounding(r_min + score_l (r_max - r_min)).
- `alpha-share` (AlphaLoRA): share_l = alpha_l^beta / sum_k alpha_k^beta with beta = 2.5 (AlphaLoRA's), applied
  to LoRA's total rank: r_l = rounding(share_l L r) for L modules at reference rank r.
- `stable-rank` (SA-LoRA, SR-LoRA): share_l proportional to the stable rank ||W||_F^2 / ||W||_2^2, applied the
  same way.

Defaults r_min = max(1, r/2) and r_max = 2r (RaLoRA-Pro's clip); the budget scale multiplies both bounds
(`alpha`) or the total rank (the shares); every rank is at least 1 and at most min(d_in, d_out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from geodiag.allocation.presets import Settings, Vectors
from geodiag.allocation.registry import Constant, Rule, register_rule
from geodiag.allocation.rules import Allocation, ModuleShape, lora_params, rounded
from geodiag.errors import GeodiagError

ALPHA_WEIGHT = Constant("alpha_weight", 0.7, "Adaptive-Rank-LoRA's weight on norm(alpha) in the score; the spike "
                        "term gets the rest (0.3)", low=0.0, high=1.0)
BETA = Constant("beta", 2.5, "AlphaLoRA's exponent: share proportional to alpha^beta (0: equal shares)", low=0.0,
                high=20.0)


def alpha_score(settings: Settings, vectors: Vectors, shapes: Sequence[ModuleShape]) -> list[Allocation]:
    alpha = _normalised([vectors.alpha[s.name] for s in shapes])
    spikes = _normalised([vectors.spikes[s.name] for s in shapes])
    lo = settings.budget_scale * (settings.r_min if settings.r_min is not None else max(1, settings.r // 2))
    hi = settings.budget_scale * (settings.r_max if settings.r_max is not None else 2 * settings.r)
    w = settings.constant(ALPHA_WEIGHT.name)
    return [_allocation(s, rounded(lo + (w * a + (1 - w) * (1 - k)) * (hi - lo), settings.rank_rounding))
            for s, a, k in zip(shapes, alpha, spikes, strict=True)]


def alpha_share(settings: Settings, vectors: Vectors, shapes: Sequence[ModuleShape]) -> list[Allocation]:
    beta = settings.constant(BETA.name)
    return _shares(settings, {s.name: vectors.alpha[s.name] ** beta for s in shapes}, shapes)


def stable_rank_share(settings: Settings, vectors: Vectors, shapes: Sequence[ModuleShape]) -> list[Allocation]:
    return _shares(settings, {s.name: vectors.stable_rank[s.name] for s in shapes}, shapes)


def _shares(settings: Settings, weight: Mapping[str, float], shapes: Sequence[ModuleShape]) -> list[Allocation]:
    """r_l = rounding(weight_l / sum weight x L r x budget scale)."""
    total = sum(weight.values())
    rank_total = settings.budget_scale * settings.r * len(shapes)
    return [_allocation(s, rounded(rank_total * weight[s.name] / total, settings.rank_rounding)) for s in shapes]


def _allocation(s: ModuleShape, rank: int) -> Allocation:
    rank = min(max(rank, 1), min(s.d_in, s.d_out))
    return Allocation(s.name, rank, 1, s.layer, s.module_type, lora_params(s, rank))


def _normalised(values: list[float]) -> list[float]:
    lo, hi = min(values), max(values)
    return [0.5] * len(values) if hi == lo else [(v - lo) / (hi - lo) for v in values]


def _usable(name: str, value: float | None) -> bool:
    """A finite value, positive (a spike count may be zero)."""
    return value is not None and math.isfinite(value) and (value >= 0 if name == "spikes" else value > 0)


def _needs(rule: str, *fields: str):
    def check(vectors: Vectors, shapes: Sequence[ModuleShape]) -> None:
        for name in fields:
            have = getattr(vectors, name)
            bad = [s.name for s in shapes if not _usable(name, have.get(s.name))]
            if bad:
                raise GeodiagError(f"{rule} allocates from each module's {name.replace('_', ' ')}, and the analysis "
                                   f"has no usable value for {bad[0]}"
                                   f"{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}: pick a `geodiag "
                                   "analyze spectra` run over the same modules.")

    return check


register_rule(Rule("alpha", "spectra", alpha_score, "Adaptive-Rank-LoRA: rank linear in 0.7 norm(alpha) + 0.3 "
                   "(1 - norm(spikes)) between r_min and r_max", _needs("alpha", "alpha", "spikes"),
                   constants=(ALPHA_WEIGHT,)))
register_rule(Rule("alpha-share", "spectra", alpha_share, "AlphaLoRA: each module's share of LoRA's total rank "
                   "proportional to alpha^2.5", _needs("alpha-share", "alpha"), constants=(BETA,)))
register_rule(Rule("stable-rank", "spectra", stable_rank_share, "SA-LoRA / SR-LoRA: each module's share of "
                   "LoRA's total rank proportional to its stable rank", _needs("stable-rank", "stable_rank")))
