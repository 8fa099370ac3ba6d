"""PiSSA and OLoRA through peft take B0 A0 out of W, so the update is s (B A - B0 A0), not s B A: the
recorded view (from factors, rank <= 2r) equals the dense W' - W, before and after training steps."""

import pytest
import torch
from safetensors.torch import load_file

from geodiag import methods
from geodiag.collectors import adapter_rows
from geodiag.models import linear_modules, load_model


def dense(view) -> torch.Tensor:
    return view.scaling * view.B.double() @ view.A.double()  # (d_out, d_in): dense on purpose, small shapes


@pytest.mark.parametrize("init", ["pissa", "olora"])
def test_the_update_is_measured_from_the_original_weight(init, tmp_path):
    lm = load_model("tiny")
    before = {n: m.weight.detach().clone().double() for n, m in linear_modules(lm.model).items()}
    adapted = methods.build("lora", lm.model, {"r": 4, "init_lora_weights": init})
    views = {v.module: v for v in adapted.adapters()}
    assert views and all(v.B.shape[1] == 8 for v in views.values())  # [B, -B0]: rank <= 2r
    for v in views.values():
        assert float(dense(v).abs().max()) < 1e-6  # at initialisation W' = W_res + s B0 A0 = W
    with torch.no_grad():  # a training step's worth of change in every factor
        for p in adapted.trainable():
            p.add_(0.05 * torch.randn_like(p))
    for name, m in adapted.lora_layers():
        v = next(v for v in adapted.adapters() if v.module == name)
        W_now = m.get_base_layer().weight.double() + m.scaling["default"] * (
            m.lora_B["default"].weight.double() @ m.lora_A["default"].weight.double())
        torch.testing.assert_close(dense(v), W_now - before[name], rtol=1e-6, atol=1e-6)
    # the recorded spectrum is that of W' - W, and the saved files carry B0, A0
    sv = [r for r in adapter_rows(adapted, 1, 0.0) if r["name"] == "spectrum/singular_value"
          and r["module"] == v.module]
    want = torch.linalg.svdvals(dense(v))[: len(sv)]
    torch.testing.assert_close(torch.tensor([r["value"] for r in sv], dtype=torch.float64), want, rtol=1e-6,
                               atol=1e-9)
    adapted.save(tmp_path)
    assert {k.rsplit(".", 1)[-1] for k in load_file(str(tmp_path / "initial_factors.safetensors"))} == {"A0", "B0"}
