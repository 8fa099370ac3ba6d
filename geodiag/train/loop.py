"""The training loop, readable top to bottom: load, build the method, record, step, record, evaluate, save.

Runs unchanged under `torchrun --nproc_per_node N` (gloo on CPU): each rank takes its own micro-batches,
trainable gradients are all-reduced before the optimiser step, and only rank 0 writes to the store.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from geodiag import methods
from geodiag.collectors import activation_rows, adapter_rows, gid_rows, row, subspace_rows
from geodiag.data import batch_stream, collate, encode, evaluate, load_data
from geodiag.errors import GeodiagError
from geodiag.models import hidden_size, load_model
from geodiag.store import Writer
from geodiag.train.config import TrainConfig


class Cancelled(Exception):
    """SIGTERM/SIGINT or a stop request: end the run as cancelled, keeping its data."""


@dataclass
class Recorder:
    """Buffers metric rows and flushes them to the store (rank 0 only; other ranks drop them)."""

    writer: Writer | None
    run_id: str | None
    t0: float = field(default_factory=time.monotonic)
    rows: list[dict] = field(default_factory=list)

    def wall(self) -> float:
        return time.monotonic() - self.t0

    def add(self, rows: list[dict]) -> None:
        if self.writer is not None:
            self.rows += rows

    def scalar(self, step: int, name: str, value: float, module: str | None = None) -> None:
        self.add([row(step, self.wall(), name, value, module=module)])

    def flush(self) -> None:
        if self.writer is not None and self.rows:
            self.writer.append(self.run_id, self.rows)
            self.rows = []


def train(cfg: TrainConfig, *, progress: bool = True, should_stop: Callable[[], bool] | None = None) -> str:
    """Train and record one run; returns its run id. Raises GeodiagError with a sentence on bad input."""
    rank, world = _init_distributed()
    _seed(cfg.seed)  # identical initialisation on every rank; the data stream is sharded by rank
    device = _device(cfg.device)
    dtype = _dtype(cfg.dtype, device)
    lm = load_model(cfg.model, trust_remote_code=cfg.trust_remote_code, dtype=dtype, seed=cfg.seed)
    data = load_data(cfg.task, cfg.dataset, n_train=cfg.train_size, n_eval=max(cfg.eval_size, cfg.record_batch),
                     seed=cfg.seed, options=cfg.task_options)
    model, tok = lm.model.to(device), lm.tokenizer
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    options = dict(cfg.method_options)
    if cfg.target_modules:
        options["target_modules"] = cfg.target_modules
    encoded = [encode(tok, ex, cfg.max_length) for ex in data.train]
    context = methods.BuildContext(store=cfg.store, progress=progress and rank == 0, batches=lambda: (
        _to(b, device) for b in batch_stream(encoded, cfg.batch_size, tok.pad_token_id, seed=cfg.seed + 1)))
    adapted = methods.build(cfg.method, model, options, total_steps=cfg.steps, context=context)
    gid_weights = getattr(adapted, "gradient_weights", dict)()
    if cfg.record_gid_every and not gid_weights:
        raise GeodiagError(f"--record-gid-every needs --method full: {cfg.method} freezes the base weights, so "
                           "they have no gradient during training. For a one-off GID use `geodiag analyze gid`.")
    stream = batch_stream(encoded, cfg.batch_size, tok.pad_token_id, seed=cfg.seed, rank=rank, world=world)
    record_batch = _to(collate([encode(tok, ex, cfg.max_length) for ex in data.eval[: cfg.record_batch]],
                               tok.pad_token_id), device)
    eval_data = type(data)(data.name, data.train, data.eval[: cfg.eval_size], data.score)

    trainable = adapted.trainable()
    optimizer = torch.optim.AdamW(adapted.param_groups(cfg.lr, cfg.weight_decay))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(cfg.steps, cfg.warmup))

    writer = Writer(cfg.store) if rank == 0 else None
    run_id = None
    if writer is not None:
        run_id = writer.create_run(
            name=cfg.name(), kind="train", method=cfg.method, model=cfg.model,
            task=data.name, config={**cfg.to_dict(), "method_options": adapted.config.to_dict(),
                                    "world_size": world, "model_source": lm.source,
                                    "hidden_size": hidden_size(model)},
            trainable_params=adapted.trainable_parameters(), total_params=adapted.total_parameters())
        if progress:
            tqdm.write(f"run {run_id}  ({cfg.method} on {cfg.model}, {adapted.trainable_parameters():,} trainable "
                       f"parameters) -> {cfg.store}")
    rec = Recorder(writer, run_id)
    stop = _StopFlag(should_stop)

    def record(step: int) -> None:
        rec.add(adapter_rows(adapted, step, rec.wall()))
        rec.add(activation_rows(adapted, record_batch, step, rec.wall()))
        if cfg.subspace_k:
            rec.add(subspace_rows(adapted, record_batch, cfg.subspace_k, step, rec.wall()))

    def run_eval(step: int) -> None:
        if cfg.eval_size and rank == 0:
            for name, value in evaluate(model, tok, eval_data, max_new_tokens=cfg.max_new_tokens).items():
                rec.scalar(step, name, value)

    try:
        with stop:
            if rank == 0:
                run_eval(0)
                rec.add(adapted.initial_rows())
                record(0)
                rec.flush()
            bar = tqdm(range(1, cfg.steps + 1), desc="train", disable=not progress or rank != 0, unit="step")
            for step in bar:
                logs = _train_step(cfg, adapted, stream, trainable, optimizer, device, step, world)
                adapted.after_step(step)
                if rank == 0 and cfg.record_gid_every and (step == 1 or step % cfg.record_gid_every == 0):
                    rec.add(gid_rows(gid_weights, step, rec.wall()))  # before zero_grad: the step's gradient
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                for name, value in logs.items():
                    rec.scalar(step, name, value)
                for group in optimizer.param_groups:
                    rec.scalar(step, "lr", group["lr"], module=group.get("name"))
                bar.set_postfix(loss=f"{logs['loss/lm']:.3f}")
                if rank == 0 and (step % cfg.record_every == 0 or step == cfg.steps):
                    record(step)
                if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                    run_eval(step)
                if step % cfg.record_every == 0:
                    rec.flush()
                stop.check()
            run_eval(cfg.steps)
            rec.flush()
        if rank == 0:
            adapted.save(_output_dir(cfg, run_id))
            writer.set_status(run_id, "finished")
        return run_id or ""
    except Cancelled:
        _end(rec, "cancelled", "Cancelled by request; the data recorded so far is kept.")
        raise GeodiagError(f"Run {run_id} was cancelled; its data up to the cancel is kept.") from None
    except GeodiagError as e:
        _end(rec, "failed", str(e))
        raise
    except Exception as e:
        _end(rec, "failed", f"{type(e).__name__}: {e}")
        raise
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train_step(cfg, adapted, stream, trainable, optimizer, device, step, world) -> dict[str, float]:
    """One optimiser step over grad_accum micro-batches; returns the step's mean losses.

    The auxiliary losses depend on the parameters only, not on the batch, so they are computed and
    back-propagated once per step: the same gradient as adding them to every micro-batch's loss / accum."""
    lm = 0.0
    for _ in range(cfg.grad_accum):
        batch = _to(next(stream), device)
        adapted.attention_mask = batch["attention_mask"]
        loss = adapted.model(**batch).loss
        _check_finite(loss, step)
        (loss / cfg.grad_accum).backward()
        lm += float(loss.detach()) / cfg.grad_accum
    logs = {"loss/lm": lm}
    aux = adapted.aux_losses(step / cfg.steps)
    if aux:
        weighted = sum(weight * value for value, weight in aux.values())
        _check_finite(weighted, step)
        weighted.backward()
        logs |= {name: float(value.detach()) for name, (value, _) in aux.items()}
        lm += float(weighted.detach())
    logs["loss/total"] = lm
    if world > 1:
        for p in trainable:  # average gradients over ranks: every rank then takes the same step
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad /= world
    if cfg.clip > 0:
        torch.nn.utils.clip_grad_norm_(trainable, cfg.clip)
    optimizer.step()
    return logs


