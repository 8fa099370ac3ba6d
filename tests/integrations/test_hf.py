"""GeodiagCallback records diagnostics from a user's own transformers Trainer run."""

import torch
from peft import LoraConfig, get_peft_model
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
