"""TwoNN: known dimensions, robustness to duplicates, agreement with scikit-dimension, exact neighbours."""

import numpy as np
import pytest
import skdim
import torch
from helpers import random_rotation

from geodiag.metrics import twonn
from geodiag.metrics.intrinsic_dim import _two_nearest


def uniform_ball(rng, n, d, D):
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x *= rng.random((n, 1)) ** (1.0 / d)
    out = np.zeros((n, D))
    out[:, :d] = x
    return out @ random_rotation(rng, D)


def swiss_roll(rng, n):
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    return np.stack([t * np.cos(t), 21 * rng.random(n), t * np.sin(t)], axis=1)


def rotated_gaussian(rng, n, d, D):
    out = np.zeros((n, D))
    out[:, :d] = rng.standard_normal((n, d))
    return out @ random_rotation(rng, D)


def brute_force_two_nn(X):
    X = torch.as_tensor(X, dtype=torch.float64)
    d = torch.cdist(X, X)
    d.fill_diagonal_(float("inf"))
    return torch.topk(d, 2, largest=False).values


def test_ball_of_dimension_5_in_r10(rng):
    r = twonn(uniform_ball(rng, 5000, 5, 10))
    assert abs(r.dimension - 5) <= 0.35
    assert r.n_used == 5000 and r.n_duplicates == 0 and r.n_fit == 4500
    assert 0 < r.error < 0.35


def test_swiss_roll_is_two_dimensional(rng):
    assert abs(twonn(swiss_roll(rng, 5000)).dimension - 2) <= 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotated_gaussian_d20_in_r200(seed):
    """TwoNN reads a 20-d Gaussian 9-16% low at n = 5000 (its Pareto law assumes locally uniform
    density, which a Gaussian lacks at the scale of 2nd neighbours in 20-d); every estimator variant
    (linear fit, censored MLE, any discard fraction) agrees, so this is the method, not the code."""
    rng = np.random.default_rng(seed)
    X = rotated_gaussian(rng, 5000, 20, 200)
    r = twonn(X)
    assert 0.80 * 20 <= r.dimension <= 20
    assert r.dimension == pytest.approx(skdim.id.TwoNN().fit(X).dimension_, rel=1e-6)
    # rotation- and translation-invariant: the ambient embedding does not matter
    R = random_rotation(rng, 200)
    assert twonn(X @ R + 5.0).dimension == pytest.approx(r.dimension, rel=1e-6)


def test_no_discard_fits_every_ratio_but_the_last(rng):
    r = twonn(uniform_ball(rng, 2000, 3, 6), discard_fraction=0.0)
    assert r.n_fit == r.n_used - 1 and abs(r.dimension - 3) < 0.3


def test_exact_and_fp32_near_duplicates_do_not_move_the_estimate(rng):
    X = uniform_ball(rng, 4000, 6, 40)
    clean = twonn(X).dimension
    n5 = len(X) // 20
    exact = X[:n5]
    # fp32 twins: the same points through a different float32 computation (rotate and rotate back)
    R = random_rotation(rng, X.shape[1]).astype(np.float32)
    twins = ((X[n5 : 2 * n5].astype(np.float32) @ R) @ R.T).astype(np.float64)
    assert 0 < np.abs(twins - X[n5 : 2 * n5]).max() < 1e-5  # near, not exact
    dirty = np.concatenate([X, exact, twins])[rng.permutation(len(X) + 2 * n5)]
    r = twonn(dirty)
    assert r.n_duplicates == 2 * n5
    assert r.n_used == len(X)
    assert abs(r.dimension - clean) <= 0.05 * clean
    # without removing them the estimate collapses: the test is sensitive to what it checks
    with pytest.warns(UserWarning, match="Dropping"):  # skdim drops only the exact ones
        naive = skdim.id.TwoNN().fit(dirty).dimension_
    assert abs(naive - clean) > 0.05 * clean


@pytest.mark.parametrize("make", [
    lambda rng: uniform_ball(rng, 3000, 5, 10),
    lambda rng: swiss_roll(rng, 3000),
    lambda rng: rotated_gaussian(rng, 3000, 12, 60),
])
def test_agrees_with_scikit_dimension_on_clean_data(rng, make):
    X = make(rng)
    ours = twonn(X).dimension
    ref = skdim.id.TwoNN().fit(X).dimension_
    assert abs(ours - ref) <= 0.03 * ref


@pytest.mark.parametrize("lowp", [False, True])
@pytest.mark.parametrize("make", [
    lambda rng: swiss_roll(rng, 2000),  # dense and low-dimensional: bf16 certificates fail, fp32 takes over
    lambda rng: rotated_gaussian(rng, 2000, 10, 128),  # projected search space
    lambda rng: np.tanh(rng.standard_normal((2000, 8)) @ rng.standard_normal((8, 96))),
])
def test_neighbour_search_is_exact_in_every_search_space(rng, make, lowp):
    X = make(rng)
    r1, r2, kept = _two_nearest(torch.as_tensor(X), 1e-5, lowp)
    ref = brute_force_two_nn(X)
    assert bool(kept.all())
    torch.testing.assert_close(r1, ref[:, 0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(r2, ref[:, 1], rtol=1e-10, atol=1e-10)


def test_numpy_torch_float32_float64_agree(rng):
    X = uniform_ball(rng, 1500, 4, 16)
    a = twonn(X).dimension
    b = twonn(torch.as_tensor(X)).dimension
    c = twonn(X.astype(np.float32)).dimension
    assert a == b
    assert abs(a - c) < 1e-3


def test_bootstrap_error_is_reproducible_and_shrinks_with_n(rng):
    X = uniform_ball(rng, 4000, 5, 10)
    assert twonn(X, seed=3).error == twonn(X, seed=3).error
    assert twonn(X[:500]).error > twonn(X).error
    assert np.isnan(twonn(X[:500], n_bootstrap=0).error)


def test_bad_input_gives_clear_errors(rng):
    with pytest.raises(ValueError, match="at least 3 points"):
        twonn(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="distinct"):
        twonn(np.repeat(rng.standard_normal((2, 5)), 10, axis=0))
    X = rng.standard_normal((50, 3))
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        twonn(X)
    with pytest.raises(ValueError, match="2-D"):
        twonn(np.zeros(10))
    with pytest.raises(ValueError, match="discard_fraction"):
        twonn(X[:10] * 0 + 1, discard_fraction=1.0)
