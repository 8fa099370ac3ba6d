"""import-peft: spectra of saved adapters equal the dense SVD of what the adapter means."""

import json
import subprocess
import sys

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from geodiag.integrations.peft_import import import_peft, read_peft_adapter
from geodiag.methods import build
from geodiag.methods.adalora.model import AdaLoraAdapted
from geodiag.models import load_model, tiny_model
from geodiag.store import Reader


@pytest.fixture(scope="module")
def vocab():
    return len(load_model("tiny").tokenizer)


def dense_spectrum(B, A, scaling, gates=None):
    g = torch.ones(B.shape[1], dtype=torch.float64) if gates is None else gates.double()
    return torch.linalg.svdvals(scaling * (B.double() * g) @ A.double())


def test_random_peft_lora_with_patterns(vocab, tmp_path):
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], rank_pattern={"v_proj": 2},
                     alpha_pattern={"v_proj": 6})
    model = get_peft_model(tiny_model(vocab), cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.normal_()
    model.save_pretrained(tmp_path)
    _, adapter = read_peft_adapter(tmp_path)
    views = {v.module: v for v in adapter.adapters()}
    assert len(views) == 4
    assert {k.rsplit(".", 1)[-1]: v.scaling for k, v in views.items()} == {"q_proj": 2.0, "v_proj": 3.0}
    store = tmp_path / "s.duckdb"
    rid = import_peft(tmp_path, store=str(store), base="tiny")
    reader = Reader(store)
    run = reader.run(rid)
    assert run["kind"] == "import" and run["method"] == "lora" and run["model"] == "tiny"
    sv = reader.metric(rid, "spectrum/singular_value")
    for name, m in model.named_modules():
        if hasattr(m, "lora_A") and "default" in m.lora_A:
            key = name.removeprefix("base_model.model.")
            B, A = m.lora_B["default"].weight.detach(), m.lora_A["default"].weight.detach()
            ref = dense_spectrum(B, A, m.scaling["default"])[: A.shape[0]]
            got = torch.tensor(sv[sv.module == key].sort_values("idx")["value"].to_numpy())
            torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-9)
    for name in ("spectrum/stable_rank", "spectrum/nuclear", "spectrum/frobenius", "spectrum/alpha_n",
                 "spectrum/erank"):
        assert len(reader.metric(rid, name)) == 4


def test_engine_saved_adapters_import(vocab, tmp_path):
    lora = build("lora", tiny_model(vocab), {"r": 3})
    with torch.no_grad():
        for n, p in lora.model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    lora.save(tmp_path / "lora")
    _, imported = read_peft_adapter(tmp_path / "lora")
    live = {v.module: v for v in lora.adapters()}
    for v in imported.adapters():
        ref = dense_spectrum(live[v.module].B, live[v.module].A, live[v.module].scaling)[:3]
        from geodiag.metrics import factor_spectrum

        torch.testing.assert_close(factor_spectrum(v.B, v.A, gates=v.gates, scaling=v.scaling)[:3], ref, rtol=1e-6,
                                   atol=1e-9)

    ada = build("adalora", tiny_model(vocab), {"init_r": 4, "target_r": 2}, total_steps=20)
    with torch.no_grad():
        for n, p in ada.model.named_parameters():
            if "lora_" in n:
                p.normal_()
    ada.save(tmp_path / "ada")
    cfg, imported = read_peft_adapter(tmp_path / "ada")
    assert imported.method == "adalora"
    # what the saved adapter means is what PeftModel.from_pretrained rebuilds from it
    reloaded = AdaLoraAdapted(PeftModel.from_pretrained(tiny_model(vocab), tmp_path / "ada"), None)
    ref = {v.module: v for v in reloaded.adapters()}
    for v in imported.adapters():
        r = ref[v.module]
        torch.testing.assert_close(dense_spectrum(v.B, v.A, v.scaling, v.gates),
                                   dense_spectrum(r.B, r.A, r.scaling, r.gates), rtol=1e-5, atol=1e-8)
        assert v.rank == 4


def test_import_errors(tmp_path):
    out = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(tmp_path), "--store",
                          str(tmp_path / "s.duckdb")], capture_output=True, text=True)
    assert out.returncode == 2 and "is not a PEFT adapter directory" in out.stderr
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    out = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(tmp_path)], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "holds a IA3 adapter" in out.stderr
