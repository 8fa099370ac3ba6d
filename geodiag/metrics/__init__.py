"""Pure geometry estimators: numpy or torch arrays in, numbers out. Each cites its paper and equation.

Nothing here knows about models, stores or plots; collectors call these, and tests check them against
known answers and dense references.
"""

from geodiag.metrics.decomposition import Decomposition, dora_decomposition
from geodiag.metrics.geometry import orthonormality_error, participation_ratio, principal_angles, random_subspace_angle
from geodiag.metrics.gradient import empirical_fisher, fisher_term, importance
from geodiag.metrics.intrinsic_dim import TwoNNResult, twonn
from geodiag.metrics.intruders import base_singular_vectors, intruder_count, top_singular_vectors
from geodiag.metrics.spectrum import (
    PowerLawFit,
    effective_rank,
    factor_spectrum,
    factor_svd,
    frobenius_norm,
    nuclear_norm,
    powerlaw_exponent,
    singular_values,
    stable_rank,
    threshold_rank,
)

__all__ = [
    "Decomposition",
    "PowerLawFit",
    "TwoNNResult",
    "base_singular_vectors",
    "dora_decomposition",
    "effective_rank",
    "empirical_fisher",
    "factor_spectrum",
    "factor_svd",
    "fisher_term",
    "frobenius_norm",
    "importance",
    "intruder_count",
    "nuclear_norm",
    "orthonormality_error",
    "participation_ratio",
    "powerlaw_exponent",
    "principal_angles",
    "random_subspace_angle",
    "singular_values",
    "stable_rank",
    "threshold_rank",
    "top_singular_vectors",
    "twonn",
]
