"""import-peft: spectra of saved adapters equal the dense SVD of what the adapter means."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file

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
    (tmp_path / "adapter_config.json").write_text("{truncated")
    out = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(tmp_path)], capture_output=True,
                         text=True)
    assert out.returncode == 2 and "cannot be read as a PEFT adapter config" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_corrupt_weights_file_and_checkpoints_without_an_adapter_are_one_sentence(vocab, tmp_path):
    model = get_peft_model(load_model("tiny").model, LoraConfig(r=2, target_modules=["q_proj"]))
    adapter = tmp_path / "adapter"
    model.save_pretrained(adapter)
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    store = tmp_path / "s.duckdb"
    out = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(adapter), "--store", str(store)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "adapter_model.safetensors is not a readable weights file" in out.stderr
    assert "Traceback" not in out.stderr and not store.exists()
    trainer = tmp_path / "trainer"
    for step in (2, 4):
        (trainer / f"checkpoint-{step}").mkdir(parents=True)
        (trainer / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    out = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(trainer), "--store", str(store)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and not store.exists()
    assert "has checkpoint-2, checkpoint-4, but no checkpoint holds an adapter" in out.stderr


def _trainer_checkpoints(tmp_path, peft_config) -> tuple[Path, object]:
    """A tiny Trainer run saving its adapter every 2 of 6 steps: out/checkpoint-{2,4,6}."""
    from transformers import Trainer, TrainingArguments

    from geodiag.data import load_task
    from geodiag.data.tokenise import collate, encode

    lm = load_model("tiny")
    model = get_peft_model(lm.model, peft_config)
    data = load_task("basic_arithmetic", n_train=32, n_eval=1)
    out = tmp_path / "out"
    args = TrainingArguments(output_dir=str(out), max_steps=6, per_device_train_batch_size=4, learning_rate=3e-2,
                             logging_steps=1, save_steps=2, report_to=[], use_cpu=True, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=[encode(lm.tokenizer, ex, 48) for ex in data.train],
            data_collator=lambda items: collate(items, lm.tokenizer.pad_token_id)).train()
    return out, model


def test_a_trainer_checkpoint_series_is_one_run_with_each_checkpoints_spectra(tmp_path):
    out, _ = _trainer_checkpoints(tmp_path, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert len(checkpoints) >= 3
    store = tmp_path / "s.duckdb"
    done = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(out), "--base", "tiny", "--store",
                           str(store), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    reader = Reader(store)
    assert len(reader.runs()) == 1
    rid = done.stdout.strip()
    sv = reader.metric(rid, "spectrum/singular_value")
    assert sorted(sv["step"].unique()) == [2, 4, 6]
    for folder in checkpoints:
        step = json.loads((folder / "trainer_state.json").read_text())["global_step"]
        state = load_file(str(folder / "adapter_model.safetensors"))
        key = next(k for k in state if ".lora_A." in k)
        module = key.removeprefix("base_model.model.").split(".lora_A.")[0]
        ref = dense_spectrum(state[key.replace("lora_A", "lora_B")], state[key], 2.0)[:4]
        got = sv[(sv.step == step) & (sv.module == module)].sort_values("idx")["value"].to_numpy()
        torch.testing.assert_close(torch.tensor(got), ref, rtol=1e-6, atol=1e-9)
    assert sorted(reader.metric(rid, "loss/lm")["step"]) == [1, 2, 3, 4, 5, 6]  # the log_history
    assert len(reader.metric(rid, "lr")) == 6
    assert sorted(reader.metric(rid, "intruders/count")["step"].unique()) == [2, 4, 6]  # --base: W is known


def test_checkpoints_of_different_base_models_are_one_sentence(tmp_path):
    out, _ = _trainer_checkpoints(tmp_path, LoraConfig(r=2, target_modules=["q_proj"]))
    cfg_path = sorted(out.glob("checkpoint-*"))[-1] / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "base_model_name_or_path": "some/other-model"}))
    done = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(out), "--store",
                           str(tmp_path / "s.duckdb")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "belong to different base models" in done.stderr and done.stderr.count("\n") == 1


def test_dora_import_with_the_base_records_its_decomposition_and_a_missing_magnitude_is_one_sentence(vocab,
                                                                                                     tmp_path):
    from safetensors.torch import save_file

    from geodiag.metrics import dora_decomposition

    dora = build("dora", load_model("tiny").model, {"r": 4})
    with torch.no_grad():
        for p in dora.trainable():
            p.add_(0.05 * torch.randn_like(p))
    dora.save(tmp_path / "dora")
    _, imported = read_peft_adapter(tmp_path / "dora", load_model("tiny").model)
    assert imported.method == "dora"
    for v in imported.adapters():
        W, m = dora.magnitudes()[v.module]
        live = next(x for x in dora.adapters() if x.module == v.module)
        want = dora_decomposition(W, live.B, live.A, live.scaling, m)
        W_imported, m_imported = imported.magnitudes()[v.module]
        got = dora_decomposition(W_imported, v.B, v.A, v.scaling, m_imported)
        assert [got.magnitude_change, got.direction_change] == pytest.approx(
            [want.magnitude_change, want.direction_change], rel=1e-6)
    weights = tmp_path / "dora" / "adapter_model.safetensors"
    save_file({k: t for k, t in load_file(str(weights)).items() if "magnitude" not in k}, str(weights))
    done = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(tmp_path / "dora"), "--store",
                           str(tmp_path / "s.duckdb")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "is a DoRA adapter (use_dora) but has no magnitude vector" in done.stderr


@pytest.mark.parametrize("keep_initial_file", [True, False])
def test_pissa_import_measures_from_the_original_weight(tmp_path, keep_initial_file):
    pissa = build("lora", load_model("tiny").model, {"r": 4, "init_lora_weights": "pissa"})
    with torch.no_grad():
        for p in pissa.trainable():
            p.add_(0.05 * torch.randn_like(p))
    pissa.save(tmp_path / "pissa")
    if not keep_initial_file:  # then peft recomputes B0 A0 from the base model's W
        (tmp_path / "pissa" / "initial_factors.safetensors").unlink()
    _, imported = read_peft_adapter(tmp_path / "pissa", load_model("tiny").model)
    live = {v.module: v for v in pissa.adapters()}
    for v in imported.adapters():
        ref = dense_spectrum(live[v.module].B, live[v.module].A, live[v.module].scaling)[:8]
        torch.testing.assert_close(dense_spectrum(v.B, v.A, v.scaling)[:8], ref, rtol=1e-5, atol=1e-7)
    if not keep_initial_file:
        done = subprocess.run([sys.executable, "-m", "geodiag", "import-peft", str(tmp_path / "pissa"), "--store",
                               str(tmp_path / "s.duckdb")], capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "pass the base model with --base MODEL" in done.stderr
