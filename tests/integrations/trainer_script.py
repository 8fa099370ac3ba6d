"""A user's own script: transformers Trainer + peft LoRA + GeodiagCallback, launched by
tests/integrations/test_hf.py under `torchrun --nproc_per_node 2` (the Trainer runs DDP through accelerate).

    python -m torch.distributed.run --standalone --nproc_per_node 2 trainer_script.py STORE OUT_DIR
"""

import sys

from peft import LoraConfig, get_peft_model
from transformers import Trainer, TrainingArguments

from geodiag.data import load_task
from geodiag.data.tokenise import collate, encode
from geodiag.integrations import GeodiagCallback
from geodiag.models import load_model


def main(store: str, out: str) -> None:
    lm = load_model("tiny")
    model = get_peft_model(lm.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    data = load_task("basic_arithmetic", n_train=32, n_eval=4)
    train_set = [encode(lm.tokenizer, ex, 64) for ex in data.train]
    record = collate([encode(lm.tokenizer, ex, 64) for ex in data.eval], lm.tokenizer.pad_token_id)
    callback = GeodiagCallback(store, run_name="trainer-ddp", record_every=2, record_batch=record)
    args = TrainingArguments(output_dir=out, max_steps=4, per_device_train_batch_size=4, learning_rate=1e-2,
                             logging_steps=1, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train_set, callbacks=[callback],
                      data_collator=lambda items: collate(items, lm.tokenizer.pad_token_id))
    trainer.train()
    trainer.save_model(out)  # process zero writes the adapter


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
