"""Spectral estimators: effective rank, threshold rank, factor spectra, stable rank, norms, power law."""

import math

import numpy as np
import pytest
import torch

from geodiag.metrics import (
    effective_rank,
    factor_spectrum,
    frobenius_norm,
    nuclear_norm,
    powerlaw_exponent,
    singular_values,
    stable_rank,
    threshold_rank,
)


def with_spectrum(rng, s, shape):
    m, n = shape
    U, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    V, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return (U * s) @ V.T


def test_uniform_spectrum_of_rank_k_has_erank_k(rng):
    assert effective_rank(np.ones(7)) == pytest.approx(7.0, rel=1e-12)
    M = with_spectrum(rng, np.full(5, 2.5), (40, 30))
    assert effective_rank(M) == pytest.approx(5.0, rel=1e-9)


def test_single_nonzero_singular_value_has_erank_one(rng):
    assert effective_rank(np.array([3.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(np.outer(rng.standard_normal(20), rng.standard_normal(9))) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("shape", [(30, 50), (300, 280), (600, 260)])
def test_matrix_input_equals_singular_value_input(rng, shape):
    s = np.sort(rng.random(min(shape)) ** 3)[::-1] * 10
    M = with_spectrum(rng, s, shape)
    # the Gram route resolves sigma_i to ~sqrt(eps64) sigma_1: 1e-7 on erank is its documented precision
    assert effective_rank(M) == pytest.approx(effective_rank(s), rel=1e-7)
    assert effective_rank(M.astype(np.float32)) == pytest.approx(effective_rank(s), rel=1e-5)


def test_gram_and_svd_routes_agree(rng):
    M = torch.randn(300, 520, dtype=torch.float64) @ torch.diag(torch.rand(520, dtype=torch.float64))
    ref = torch.linalg.svdvals(M)
    torch.testing.assert_close(singular_values(M, method="gram"), ref, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(singular_values(M, method="svd"), ref)


def test_rank_k_matrix_has_erank_at_most_k(rng):
    M = rng.standard_normal((60, 4)) @ rng.standard_normal((4, 80))
    e = effective_rank(M)
    assert 1.0 <= e <= 4.0 + 1e-6


def test_all_zero_input_is_nan_with_a_warning():
    with pytest.warns(RuntimeWarning, match="all singular values are zero"):
        assert math.isnan(effective_rank(np.zeros((4, 4))))
    with pytest.warns(RuntimeWarning):
        assert math.isnan(stable_rank(np.zeros(3)))


def test_threshold_rank_counts_values_above_eps():
    s = np.array([2.0, 0.5, 1e-2, 1e-4, 1e-6, 0.0])
    assert [threshold_rank(s, e) for e in (1e-1, 1e-3, 1e-5)] == [2, 3, 4]
    assert threshold_rank(s, 0.1, relative=True) == 2  # 0.1 * 2.0 = 0.2


def dense_update(B, A, gates=None, scaling=1.0):
    g = np.ones(B.shape[1]) if gates is None else gates
    return scaling * (B * g) @ A


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_factor_spectrum_matches_dense_svd(rng, dtype):
    d_out, d_in, r = 120, 90, 11
    B, A = rng.standard_normal((d_out, r)), rng.standard_normal((r, d_in))
    g = rng.random(r)
    B, A, g = B.astype(dtype), A.astype(dtype), g.astype(dtype)
    got = factor_spectrum(B, A, gates=g, scaling=0.37)
    ref = np.linalg.svd(dense_update(B.astype(np.float64), A.astype(np.float64), g.astype(np.float64), 0.37),
                        compute_uv=False)[:r]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert isinstance(got, np.ndarray)
    assert isinstance(factor_spectrum(torch.as_tensor(B), torch.as_tensor(A)), torch.Tensor)


def test_factor_spectrum_rank_larger_than_a_side(rng):
    B, A = rng.standard_normal((6, 10)), rng.standard_normal((10, 40))
    got = factor_spectrum(B, A)
    ref = np.linalg.svd(B @ A, compute_uv=False)
    np.testing.assert_allclose(got[: len(ref)], ref, rtol=1e-6)


def block_diag(blocks):
    rows = sum(b.shape[0] for b in blocks)
    cols = sum(b.shape[1] for b in blocks)
    out = np.zeros((rows, cols))
    i = j = 0
    for b in blocks:
        out[i : i + b.shape[0], j : j + b.shape[1]] = b
        i, j = i + b.shape[0], j + b.shape[1]
    return out


def test_factor_spectrum_of_block_diagonal_updates(rng):
    n, r, d_out, d_in = 4, 3, 64, 48
    Bs = rng.standard_normal((n, d_out // n, r))
    As = rng.standard_normal((n, r, d_in // n))
    g = rng.random(n * r)
    B_bd, A_bd = block_diag(list(Bs)), block_diag(list(As))
    ref = np.linalg.svd(dense_update(B_bd, A_bd, g, 2.0), compute_uv=False)[: n * r]
    np.testing.assert_allclose(factor_spectrum(Bs, As, gates=g, scaling=2.0), ref, rtol=1e-6)
    np.testing.assert_allclose(factor_spectrum(B_bd, A_bd, gates=g, scaling=2.0, blocks=n), ref, rtol=1e-6)
    # the block spectrum is not the spectrum of the same factors read as one dense low-rank product
    assert not np.allclose(factor_spectrum(Bs[0], As[0]), ref[:r])


def test_factor_spectrum_errors(rng):
    B, A = rng.standard_normal((8, 4)), rng.standard_normal((4, 6))
    with pytest.raises(ValueError, match="B's columns must equal A's rows"):
        factor_spectrum(B, A.T)
    with pytest.raises(ValueError, match="does not divide"):
        factor_spectrum(B, A, blocks=3)
    with pytest.raises(ValueError, match="outside its 2 diagonal blocks"):
        factor_spectrum(B, A, blocks=2)
    with pytest.raises(ValueError, match="gates has 3 values"):
        factor_spectrum(B, A, gates=np.ones(3))
    B[0, 0] = np.nan
    with pytest.raises(ValueError, match="B contains 1 non-finite"):
        factor_spectrum(B, A)


def test_stable_rank_and_norms():
    s = np.array([3.0, 4.0, 0.0])
    assert nuclear_norm(s) == 7.0
    assert frobenius_norm(s) == 5.0
    assert stable_rank(s) == pytest.approx(25 / 16)
    assert stable_rank(np.ones(6)) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="non-negative"):
        nuclear_norm(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="1-D"):
        stable_rank(np.eye(3))


def test_power_law_exponent_recovers_the_slope():
    k = np.arange(1, 201)
    fit = powerlaw_exponent(k**-1.5)
    assert fit.alpha == pytest.approx(-1.5, abs=0.01)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.n == 200 and fit.reason is None
    noisy = powerlaw_exponent(3 * k**-0.7 * np.exp(0.05 * np.random.default_rng(0).standard_normal(200)))
    assert noisy.alpha == pytest.approx(-0.7, abs=0.05) and noisy.r2 < 1.0


def test_power_law_with_too_few_values_is_nan_with_a_reason():
    fit = powerlaw_exponent(np.array([2.0, 1.0, 1e-14, 0.0]))
    assert math.isnan(fit.alpha) and fit.n == 2
    assert "only 2 non-zero" in fit.reason
