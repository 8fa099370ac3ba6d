"""Training throughput and data parallelism, each side measured in its own fresh process, the same way:
the seconds between the end of step `WARM` and the end of the last step, over the steps in between.

- `geodiag train` LoRA (recording at the default interval included) vs a transformers `Trainer` + peft LoRA
  on the same model, task, batch (2 x accumulation 8), sequence length (128), rank and targets.
- DDP on the CPU: `torchrun` 2 processes x 1 thread vs 1 process x 2 threads, the same global batch.

`python -m bench.scale --trainer MODEL STEPS` runs the Trainer side and prints its per-step seconds as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARM = 2  # steps excluded from the timing: the first forwards allocate and warm caches
LORA = {"r": 8, "alpha": 16.0, "targets": ["q_proj", "v_proj"]}


def _geodiag_step_s(model: str, steps: int, *, procs: int = 1, threads: int = 2, accum: int = 8) -> float:
    """Per-step seconds of `geodiag train --method lora`, from the wall time the run recorded at each step."""
    from geodiag.store import Reader

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.duckdb"
        args = ["-m", "geodiag", "train", "--", "--model", model, "--method", "lora", "--r", str(LORA["r"]),
                "--alpha", str(LORA["alpha"]), "--target-modules", ",".join(LORA["targets"]), "--steps", str(steps),
                "--batch-size", "2", "--grad-accum", str(accum), "--max-length", "128", "--eval-size", "0",
                "--store", str(store), "--no-progress"]
        launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs)] if procs > 1 else []
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([sys.executable, *launcher, *args], check=True, capture_output=True, text=True, env=env)
        reader = Reader(store)
        wall = reader.metric(reader.runs().iloc[0]["run_id"], "loss/lm").set_index("step")["wall_time"]
    return (wall[steps] - wall[WARM]) / (steps - WARM)


def trainer_step_s(model: str, steps: int) -> float:
    """Per-step seconds of a transformers Trainer with a peft LoRA model, timed by a callback."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from geodiag.data import load_task
    from geodiag.data.tokenise import collate, encode
    from geodiag.models import load_model

    lm = load_model(model)
    peft_model = get_peft_model(lm.model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"],
                                                     target_modules=LORA["targets"], lora_dropout=0.0))
    data = load_task("basic_arithmetic", n_train=2000, n_eval=1, seed=0)
    ends: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            ends[state.global_step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, max_steps=steps, per_device_train_batch_size=2,
                                 gradient_accumulation_steps=8, learning_rate=1e-4, logging_steps=10, report_to=[],
                                 save_strategy="no", use_cpu=True, disable_tqdm=True, max_grad_norm=1.0)
        Trainer(model=peft_model, args=args, train_dataset=[encode(lm.tokenizer, ex, 128) for ex in data.train],
                data_collator=lambda items: collate(items, lm.tokenizer.pad_token_id), callbacks=[Clock()]).train()
    return (ends[steps] - ends[WARM]) / (steps - WARM)


def bench_throughput(model: str = "smollm2", steps: int = 22, rounds: int = 2) -> dict:
    """geodiag train vs Trainer + peft, LoRA r=8 on q,v; each in fresh 2-thread processes, alternating round
    by round so that drift in the machine's speed hits both alike; the median of the rounds."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(_geodiag_step_s(model, steps))
        out = subprocess.run([sys.executable, "-m", "bench.scale", "--trainer", model, str(steps)], check=True,
                             capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
        theirs.append(json.loads(out.stdout.strip().splitlines()[-1])["step_s"])
    mine, other = statistics.median(ours), statistics.median(theirs)
    return {"model": model, "steps_timed": (steps - WARM) * rounds, "geodiag_step_s": mine, "trainer_step_s": other,
            "ratio": other / mine, "rounds": {"geodiag": ours, "trainer": theirs}, "goal_ratio": 1.15, **LORA}


def bench_ddp_cpu(model: str = "smollm2", steps: int = 8) -> dict:
    """The same global batch (16 sequences a step): 2 processes x 1 thread (batch 2 x accumulation 4 each)
    vs 1 process x 2 threads (batch 2 x accumulation 8)."""
    two = _geodiag_step_s(model, steps, procs=2, threads=1, accum=4)
    one = _geodiag_step_s(model, steps, procs=1, threads=2, accum=8)
    return {"model": model, "steps_timed": steps - WARM, "ddp_2x1_step_s": two, "single_1x2_step_s": one,
            "ratio": one / two}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainer", nargs=2, metavar=("MODEL", "STEPS"), required=True)
    model_name, n = ap.parse_args().trainer
    print(json.dumps({"step_s": trainer_step_s(model_name, int(n))}))
