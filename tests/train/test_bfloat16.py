"""--dtype bfloat16: the base model in bfloat16, the trainable adapter parameters in float32, and the recorded
spectra those of the saved adapter (both computed in float64 from the same float32 factors, so they agree to
the SVD's own rounding: 1e-6 relative is generous)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from geodiag.config import TrainConfig
from geodiag.store import Reader
from geodiag.train import train


def dense_update(method: str, folder) -> dict[str, torch.Tensor]:
    """module -> Delta W (float64, dense on purpose) from the saved adapter's files."""
    out = {}
    if method == "lora":
        cfg = json.loads((folder / "adapter_config.json").read_text())
        state = load_file(str(folder / "adapter_model.safetensors"))
        for key, A in state.items():
            if ".lora_A." in key:
                module = key.removeprefix("base_model.model.").split(".lora_A.")[0]
                B = state[key.replace("lora_A", "lora_B")]
                assert A.dtype == B.dtype == torch.float32
                out[module] = (cfg["lora_alpha"] / cfg["r"]) * B.double() @ A.double()
        return out
    state = load_file(str(folder / "geodiag_adapter.safetensors"))
    for key, A in state.items():
        if key.startswith("adapters.") and key.endswith(".A"):
            prefix = key.removesuffix(".A")
            assert A.dtype == torch.float32
            gates = torch.sigmoid(state[f"{prefix}.gamma"].double() / state[f"{prefix}.tau"].double().exp())
            module = prefix.removeprefix("adapters.").replace("__", ".")
            out[module] = state[f"{prefix}.B"].double() @ torch.diag(gates) @ A.double()
    return out


@pytest.mark.parametrize("method, options", [("lora", {"r": 4}), ("manifold", {"r_div": 4, "gate_lr_ratio": 0.1})])
def test_bfloat16_base_float32_adapters_and_the_saved_adapters_spectra(tmp_path, method, options):
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"What is {a} plus {a}?", "response": str(2 * a)})
                              for a in range(1, 9)))
    cfg = TrainConfig(model="tiny", method=method, dataset=str(data), dtype="bfloat16", steps=4, batch_size=4,
                      grad_accum=1, record_every=4, eval_size=1, record_batch=2, warmup=0.0, lr=1e-2,
                      max_new_tokens=2, store=str(tmp_path / "s.duckdb"), output_dir=str(tmp_path / "adapter"),
                      method_options=options)
    rid = train(cfg, progress=False)
    reader = Reader(cfg.store)
    assert reader.run(rid)["status"] == "finished" and reader.run(rid)["config"]["dtype"] == "bfloat16"
    sv = reader.metric(rid, "spectrum/singular_value")
    final = sv[sv["step"] == 4]
    dense = dense_update(method, tmp_path / "adapter")
    assert set(final["module"]) == set(dense) and len(dense) == 4
    for module, dW in dense.items():
        recorded = torch.tensor(final[final["module"] == module].sort_values("idx")["value"].to_numpy())
        expected = torch.linalg.svdvals(dW)[: len(recorded)]
        assert float(recorded[0]) > 0
        torch.testing.assert_close(recorded, expected, rtol=1e-6, atol=1e-9 * float(expected[0]))


def test_adalora_in_bfloat16_trains_only_its_factors(tmp_path):
    from geodiag import methods
    from geodiag.models import load_model

    adapted = methods.build("adalora", load_model("tiny", dtype=torch.bfloat16).model, {"init_r": 4, "target_r": 2})
    names = {n.split(".")[-2] for n, p in adapted.model.named_parameters() if p.requires_grad}
    assert names == {"lora_A", "lora_B", "lora_E"}  # not ranknum, which peft's float32 cast had made trainable
    assert all(p.dtype == torch.float32 for p in adapted.trainable())
