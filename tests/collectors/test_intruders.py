"""The intruder count each method records equals a dense computation: every singular vector of W before
training against the top-k of the layer's dense weight after, for LoRA, PiSSA, DoRA (rows rescaled) and full
fine-tuning (the weight itself moves)."""

import pytest
import torch

from geodiag import methods
from geodiag.collectors import Intruders
from geodiag.models import linear_modules, load_model


def dense_weight(adapted, name: str) -> torch.Tensor:
    """What the adapted layer computes, as a dense matrix: its outputs on the identity (minus any bias)."""
    layer = linear_modules(adapted.model)[name] if adapted.method == "full" else dict(adapted.lora_layers())[name]
    eye = torch.eye(layer.in_features if hasattr(layer, "in_features") else layer.base_layer.in_features)
    with torch.no_grad():
        return layer(eye).T.double()  # (d_out, d_in)


@pytest.mark.parametrize("method, options", [("lora", {"r": 4}), ("lora", {"r": 4, "init_lora_weights": "pissa"}),
                                             ("dora", {"r": 4}), ("full", {})])
def test_recorded_counts_equal_dense_svds(method, options):
    torch.manual_seed(0)
    adapted = methods.build(method, load_model("tiny").model, options)
    before = {n: dense_weight(adapted, n) for n in _modules(adapted)}
    collector = Intruders(top_k=6, epsilon=0.5)
    collector.start(adapted)
    with torch.no_grad():  # a large move, so that some modules do grow intruders
        for p in adapted.trainable():
            p.add_(0.3 * torch.randn_like(p) * p.detach().abs().mean().clamp_min(0.05))
    rows = collector.rows(adapted, 7, 0.0)
    counts = {r["module"]: r["value"] for r in rows if r["name"] == "intruders/count"}
    assert counts.keys() == before.keys()
    for name, W in before.items():
        U_base = torch.linalg.svd(W).U
        U_top = torch.linalg.svd(dense_weight(adapted, name)).U[:, :6]
        want = int(((U_top.T @ U_base).abs().max(dim=1).values < 0.5).sum())
        assert counts[name] == want, name
    assert sum(counts.values()) > 0  # the perturbation made intruders: the test can fail


def _modules(adapted) -> list[str]:
    return list(adapted.gradient_weights()) if adapted.method == "full" else [n for n, _ in adapted.lora_layers()]
