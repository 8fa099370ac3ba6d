"""Building a run: the model and its data, the method's adapter handed to the engine (accelerate), the
optimiser and schedule, and the recorder (rank 0 writes to the store; other ranks record nothing, or, when
parameters are sharded, record along without writing so that every gather has all its ranks)."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from geodiag import methods
from geodiag.allocation import AllocationFile, read_allocation
from geodiag.analysis import StoredOrMeasured
from geodiag.config import TrainConfig
from geodiag.data import TaskData, load_data
from geodiag.data.forget import forget_text
from geodiag.data.tokenise import batch_stream, collate, encode, text_windows
from geodiag.errors import GeodiagError
from geodiag.methods.base import Adapted
from geodiag.models import LoadedModel, hidden_size, linear_modules, load_model, module_shapes
from geodiag.models.placement import pick_dtype, start_accelerator
from geodiag.store import Writer
from geodiag.train.before import base_evaluation
from geodiag.train.engine import Engine, StepModule, prepare
from geodiag.train.loss import lm_loss
from geodiag.train.recorder import NullRecorder, Recorder


@dataclass
class Run:
    """What the loop needs, built once."""

    cfg: TrainConfig
    adapted: Adapted
    stream: Iterator[dict[str, torch.Tensor]]  # this rank's micro-batches, on the CPU
    optimizer: torch.optim.Optimizer
    engine: Engine
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    recorder: Recorder | NullRecorder | None = None

    @property
    def device(self) -> torch.device:
        return self.engine.accelerator.device

    def next_batch(self) -> dict[str, torch.Tensor]:
        return to_device(next(self.stream), self.device)


def setup(cfg: TrainConfig, *, progress: bool = True) -> Run:
    """Load, build the method, hand it to the engine, make the optimiser and the recorder. Bad input is a
    GeodiagError sentence, raised before the run is created in the store."""
    # joins the process group under torchrun / accelerate launch
    accelerator = start_accelerator(cfg.device, compile=cfg.torch_compile)
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    seed_everything(cfg.seed)  # identical initialisation on every rank; the data stream is sharded by rank
    lm = load_model(cfg.model, trust_remote_code=cfg.trust_remote_code, dtype=pick_dtype(cfg.dtype, device),
                    seed=cfg.seed)
    data = load_data(cfg.task, cfg.dataset, n_train=cfg.train_size, n_eval=max(cfg.eval_size, cfg.record_batch),
                     seed=cfg.data_seed, options=cfg.task_options, n_dev=cfg.dev_size)
    model, tok = lm.model.to(device).train(), lm.tokenizer
    forget = forgetting_text(cfg, tok, device)
    held_out = HeldOut.of(cfg, data, tok, device)
    # step 0: the base model, before any adapter exists (rank 0 records it; nothing is sharded yet)
    before, before_info = base_evaluation(model, tok, held_out.data, held_out.batches, forget and forget[1],
                                          max_new_tokens=cfg.max_new_tokens) if rank == 0 else (None, None)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    encoded = [encode(tok, ex, cfg.max_length) for ex in data.train]
    adapted = build_method(cfg, model, encoded, tok.pad_token_id, device, progress=progress and rank == 0)
    loss, lm_head = lm_loss(adapted, to_device(collate(encoded[: cfg.batch_size], tok.pad_token_id), device))
    engine, optimizer = prepare(accelerator, StepModule(adapted, loss), adapted, fsdp=cfg.fsdp,
                                make_optimizer=lambda: torch.optim.AdamW(adapted.param_groups(cfg.lr,
                                                                                              cfg.weight_decay)))
    run = Run(cfg, adapted, batch_stream(encoded, cfg.batch_size, tok.pad_token_id, seed=cfg.seed, rank=rank,
                                         world=world), optimizer, engine,
              torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.steps, cfg.warmup)))
    if rank != 0 and not engine.sharded:  # nothing to record, and no collective to take part in
        run.recorder = NullRecorder(cfg)
    else:
        extra = {"lm_head": lm_head, "splits": {"test": len(held_out.data.eval), "dev": len(data.dev)},
                 **({"forget_text": forget[0]} if forget else {}), **({"before": before_info} if before else {})}
        run.recorder = make_recorder(run, lm, data, held_out, extra, progress=progress)
        run.recorder.loss, run.recorder.before = loss, before
        if forget:
            run.recorder.forget_batches = forget[1]
    return run


@dataclass
class HeldOut:
    """The test and dev items a run is scored on, and the same items tokenised with their answers as labels
    (batches of 16 on the device) for the held-out loss."""

    data: TaskData
    batches: dict[str, list[dict[str, torch.Tensor]]]

    @classmethod
    def of(cls, cfg: TrainConfig, data: TaskData, tok, device: torch.device) -> HeldOut:
        scored = type(data)(data.name, data.train, data.eval[: cfg.eval_size], data.score, data.dev)

        def labelled(items: list) -> list[dict[str, torch.Tensor]]:
            return [to_device(collate([encode(tok, ex, cfg.max_length) for ex in items[i: i + 16]],
                                      tok.pad_token_id), device) for i in range(0, len(items), 16)]

        return cls(scored, {split: labelled(scored.split(split)) for split in ("test", "dev")})


def forgetting_text(cfg: TrainConfig, tok, device: torch.device) -> tuple[dict, list[dict]] | None:
    """(what the text is, its batches on the device) for the forgetting measure, or None when it is off."""
    if not cfg.forget_size:
        return None
    text = forget_text(cfg.forget_text)
    what = f"The forgetting text {cfg.forget_text}" if cfg.forget_text else "The default forgetting text"
    batches = text_windows(tok, text.text, n=cfg.forget_size, max_length=cfg.max_length,
                           batch_size=cfg.batch_size, what=what)
    tokens = sum(int(b["input_ids"].numel()) for b in batches)
    return {"source": text.source, "sha1": text.sha, "tokens": tokens}, [to_device(b, device) for b in batches]


def make_recorder(run: Run, lm: LoadedModel, data: TaskData, held_out: HeldOut, extra: dict, *,
                  progress: bool) -> Recorder:
    """Rank 0's recorder creates the run in the store; a sharded run's other ranks record along, writing
    nothing, so that every gather and record forward has all its ranks."""
    cfg, adapted, engine, tok = run.cfg, run.adapted, run.engine, lm.tokenizer
    record_batch = to_device(collate([encode(tok, ex, cfg.max_length) for ex in data.eval[: cfg.record_batch]],
                                     tok.pad_token_id), run.device)
    writer = Writer(cfg.store) if engine.rank == 0 else None
    run_id = writer.create_run(
        name=cfg.name(), kind="train", method=adapted.method, model=cfg.model, task=data.name,
        config={**cfg.to_dict(), "method_options": adapted.config.to_dict(), "world_size": engine.world,
                "distributed": engine.strategy, "model_source": lm.source, "hidden_size": hidden_size(lm.model),
                **extra},
        trainable_params=adapted.trainable_parameters(), total_params=adapted.total_parameters()) if writer else ""
    if progress and writer:
        tqdm.write(f"run {run_id}  ({adapted.method} on {cfg.model}, {adapted.trainable_parameters():,} trainable "
                   f"parameters, {engine.strategy}) -> {cfg.store}", file=sys.stderr)
    return Recorder(cfg, adapted, tok, record_batch, held_out.data, writer, run_id, through_root=engine.through_root,
                    eval_batches=held_out.batches)


def build_method(cfg: TrainConfig, model: nn.Module, encoded: list[dict], pad_id: int, device: torch.device, *,
                 progress: bool) -> Adapted:
    """The method on the model; an allocation-driven one reads its analysis from the store or measures it on
    the training data first (its own seed, so the training stream is unchanged)."""
    options = {**cfg.method_options, **({"target_modules": cfg.target_modules} if cfg.target_modules else {})}
    allocation = allocation_file(cfg, model)
    if allocation:
        options["target_modules"] = list(allocation.ranks)

    def batches() -> Iterator[dict[str, torch.Tensor]]:
        return (to_device(b, device) for b in batch_stream(encoded, cfg.batch_size, pad_id, seed=cfg.seed + 1))

    context = methods.BuildContext(total_steps=cfg.steps, batches=batches, progress=progress, allocation=allocation,
                                   measurements=StoredOrMeasured(model, cfg.store, batches, progress=progress))
    adapted = methods.build(cfg.method, model, options, context=context)
    if cfg.record_gid_every and not adapted.gradient_weights():
        raise GeodiagError(f"--record-gid-every needs --method full: {cfg.method} freezes the base weights, so "
                           "they have no gradient during training. For a one-off GID use `geodiag analyze gid`.")
    if cfg.subspace_k and not adapted.adapters():
        raise GeodiagError(f"--subspace-k compares adapter updates with the gradient, and {cfg.method} has no "
                           "adapters; use it with an adapter method (lora, manifold, ralora, ...).")
    return adapted


def allocation_file(cfg: TrainConfig, model: nn.Module) -> AllocationFile | None:
    """--allocation FILE.json, read and checked against the model: its rule is the run's method, and its modules
    must be this model's, with the same shapes."""
    if not cfg.allocation:
        return None
    file = read_allocation(cfg.allocation)
    if file.rule != cfg.method:
        raise GeodiagError(f"{cfg.allocation} is a {file.rule} allocation; train it with --method {file.rule} (or "
                           "leave --method out).")
    linears = linear_modules(model)
    missing = [m for m in file.shapes if m not in linears]
    if missing:
        raise GeodiagError(f"{cfg.allocation} allocates to {missing[0]}, which {cfg.model} does not have: it was made "
                           f"for {file.model}.")
    file.check(module_shapes(model, list(file.shapes)), cfg.model)
    return file


def warmup_cosine(steps: int, warmup: float) -> Callable[[int], float]:
    """Linear warm-up over the first `warmup` fraction of steps, then cosine decay to zero."""
    n_warm = int(warmup * steps)

    def factor(k: int) -> float:
        if k < n_warm:
            return (k + 1) / n_warm
        progress = (k - n_warm) / max(1, steps - n_warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}
