"""The training loop, readable top to bottom.

Runs unchanged under `torchrun --nproc_per_node N` (gloo on CPU): each rank takes its own micro-batches,
trainable gradients are all-reduced before the optimiser step, and only rank 0's recorder writes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist

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
        if run.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return rec.run_id


def train_step(run: Run, step: int) -> dict[str, float]:
    """One optimiser step over grad_accum micro-batches; returns the step's mean losses.

    The auxiliary losses depend on the parameters only, not on the batch, so they are computed and
    back-propagated once per step: the same gradient as adding them to every micro-batch's loss / accum."""
    cfg, adapted = run.cfg, run.adapted
    lm = 0.0
    for _ in range(cfg.grad_accum):
        loss = run.lm_loss(run.next_batch())  # the LM head on the answer positions only (train/loss.py)
        check_finite(loss, step)
        (loss / cfg.grad_accum).backward()
        lm += float(loss.detach()) / cfg.grad_accum
    logs = {LOSS_LM: lm, LOSS_TOTAL: lm}
    aux = adapted.aux_losses(step / cfg.steps)
    if aux:
        weighted = sum(weight * value for value, weight in aux.values())
        check_finite(weighted, step)
        weighted.backward()
        logs |= {name: float(value.detach()) for name, (value, _) in aux.items()}
        logs[LOSS_TOTAL] = lm + float(weighted.detach())
    trainable = adapted.trainable()
    average_gradients(trainable, run.world)
    if cfg.clip > 0:
        torch.nn.utils.clip_grad_norm_(trainable, cfg.clip)
    run.optimizer.step()
    return logs


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """Every rank then takes the same step (gloo all-reduce, one tensor at a time)."""
    if world > 1:
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad /= world


def check_finite(loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise GeodiagError(f"The loss became {float(loss.detach())} at step {step}; lower the learning rate (--lr) "
                           "or check the data. The run is marked failed and its data so far is kept.")

