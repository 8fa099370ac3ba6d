"""The pretrained-weight ESD fits: known answers (a Pareto tail's exponent, planted spikes above a Gaussian bulk),
equivalence with a direct transcription of the definitions, and, where WeightWatcher 0.7.7 is installed, identity
with its own fits on the same eigenvalues."""

import math

import numpy as np
import pytest

from geodiag.metrics.esd import _linear_kde as linear_kde
from geodiag.metrics.esd import esd, mp_bulk, powerlaw_tail


def reference_tail(evals, threshold=1e-5):
    """The definition, one candidate xmin at a time: MLE alpha over the tail, KS distance to the empirical CDF."""
    x = np.sort(np.asarray(evals, dtype=np.float64))
    x = x[x > threshold]
    best = (math.inf, None, None)
    for i in range(len(x) - 1):
        tail = x[i:]
        n = len(tail)
        alpha = 1 + n / np.sum(np.log(tail / x[i]))
        d = np.max(np.abs(1 - (tail / x[i]) ** (1 - alpha) - np.arange(n) / n)) if alpha > 1 else 1.0
        if d < best[0]:
            best = (d, alpha, x[i])
    return best


def test_a_pareto_tail_gives_back_its_exponent():
    rng = np.random.default_rng(0)
    alpha = 2.5
    x = (1 - rng.random(20_000)) ** (-1 / (alpha - 1))  # Pareto with xmin 1: p(x) ~ x^-2.5
    fit = powerlaw_tail(x)
    assert abs(fit.alpha - alpha) < 3 * fit.sigma + 0.02
    assert fit.xmin < 1.5 and fit.n_tail > 5_000


def test_the_vectorised_fit_is_the_definition():
    rng = np.random.default_rng(1)
    for W in (rng.standard_normal((300, 120)), rng.standard_t(3, (200, 200)), rng.standard_t(2.2, (64, 40))):
        evals = esd(W)
        fit = powerlaw_tail(evals)
        d, alpha, xmin = reference_tail(evals)
        assert fit.alpha == pytest.approx(alpha, rel=1e-9) and fit.xmin == xmin
        assert fit.ks_distance == pytest.approx(d, rel=1e-9, abs=1e-12)
        assert fit.n_tail == int((evals >= xmin).sum())


def test_esd_is_the_squared_singular_values_and_stable_rank_reads_from_it():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((90, 300))
    evals = esd(W)
    s = np.linalg.svd(W, compute_uv=False)
    np.testing.assert_allclose(evals, np.sort(s**2), rtol=1e-10)
    assert evals.sum() / evals.max() == pytest.approx(np.linalg.norm(W) ** 2 / np.linalg.norm(W, 2) ** 2, rel=1e-10)


def test_too_few_eigenvalues_is_nan_with_a_reason():
    fit = powerlaw_tail(np.linspace(1, 2, 10))
    assert math.isnan(fit.alpha) and "the tail fit needs 20" in fit.reason


def test_a_gaussian_bulk_has_no_spikes_and_planted_ones_are_counted():
    rng = np.random.default_rng(3)
    N, M = 1000, 250
    G = rng.standard_normal((N, M)) / math.sqrt(N)
    pure = mp_bulk(esd(G), N, M)
    assert pure.spikes == 0
    U, V = np.linalg.qr(rng.standard_normal((N, 3)))[0], np.linalg.qr(rng.standard_normal((M, 3)))[0]
    spiked = G + U @ np.diag([6.0, 5.0, 4.0]) @ V.T  # far above the BBP threshold (Q^-1/4 ~ 0.7)
    evals = esd(spiked)
    fit = mp_bulk(evals, N, M)
    assert fit.spikes == 3
    assert evals[-4] < fit.edge < evals[-3]  # the edge separates the bulk from the three spikes (own units)


def test_a_square_matrix_takes_the_quarter_circle_and_a_zero_matrix_is_refused():
    rng = np.random.default_rng(4)
    fit = mp_bulk(esd(rng.standard_normal((300, 300))), 300, 300)
    assert fit.spikes == 0 and fit.sigma > 0
    with pytest.raises(ValueError, match="all zero"):
        mp_bulk(np.zeros(5), 5, 5)


def test_the_density_estimate_is_sklearns_linear_kernel():
    neighbors = pytest.importorskip("sklearn.neighbors", reason="scikit-learn (a WeightWatcher dependency) is "
                                                                "not installed")
    values = np.random.default_rng(5).gamma(2.0, 1.0, 400)
    xs, density = linear_kde(values, 0.1)
    ref = np.exp(neighbors.KernelDensity(kernel="linear", bandwidth=0.1).fit(values[:, None]).score_samples(
        xs[:, None]))
    np.testing.assert_allclose(density, ref, rtol=1e-9, atol=1e-12)


def test_weightwatchers_own_fits_on_the_same_eigenvalues():
    ww = pytest.importorskip("weightwatcher", reason="WeightWatcher (an optional test dependency) is not installed")
    from weightwatcher.WW_powerlaw import WWFit

    rng = np.random.default_rng(6)
    watcher = ww.WeightWatcher()
    for shape in ((576, 576), (192, 576), (1536, 576)):
        W = rng.standard_t(3, shape)
        evals = esd(W)
        ref = WWFit(evals[evals > 1e-5])
        fit = powerlaw_tail(evals)
        assert fit.alpha == pytest.approx(ref.alpha, abs=1e-9) and fit.xmin == pytest.approx(ref.xmin)
        N, M = max(shape), min(shape)
        spikes, sigma, *_ = watcher.mp_fit(evals, N, M, 1, "", 0, 0, False, False, "", "b", 0.5, True, evals)
        bulk = mp_bulk(evals, *shape)
        assert bulk.spikes == spikes and bulk.sigma == pytest.approx(sigma, rel=1e-6)
