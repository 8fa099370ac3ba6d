"""Everything a training run writes: the run row, buffered metric rows (flushed at each record), accuracy,
diagnostics, the saved adapter and the final status. Rank 0 has a `Recorder`; every other rank a
`NullRecorder`, which does nothing, so the loop never asks which rank it is on. When parameters are sharded
(FSDP), every rank has a `Recorder` and only rank 0's has a writer: the others run the same gathers and
forwards, which are collectives there, and keep nothing."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from geodiag.collectors import Intruders, activation_rows, adapter_rows, gid_rows, initial_rows, subspace_rows
from geodiag.config import TrainConfig
from geodiag.data import TaskData
from geodiag.data.evaluate import item_scores, summary
from geodiag.errors import GeodiagError
from geodiag.methods.base import Adapted
from geodiag.names import FORGET_LOSS, ITEM_EXACT, ITEM_SCORE, LOSS_LM, LR, SPLIT_METRICS
from geodiag.records import row
from geodiag.store import Writer
from geodiag.train.before import BaseEvaluation
from geodiag.train.loss import held_out_loss
from geodiag.train.stop import Cancelled


@dataclass
class Recorder:
    cfg: TrainConfig
    adapted: Adapted
    tokenizer: object
    record_batch: dict[str, torch.Tensor]  # fixed held-out examples on the model's device
    eval_data: TaskData
    writer: Writer | None  # None on a sharded run's other ranks
    run_id: str
    through_root: Callable[[Callable], object] = lambda fn: fn()  # Engine.through_root: forwards under FSDP
    loss: Callable[[dict], torch.Tensor] | None = None  # the training loss, for the held-out loss
    eval_batches: dict[str, list[dict[str, torch.Tensor]]] = field(default_factory=dict)  # split -> labelled items
    forget_batches: list[dict[str, torch.Tensor]] = field(default_factory=list)  # the forgetting text's windows
    before: BaseEvaluation | None = None  # step 0: the base model's numbers, computed before any adapter existed
    t0: float = field(default_factory=time.monotonic)
    rows: list[dict] = field(default_factory=list)
    bar: tqdm | None = None
    intruders: Intruders | None = None

    def __post_init__(self) -> None:
        if self.cfg.intruders:
            self.intruders = Intruders(self.cfg.intruders_top_k, self.cfg.intruders_epsilon)

    def wall(self) -> float:
        return time.monotonic() - self.t0

    def steps(self, progress: bool) -> Iterator[int]:
        """1 .. steps, behind a progress bar that shows the last LM loss."""
        self.bar = tqdm(range(1, self.cfg.steps + 1), desc="train", disable=not progress or not self.writer,
                        unit="step")
        yield from self.bar

    def initial(self) -> None:
        """The allocation an allocation-driven method was built with, and its parameter budget; W's singular
        vectors for the intruder count, before training changes anything."""
        self.rows += initial_rows(self.adapted)
        if self.intruders:
            self.intruders.start(self.adapted)

    def log(self, step: int, logs: dict[str, float], optimizer: torch.optim.Optimizer) -> None:
        """The step's losses and each parameter group's learning rate; the bar shows the LM loss."""
        wall = self.wall()
        self.rows += [row(step, wall, name, value) for name, value in logs.items()]
        self.rows += [row(step, wall, LR, g["lr"], module=g.get("name")) for g in optimizer.param_groups]
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{logs[LOSS_LM]:.3f}")
        if self.writer:
            self.writer.beat(self.run_id)  # alive, for readers on other hosts (rate-limited: nearly free)

    def gid(self, step: int) -> None:
        """GID of this step's gradient of every trained base weight (full fine-tuning), before zero_grad."""
        self.rows += gid_rows(self.adapted.gradient_weights(), step, self.wall())

    def record(self, step: int) -> None:
        """Spectra and gates, hidden-state geometry on the record batch, subspace angles if asked; then flush."""
        self.rows += adapter_rows(self.adapted, step, self.wall())
        self.rows += self.through_root(lambda: activation_rows(self.adapted, self.record_batch, step, self.wall()))
        if self.cfg.subspace_k:
            self.rows += subspace_rows(self.adapted, self.record_batch, self.cfg.subspace_k, step, self.wall())
        every = self.cfg.intruders_every
        if self.intruders and step > 0 and (step == self.cfg.steps or (every and step % every == 0)):
            self.rows += self.intruders.rows(self.adapted, step, self.wall())
        self.flush()

    def evaluate(self, step: int) -> None:
        """Accuracy, mean score and held-out loss on the test and dev splits (each item's score too, keyed by its
        position in the split); at the end, the loss on the forgetting text. Step 0 is the base model's numbers,
        measured before the adapters were attached (`before`), on every rank alike: nothing to gather."""
        if step == 0:
            self._before()
            return
        for split in SPLIT_METRICS:
            self._evaluate_split(step, split)
        if step == self.cfg.steps and self.loss and self.forget_batches:
            after = self.through_root(lambda: held_out_loss(self.adapted, self.loss, self.forget_batches))
            self.rows.append(row(step, self.wall(), FORGET_LOSS, after))

    def _evaluate_split(self, step: int, split: str) -> None:
        if self.eval_data.split(split):
            scores = self.through_root(lambda: item_scores(self.adapted.model, self.tokenizer, self.eval_data, split,
                                                           max_new_tokens=self.cfg.max_new_tokens))
            self._scores(step, split, scores)
        if self.loss and self.eval_batches.get(split):
            held_out = self.through_root(lambda: held_out_loss(self.adapted, self.loss, self.eval_batches[split]))
            self.rows.append(row(step, self.wall(), SPLIT_METRICS[split][2], held_out))

    def _before(self) -> None:
        if self.before is None:
            return
        for split, scores in self.before.scores.items():
            self._scores(0, split, scores)
        self.rows += [row(0, self.wall(), SPLIT_METRICS[split][2], v) for split, v in self.before.losses.items()]
        if self.before.forget is not None:
            self.rows.append(row(0, self.wall(), FORGET_LOSS, self.before.forget))

    def _scores(self, step: int, split: str, scores: list[float]) -> None:
        """A split's accuracy and mean score, and each item's (when item records are on)."""
        accuracy, score, _ = SPLIT_METRICS[split]
        wall, (acc, mean) = self.wall(), summary(scores)
        self.rows += [row(step, wall, accuracy, acc), row(step, wall, score, mean)]
        if self.cfg.item_records:
            self.rows += [row(step, wall, name, v, module=split, idx=k) for k, s in enumerate(scores)
                          for name, v in ((ITEM_EXACT, float(s >= 1.0)), (ITEM_SCORE, s))]

    def flush(self) -> None:
        if self.rows and self.writer:
            self.writer.append(self.run_id, self.rows)
        self.rows = []

    @contextlib.contextmanager
    def ending(self) -> Iterator[None]:
        """Finish the run (the writer's one bookkeeping): `finished` with its adapter saved, or `cancelled` /
        `failed` with a sentence, keeping every row recorded so far."""
        with self.writer.finishing(self.run_id, keep=self.flush) if self.writer else contextlib.nullcontext():
            try:
                yield
            except Cancelled:
                raise RunCancelled(f"Run {self.run_id} was cancelled; its data up to the cancel is kept.") from None
            self.flush()
            self.adapted.save(output_dir(self.cfg, self.run_id), main=bool(self.writer))


class RunCancelled(GeodiagError):
    """A stop requested by Cancel, Ctrl-C or SIGTERM: the run ends cancelled, not failed."""

    run_status = "cancelled"


class NullRecorder:
    """What ranks other than 0 record: nothing."""

    run_id = ""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg

    def steps(self, progress: bool) -> range:
        return range(1, self.cfg.steps + 1)

    def initial(self) -> None: ...
    def log(self, step: int, logs: dict[str, float], optimizer: torch.optim.Optimizer) -> None: ...
    def gid(self, step: int) -> None: ...
    def record(self, step: int) -> None: ...
    def evaluate(self, step: int) -> None: ...
    def flush(self) -> None: ...

    @contextlib.contextmanager
    def ending(self) -> Iterator[None]:
        try:
            yield
        except Cancelled:
            raise GeodiagError("Cancelled by request.") from None


def output_dir(cfg: TrainConfig, run_id: str) -> Path:
    return Path(cfg.output_dir) if cfg.output_dir else Path(cfg.store).parent / "adapters" / run_id
