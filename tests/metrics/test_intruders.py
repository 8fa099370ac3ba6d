"""Intruder dimensions on constructed cases with known answers, and the operator's top singular vectors
against a dense SVD."""

import numpy as np
import torch
from helpers import random_rotation

from geodiag.metrics import base_singular_vectors, intruder_count, top_singular_vectors


def weight(rng, d=64):
    """W = U diag(s) Vᵀ with a decaying spectrum: (W, U, V, s)."""
    U, V = random_rotation(rng, d), random_rotation(rng, d)
    s = np.linspace(10.0, 0.5, d)
    return torch.tensor(U @ np.diag(s) @ V.T), U, V, s


def test_a_large_direction_orthogonal_to_the_top_subspace_is_exactly_one_intruder():
    rng = np.random.default_rng(0)
    W, U, V, _ = weight(rng)
    u = U[:, 24:] @ rng.standard_normal(40)  # spread over W's bottom 40 directions: no single one dominates
    v = V[:, 24:] @ rng.standard_normal(40)
    B = torch.tensor(u / np.linalg.norm(u))[:, None]  # (d, 1)
    A = torch.tensor(v / np.linalg.norm(v))[None, :]  # (1, d)
    U_top, s = top_singular_vectors(W, B, A, scaling=30.0)  # σ = 30 > σ1 = 10: it enters the top 10
    count, cos = intruder_count(base_singular_vectors(W), U_top)
    assert count == 1 and cos[0] < 0.5 and (cos[1:] > 0.5).all()


def test_an_update_inside_the_top_subspace_has_no_intruder():
    rng = np.random.default_rng(1)
    W, U, V, _ = weight(rng)
    B = torch.tensor(U[:, :4] * 3.0)  # grows W's own top-4 directions
    A = torch.tensor(V[:, :4].T)
    count, _ = intruder_count(base_singular_vectors(W), top_singular_vectors(W, B, A, scaling=1.0)[0])
    assert count == 0


def test_operator_singular_vectors_equal_a_dense_svd():
    rng = np.random.default_rng(2)
    W = torch.tensor(rng.standard_normal((48, 40)))
    B, A = torch.tensor(rng.standard_normal((48, 3))), torch.tensor(rng.standard_normal((3, 40)))
    scale = torch.tensor(rng.uniform(0.5, 2.0, 48))
    dense = scale[:, None] * (W + 0.7 * B @ A)  # (48, 40), on purpose
    U_ref, s_ref, _ = torch.linalg.svd(dense)
    U, s = top_singular_vectors(W, B, A, scaling=0.7, row_scale=scale, k=6)
    np.testing.assert_allclose(s, s_ref[:6].numpy(), rtol=1e-8)
    np.testing.assert_allclose(np.abs((U.T @ U_ref[:, :6].numpy()).diagonal()), 1.0, atol=1e-6)  # up to sign
