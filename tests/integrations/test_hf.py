"""GeodiagCallback records diagnostics from a user's own transformers Trainer run."""

from pathlib import Path

import torch
from helpers import torchrun
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import Trainer, TrainingArguments

from geodiag.data import load_task
from geodiag.data.tokenise import collate, encode
from geodiag.integrations import GeodiagCallback
from geodiag.models import load_model
from geodiag.store import Reader


def test_callback_records_a_trainer_run(tmp_path):
    lm = load_model("tiny")
    model = get_peft_model(lm.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    data = load_task("basic_arithmetic", n_train=32, n_eval=4)
    train_set = [encode(lm.tokenizer, ex, 64) for ex in data.train]
    record = collate([encode(lm.tokenizer, ex, 64) for ex in data.eval], lm.tokenizer.pad_token_id)
    store = tmp_path / "s.duckdb"
    callback = GeodiagCallback(str(store), run_name="from-trainer", record_every=3, record_batch=record,
                               task="basic_arithmetic")
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=4,
                             learning_rate=1e-2, logging_steps=1, report_to=[], save_strategy="no",
                             use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train_set, callbacks=[callback],
                      data_collator=lambda items: collate(items, lm.tokenizer.pad_token_id))
    trainer.train()

    reader = Reader(store)
    run = reader.run(callback.run_id)
    assert run["status"] == "finished" and run["method"] == "lora" and run["name"] == "from-trainer"
    assert run["trainable_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    loss = reader.metric(callback.run_id, "loss/lm")
    assert sorted(loss["step"]) == list(range(1, 7))
    sv = reader.metric(callback.run_id, "spectrum/singular_value")
    assert sorted(sv["step"].unique()) == [0, 3, 6]
    # the recorded spectrum at the end is the spectrum of the trained factors
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    dense = layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    last = sv[(sv.step == 6) & (sv.module == "model.layers.0.self_attn.q_proj")].sort_values("idx")["value"]
    torch.testing.assert_close(torch.tensor(last.to_numpy()), torch.linalg.svdvals(dense.double())[:4],
                               rtol=1e-5, atol=1e-8)
    assert len(reader.metric(callback.run_id, "geometry/participation_ratio")) == 3 * 2  # 3 records x 2 layers


def test_callback_under_a_two_process_trainer_writes_one_run_with_the_saved_adapters_spectra(tmp_path):
    store, out = tmp_path / "s.duckdb", tmp_path / "out"
    done = torchrun(str(Path(__file__).with_name("trainer_script.py")), str(store), str(out))
    assert done.returncode == 0, done.stderr[-3000:]

    reader = Reader(store)
    runs = reader.runs()
    assert len(runs) == 1 and runs.iloc[0]["status"] == "finished"  # process zero only
    rid = runs.iloc[0]["run_id"]
    assert sorted(reader.metric(rid, "loss/lm")["step"]) == [1, 2, 3, 4]
    state = load_file(str(out / "adapter_model.safetensors"))
    sv = reader.metric(rid, "spectrum/singular_value")
    assert sorted(sv["step"].unique()) == [0, 2, 4]
    modules = 0
    for key, A in state.items():
        if ".lora_A." in key:
            module = key.removeprefix("base_model.model.").split(".lora_A.")[0]
            dense = 2.0 * state[key.replace("lora_A", "lora_B")].double() @ A.double()  # alpha / r = 8 / 4
            got = sv[(sv.step == 4) & (sv.module == module)].sort_values("idx")["value"].to_numpy()
            torch.testing.assert_close(torch.tensor(got), torch.linalg.svdvals(dense)[:4], rtol=1e-6, atol=1e-9)
            modules += 1
    assert modules == 4  # q and v of both layers
    assert len(reader.metric(rid, "geometry/participation_ratio")) == 3 * 2  # 3 records x 2 layers
