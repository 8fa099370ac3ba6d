"""The training loop, readable top to bottom.

Runs unchanged on one process and under `torchrun --nproc_per_node N` or `accelerate launch`: each rank takes
its own micro-batches of one global order, the engine (accelerate: DDP, FSDP, DeepSpeed) synchronises the
gradients on the last micro-batch of each step, and only rank 0's recorder writes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from geodiag.config import TrainConfig
from geodiag.errors import GeodiagError
from geodiag.names import LOSS_LM, LOSS_TOTAL
from geodiag.train.setup import Run, setup
from geodiag.train.stop import StopFlag


def train(cfg: TrainConfig, *, progress: bool = True, should_stop: Callable[[], bool] | None = None) -> str:
    """Train and record one run; returns its run id. Bad input raises a GeodiagError with one sentence, and
    a failed or cancelled run keeps everything recorded up to that point."""
    run = setup(cfg, progress=progress)
    rec, adapted, optimizer = run.recorder, run.adapted, run.optimizer
    try:
        with rec.ending(), StopFlag(should_stop) as stop:
            # before training: accuracy, the allocation the method was built with, the first record
            rec.evaluate(0)
            rec.initial()
            rec.record(0)
            for step in rec.steps(progress):
                # forward and backward over grad_accum micro-batches, the auxiliary losses once, one update
                logs = train_step(run, step)
                # the method's own step (AdaLoRA reallocates ranks), GID of this step's gradient, then clear it
                adapted.after_step(step)
                if cfg.record_gid_every and (step == 1 or step % cfg.record_gid_every == 0):
                    rec.gid(step)
                run.scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                # log the step; record diagnostics and evaluate when due
                rec.log(step, logs, optimizer)
                if step % cfg.record_every == 0 or step == cfg.steps:
                    rec.record(step)
                if cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                    rec.evaluate(step)
                stop.check()
            rec.evaluate(cfg.steps)
    finally:
        run.engine.end()
    return rec.run_id


def train_step(run: Run, step: int) -> dict[str, float]:
    """One optimiser step over grad_accum micro-batches; returns the step's mean losses.

    The auxiliary losses depend on the parameters only, not on the batch, so they join the last micro-batch's
    loss once: the same gradient as adding them to every micro-batch's loss / accum, and one backward per
    forward, as DDP expects."""
    cfg, engine = run.cfg, run.engine
    lm, aux_logs, aux_total = 0.0, {}, 0.0
    for k in range(cfg.grad_accum):
        last = k == cfg.grad_accum - 1
        with engine.sync(last):  # gradients are synchronised over the ranks on the last micro-batch only
            loss, aux = engine.module(run.next_batch(), aux_at=step / cfg.steps if last else None)
            check_finite(loss, step)
            total = loss / cfg.grad_accum
            if aux:
                weighted = sum(weight * value for value, weight in aux.values())
                check_finite(weighted, step)
                total = total + weighted
                aux_logs = {name: float(value.detach()) for name, (value, _) in aux.items()}
                aux_total = float(weighted.detach())
            engine.accelerator.backward(total)
        lm += float(loss.detach()) / cfg.grad_accum
    if cfg.clip > 0:
        engine.accelerator.clip_grad_norm_(run.adapted.trainable(), cfg.clip)
    run.optimizer.step()
    lm = engine.mean(lm)  # the global batch's loss, as one process would log it
    return {LOSS_LM: lm, **aux_logs, LOSS_TOTAL: lm + aux_total}


def check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise GeodiagError(f"The loss became {float(loss.detach())} at step {step}; lower the learning rate (--lr) "
                           "or check the data. The run is marked failed and its data so far is kept.")

