"""Record geodiag diagnostics from a user's own `transformers.Trainer` run.

    trainer = Trainer(model=peft_model, ..., callbacks=[GeodiagCallback("runs/geodiag.duckdb")])

LoRA and AdaLoRA peft models are recognised; a ManifoldLoRA model built with `geodiag.methods.build` is
passed as `adapted=`. Losses and learning rates come from the Trainer's logs; spectra, gates and ranks are
collected every `record_every` steps, and hidden-state geometry too when a `record_batch` is given.

Under a distributed Trainer (torchrun or accelerate launch) only the world's process zero writes, one run.
With DDP the factors are whole on every rank and only process zero records; with FSDP they are shards, so
every rank records (the gathers and the record forward are collectives) and only process zero writes.
"""

from __future__ import annotations

import time

import torch
from transformers import TrainerCallback

from geodiag.collectors import activation_rows, adapter_rows
from geodiag.methods.adalora.model import AdaLoraAdapted
from geodiag.methods.base import Adapted
from geodiag.methods.dora.model import DoraAdapted
from geodiag.methods.lora.model import LoraAdapted
from geodiag.names import trainer_log
from geodiag.records import row
from geodiag.store import DEFAULT_STORE, Writer


class GeodiagCallback(TrainerCallback):
    def __init__(self, store: str = DEFAULT_STORE, *, run_name: str | None = None, record_every: int = 10,
                 record_batch: dict[str, torch.Tensor] | None = None, adapted: Adapted | None = None,
                 task: str | None = None):
        self.writer = Writer(store)
        self.run_name = run_name
        self.record_every = record_every
        self.record_batch = record_batch
        self.adapted = adapted
        self.task = task
        self.run_id: str | None = None
        self.t0 = time.monotonic()
        self._recorded_step = -1
        self._records = False  # this process records: process zero, and every process under FSDP

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.adapted = self.adapted or _wrap(model)
        sharded = any(hasattr(p, "full_tensor") for p in self.adapted.model.parameters())
        self._records = state.is_world_process_zero or sharded
        if not state.is_world_process_zero:
            self._record(0)
            return
        name_or_path = getattr(getattr(model, "config", None), "_name_or_path", None) or type(model).__name__
        self.run_id = self.writer.create_run(
            name=self.run_name or f"{self.adapted.method}-trainer", kind="train", method=self.adapted.method,
            model=str(name_or_path), task=self.task, config={"trainer_args": args.to_dict()},
            trainable_params=self.adapted.trainable_parameters(), total_params=self.adapted.total_parameters())
        self._record(0)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.run_id is None or not logs:
            return
        wall = time.monotonic() - self.t0
        rows = [row(state.global_step, wall, trainer_log(k), v)
                for k, v in logs.items() if isinstance(v, int | float)]
        self.writer.append(self.run_id, rows)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.record_every == 0:
            self._record(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        if state.global_step != self._recorded_step:
            self._record(state.global_step)
        if self.run_id is not None:
            self.writer.set_status(self.run_id, "finished")

    def _record(self, step: int) -> None:
        if not self._records:
            return
        self._recorded_step = step
        wall = time.monotonic() - self.t0
        rows = adapter_rows(self.adapted, step, wall)
        if self.record_batch is not None:
            device = next(self.adapted.model.parameters()).device
            batch = {k: v.to(device) for k, v in self.record_batch.items()}
            rows += activation_rows(self.adapted, batch, step, wall)
        if self.run_id is not None:
            self.writer.append(self.run_id, rows)


def _wrap(model) -> Adapted:
    """A read-only geodiag view of a peft model, so the collectors can read its factors."""
    config = getattr(model, "peft_config", {}).get("default")
    if "ADALORA" in str(getattr(config, "peft_type", "")).upper():
        return AdaLoraAdapted(model, None)
    return DoraAdapted(model, None) if getattr(config, "use_dora", False) else LoraAdapted(model, None)
