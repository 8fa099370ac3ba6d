"""Participation ratio (ManifoldLoRA Eq. 5) and probe orthonormality."""

import numpy as np
import pytest
import torch
from helpers import random_rotation

from geodiag.metrics import orthonormality_error, participation_ratio


def test_isotropic_gaussian_has_pr_close_to_h(rng):
    h = 64
    assert abs(participation_ratio(rng.standard_normal((40_000, h))) - h) <= 0.05 * h


def test_known_covariance_spectrum_gives_the_exact_formula(rng):
    n, h = 500, 12
    lam = np.linspace(0.5, 6.0, h) ** 2
    # rows whose centred sample covariance is exactly R diag(lam) R^T
    Z = rng.standard_normal((n, h))
    Z -= Z.mean(axis=0)
    Q, _ = np.linalg.qr(Z)  # orthonormal, centred columns
    H = np.sqrt(n - 1) * Q * np.sqrt(lam) @ random_rotation(rng, h).T + 3.0
    expected = lam.sum() ** 2 / (lam**2).sum()
    assert participation_ratio(H) == pytest.approx(expected, rel=1e-10)


def test_fewer_rows_than_dims_matches_explicit_covariance_in_float64(rng):
    n, h = 40, 300
    H = rng.standard_normal((n, 7)) @ rng.standard_normal((7, h)) + 0.1 * rng.standard_normal((n, h))
    Hc = H - H.mean(axis=0)
    lam = np.linalg.eigvalsh(Hc.T @ Hc / (n - 1))
    expected = lam.sum() ** 2 / ((lam**2).sum() + 1e-12)
    got = participation_ratio(H.astype(np.float32))
    assert got == pytest.approx(expected, rel=1e-5)
    assert participation_ratio(H) == pytest.approx(expected, rel=1e-12)
    assert got <= n - 1


def test_pr_errors(rng):
    with pytest.raises(ValueError, match="at least 2 rows"):
        participation_ratio(np.ones((1, 5)))
    with pytest.raises(ValueError, match="zero variance"):
        participation_ratio(np.ones((10, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        participation_ratio(np.array([[1.0, np.inf], [0.0, 1.0]]))


def test_orthonormality_error(rng):
    Q, _ = torch.linalg.qr(torch.randn(200, 16, dtype=torch.float64))
    assert orthonormality_error(Q) < 1e-12
    assert orthonormality_error(Q.float()) < 1e-5
    # scaling one column by (1 + e) changes one diagonal entry of Q^T Q by 2e + e^2
    Qs = Q.clone()
    Qs[:, 3] *= 1.1
    assert orthonormality_error(Qs) == pytest.approx(0.21, rel=1e-9)
