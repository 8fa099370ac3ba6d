"""A sweep in the store. The whole-sweep command (`geodiag sweep`, from a terminal or the Launch page) records itself
as one run of kind `sweep`, id = the sweep id: its process (Cancel reaches it), its status (running, finished,
failed when a cell failed, cancelled, interrupted when killed) and its plan (cells per phase, steps, workers, the
spec file a Resume reruns). Its cells are the train runs naming it. Slurm array tasks (`--cell K`) run one cell each
and leave the record alone. Torch-free."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from geodiag.config import TrainConfig
from geodiag.errors import GeodiagError
from geodiag.store import SWEEP_KIND, Reader, Writer
from geodiag.sweep.spec import SELECT, SweepSpec


def folder_of(spec: SweepSpec) -> Path:
    """<store folder>/sweeps/<id>/: the spec, each cell's config and log."""
    return Path(spec.store).resolve().parent / "sweeps" / spec.id


def resume_args(spec_file: str | Path, store: str | Path, workers: int) -> list[str]:
    """`geodiag sweep`'s arguments (after the command name) that rerun a recorded sweep: finished cells are skipped."""
    return ["sweep", str(spec_file), "--store", str(store), "--workers", str(workers)]


def plan_of(spec: SweepSpec) -> dict:
    """What the record keeps of the plan: cells per phase and the steps they train in all."""
    cells = spec.cells()
    default = TrainConfig().steps
    return {"select": sum(c.phase == SELECT for c in cells), "final": sum(c.phase != SELECT for c in cells),
            "steps": sum(int(c.train.get("steps") or default) for c in cells)}


class Record:
    """The live record's handle: `beat()` on every tick of the runner; `fail(message)` ends it failed."""

    def __init__(self, writer: Writer, run_id: str):
        self.writer, self.run_id, self.failed = writer, run_id, None

    def beat(self) -> None:
        self.writer.beat(self.run_id)

    def fail(self, message: str) -> None:
        self.failed = message

    def ending(self) -> tuple[str, str | None]:
        return ("failed", self.failed) if self.failed else ("finished", None)


@contextlib.contextmanager
def recorded(spec: SweepSpec) -> Iterator[Record]:
    """The sweep's record, running for the block; a second process driving the same sweep is refused."""
    live = running(spec.store, spec.id)
    if live is not None:
        raise GeodiagError(f"Sweep {spec.id} is already running (process {live}); cancel it or wait for it to end.")
    store = Path(spec.store).resolve()
    spec_file = folder_of(spec) / "sweep.json"
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps({**spec.to_mapping(), "store": str(store), "workers": spec.workers}, indent=2,
                                    default=str))
    config = {"sweep": spec.id, "plan": plan_of(spec), "workers": spec.workers, "spec_file": str(spec_file),
              "resume": resume_args(spec_file, store, spec.workers), "budget": str(spec.budget or "")}
    writer = Writer(spec.store)
    writer.create_run(run_id=spec.id, name=spec.id, kind=SWEEP_KIND, model=spec.train.get("model", TrainConfig().model),
                      task=spec.train.get("task", TrainConfig().task), config=config)  # a rerun replaces the record
    record = Record(writer, spec.id)
    with writer.finishing(spec.id, ending=record.ending):
        try:
            yield record
        except KeyboardInterrupt as e:  # Cancel (SIGTERM) or Ctrl-C: the message the record keeps
            raise Stopped(f"Cancelled; its unfinished cells were stopped. Resume it (Launch page) or rerun "
                          f"`geodiag sweep {spec_file}`: "
                          "finished cells are skipped.") from e


class Stopped(KeyboardInterrupt):
    """A sweep stopped by Cancel or Ctrl-C (still a KeyboardInterrupt, so the command exits as interrupted)."""


def running(store: str | Path, sweep_id: str) -> int | None:
    """The process id of the live process driving this sweep, if any."""
    try:
        sweeps = Reader(store).sweeps()
    except GeodiagError:
        return None  # no store yet
    live = sweeps[(sweeps["run_id"] == sweep_id) & (sweeps["status"] == "running")]
    return None if live.empty else int(live["pid"].iloc[0])


def tracked(stack: contextlib.ExitStack, spec: SweepSpec, records: list[Record]) -> Callable[[], None]:
    """A callback that opens the record on `stack` when called (once the sweep's checks have passed), putting its
    handle in `records`."""
    return lambda: records.append(stack.enter_context(recorded(spec)))
