"""DoRA through peft: the merged weight is m ⊙ (W + sBA) / ‖W + sBA‖ per output row (checked against peft's
own forward), and the recorded magnitude and direction changes equal their dense computation."""

import torch

from geodiag import methods
from geodiag.collectors import adapter_rows
from geodiag.metrics import dora_decomposition
from geodiag.models import load_model


def trained_dora():
    torch.manual_seed(0)
    lm = load_model("tiny")
    adapted = methods.build("dora", lm.model, {"r": 4})
    with torch.no_grad():  # a training run's worth of change in B, A and the magnitudes
        for p in adapted.trainable():
            p.add_(0.05 * torch.randn_like(p))
    return adapted


def test_the_merged_weight_is_the_row_normalised_direction_times_the_magnitude():
    adapted = trained_dora()
    name, layer = next(iter(adapted.lora_layers()))
    W, m = adapted.magnitudes()[name]
    view = next(v for v in adapted.adapters() if v.module == name)
    V = W.double() + view.scaling * view.B.double() @ view.A.double()  # (d_out, d_in), dense on purpose
    merged = (m.double() / V.norm(dim=1))[:, None] * V
    x = torch.randn(3, W.shape[1])
    with torch.no_grad():
        torch.testing.assert_close(layer(x).double(), x.double() @ merged.T, rtol=1e-5, atol=1e-5)


def test_magnitude_and_direction_changes_equal_the_dense_computation():
    adapted = trained_dora()
    rows = {(r["module"], r["name"]): r["value"] for r in adapter_rows(adapted, 5, 0.0)}
    for v in adapted.adapters():
        W, m = (t.double() for t in adapted.magnitudes()[v.module])
        V = W + v.scaling * v.B.double() @ v.A.double()
        dM = (m - W.norm(dim=1)).abs().mean()
        dD = (1 - torch.nn.functional.cosine_similarity(V, W, dim=1)).mean()
        got = dora_decomposition(W, v.B, v.A, v.scaling, m)
        torch.testing.assert_close(torch.tensor([got.magnitude_change, got.direction_change], dtype=torch.float64),
                                   torch.stack([dM, dD]), rtol=1e-6, atol=1e-12)
        assert rows[(v.module, "dora/magnitude_change")] == got.magnitude_change
        assert rows[(v.module, "dora/direction_change")] == got.direction_change
        assert float(dD) > 0 and float(dM) > 0  # both moved: the test can tell them from zero


def test_at_initialisation_nothing_has_changed():
    adapted = methods.build("dora", load_model("tiny").model, {"r": 4})
    for v in adapted.adapters():
        W, m = adapted.magnitudes()[v.module]
        d = dora_decomposition(W, v.B, v.A, v.scaling, m)
        assert abs(d.magnitude_change) < 1e-6 and abs(d.direction_change) < 1e-12