def _check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise GeodiagError(f"The loss became {float(loss)} at step {step}; lower the learning rate (--lr) or check "
                           "the data. The run is marked failed and its data so far is kept.")


def _warmup_cosine(steps: int, warmup: float) -> Callable[[int], float]:
    n_warm = int(warmup * steps)

    def factor(k: int) -> float:
        if k < n_warm:
            return (k + 1) / n_warm
        progress = (k - n_warm) / max(1, steps - n_warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class _StopFlag:
    """Turns SIGTERM/SIGINT (or a should_stop() callback) into Cancelled at the next step boundary."""

    def __init__(self, should_stop: Callable[[], bool] | None):
        self.should_stop = should_stop
        self.requested = False
        self._old = {}

    def __enter__(self):
        if _main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False

    def _handler(self, signum, frame):
        self.requested = True

    def check(self) -> None:
        if self.requested or (self.should_stop is not None and self.should_stop()):
            raise Cancelled


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _end(rec: Recorder, status: str, message: str) -> None:
    if rec.writer is None or rec.run_id is None:
        return
    try:
        rec.flush()
    finally:
        rec.writer.set_status(rec.run_id, status, message)


def _output_dir(cfg: TrainConfig, run_id: str) -> Path:
    if cfg.output_dir:
        return Path(cfg.output_dir)
    return Path(cfg.store).parent / "adapters" / run_id


def _init_distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GeodiagError("device=cuda was asked for but no CUDA GPU is available; use --device cpu.")
    return torch.device(name)


def _dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}
