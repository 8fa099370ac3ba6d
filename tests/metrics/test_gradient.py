"""Importance (RaLoRA Eq. 5) and the empirical Fisher (RaLoRA App. E.2)."""

import numpy as np
import pytest
import torch

from geodiag.metrics import empirical_fisher, importance


def test_importance_is_mean_absolute_product(rng):
    W, G = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    assert importance(W, G) == pytest.approx(np.abs(W * G).mean(), rel=1e-12)
    assert importance(torch.as_tensor(W).float(), torch.as_tensor(G).float()) == pytest.approx(
        np.abs(W * G).mean(), rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        importance(W, G.T)


def test_empirical_fisher_averages_squared_gradients_over_batches(rng):
    grads = [rng.standard_normal((4, 3)) * s for s in (1.0, 2.0, 3.0)]
    expected = np.mean([np.mean(g**2) for g in grads])
    assert empirical_fisher(iter(grads)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="empty"):
        empirical_fisher([])
