"""Training-engine benchmarks on the embedded model, each pair timed side by side in one process.

- ManifoldLoRA step vs peft LoRA with the same per-module rank (r_max) on the same batches (goal <= 1.05x;
  ManifoldLoRA reports 1.12x).
- ManifoldLoRA steps with diagnostics recorded every 10 steps (spectra, gates, probes, participation
  ratios, written to a real store) vs no recording (goal <= 1.03x).
- LoRA steps with the LM head applied to the labelled positions only vs the model's full forward (every
  position's logits), on the same batches.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
import time

import torch

from geodiag import methods
from geodiag.data import load_task
from geodiag.data.tokenise import batch_stream, collate, encode
from geodiag.methods.lora.model import LoraAdapted
from geodiag.models import load_model
from geodiag.models.placement import start_accelerator
from geodiag.names import LOSS_LM
from geodiag.store import Writer
from geodiag.train import Run, TrainConfig, train_step
from geodiag.train.engine import StepModule, prepare
from geodiag.train.loss import full_loss, labelled_loss
from geodiag.train.recorder import Recorder


def _stream(tokenizer, seed: int = 0):
    """The same batches for every method (same seed), and a fixed record batch."""
    data = load_task("basic_arithmetic", n_train=512, n_eval=TrainConfig().record_batch, seed=seed)
    stream = batch_stream([encode(tokenizer, ex, 128) for ex in data.train], 2, tokenizer.pad_token_id, seed=seed)
    record = collate([encode(tokenizer, ex, 128) for ex in data.eval], tokenizer.pad_token_id)
    return stream, record


def _manifold(model_name: str):
    torch.manual_seed(0)
    lm = load_model(model_name)
    adapted = methods.build("manifold", lm.model, {}, total_steps=1000)
    stream, record = _stream(lm.tokenizer)
    return adapted, stream, record, torch.optim.AdamW(adapted.param_groups(1e-4, 0.01))


def _run(cfg, adapted, stream, opt, loss=None) -> Run:
    """A single-process run over the engine, as `geodiag train` builds it (default: the labelled-positions loss)."""
    loss = loss or functools.partial(labelled_loss, adapted.model)
    engine, opt = prepare(start_accelerator("cpu"), StepModule(adapted, loss), adapted, make_optimizer=lambda: opt,
                          fsdp=False)
    return Run(cfg, adapted, stream, opt, engine)


def _steps(cfg, adapted, stream, opt, n: int, on_step=None) -> list[float]:
    times = []
    run = _run(cfg, adapted, stream, opt)
    for step in range(1, n + 1):
        t0 = time.perf_counter()
        train_step(run, step)
        adapted.after_step(step)
        opt.zero_grad(set_to_none=True)
        if on_step is not None:
            on_step(step)
        times.append(time.perf_counter() - t0)
    return times


def bench_step_time(model_name: str = "smollm2", steps: int = 6, rounds: int = 2) -> dict:
    """Median step time (grad_accum 8, batch 2, as the paper) of ManifoldLoRA vs peft LoRA whose per-module
    rank is ManifoldLoRA's r_max (rank_pattern) and whose scaling is 1 like ManifoldLoRA's update.

    The two alternate round by round so that drift in the machine's speed hits both alike."""
    from peft import LoraConfig, get_peft_model

    cfg = TrainConfig(model=model_name, steps=1000, grad_accum=8, batch_size=2)
    manifold = _manifold(model_name)
    ranks = {v.module: v.A.shape[0] for v in manifold[0].adapters()}  # r_max of every adapted module
    lm = load_model(model_name)
    top = max(ranks.values())
    peft_cfg = LoraConfig(r=top, lora_alpha=top, target_modules=list(ranks), rank_pattern=ranks, alpha_pattern=ranks)
    lora = LoraAdapted(get_peft_model(lm.model, peft_cfg), None)
    stream, _ = _stream(lm.tokenizer)
    setups = {"manifold": manifold[:2] + (manifold[3],),
              "lora": (lora, stream, torch.optim.AdamW(lora.param_groups(1e-4, 0.01)))}
    times = {"manifold": [], "lora": []}
    for name in times:  # one warm-up step each
        _steps(cfg, *setups[name], 1)
    for _ in range(rounds):
        for name in times:
            times[name] += _steps(cfg, *setups[name], steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": model_name, "ranks": sorted(set(ranks.values())), "manifold_step_s": med["manifold"],
            "lora_step_s": med["lora"], "ratio": med["manifold"] / med["lora"],
            "trainable_manifold": manifold[0].trainable_parameters(), "trainable_lora": lora.trainable_parameters(),
            "steps_timed": steps * rounds, "goal_ratio": 1.05}


def bench_lm_head(model_name: str = "smollm2", steps: int = 6, rounds: int = 2) -> dict:
    """Median LoRA step time (batch 2 x accumulation 8) with the model's own loss (logits at every position)
    and with the head on the labelled positions only, alternating round by round; the losses must agree."""
    cfg = TrainConfig(model=model_name, steps=1000, grad_accum=8, batch_size=2)
    lm = load_model(model_name)
    adapted = methods.build("lora", lm.model, {"r": 8})
    stream, record = _stream(lm.tokenizer)
    opt = torch.optim.AdamW(adapted.param_groups(1e-4, 0.01))
    runs = {"full": _run(cfg, adapted, stream, opt, loss=lambda b: full_loss(adapted.model, b)),
            "labelled": _run(cfg, adapted, stream, opt, loss=lambda b: labelled_loss(adapted.model, b))}
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            for step in range(1, steps + 2):
                t0 = time.perf_counter()
                train_step(run, step)
                opt.zero_grad(set_to_none=True)
                if step > 1:  # the first step of a round warms up
                    times[name].append(time.perf_counter() - t0)
    with torch.no_grad():
        gap = abs(float(full_loss(adapted.model, record)) - float(labelled_loss(adapted.model, record)))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": model_name, "full_step_s": med["full"], "labelled_step_s": med["labelled"],
            "ratio": med["full"] / med["labelled"], "loss_gap_on_record_batch": gap, "steps_timed": len(times["full"])}


def bench_recording(model_name: str = "smollm2", steps: int = 20, record_every: int | None = None) -> dict:
    """Overhead of recording at the default interval, measured inside one run: every step is timed, and so
    is every recording (collectors + writing to a real store). Comparing two separate runs instead drowns
    a 1-2% effect in the machine's +-5% drift between runs."""
    cfg = TrainConfig(model=model_name, steps=1000, grad_accum=8, batch_size=2)
    every = record_every or cfg.record_every
    adapted, stream, record, opt = _manifold(model_name)
    recording = []
    with tempfile.TemporaryDirectory() as tmp:
        writer = Writer(f"{tmp}/s.duckdb")
        rec = Recorder(cfg, adapted, None, record, None, writer, writer.create_run(name="bench", kind="train"))

        def on_step(step: int) -> None:
            t0 = time.perf_counter()
            rec.log(step, {LOSS_LM: 0.0}, opt)
            if step % every == 0:
                rec.record(step)  # spectra, gates, probes, participation ratios, then a store flush
            recording.append(time.perf_counter() - t0)

        _steps(cfg, adapted, stream, opt, 1)  # warm-up
        total = sum(_steps(cfg, adapted, stream, opt, steps, on_step))
    spent = sum(recording)
    return {"model": model_name, "steps": steps, "record_every": every, "records": steps // every,
            "train_s": total - spent, "recording_s": spent, "per_record_s": spent / max(1, steps // every),
            "ratio": total / (total - spent), "goal_ratio": 1.03}
