"""Running a sweep's cells: each is `geodiag train --config CELL.json` in its own process (a crash or an
out-of-memory in one cell loses only that cell), one after another or `workers` at a time. The store says which
cells are done: a rerun skips finished cells, leaves cells that are running elsewhere alone, and retries the
rest (failed, cancelled, interrupted: the unfinished run is replaced by the new one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from geodiag.errors import GeodiagError
from geodiag.store import Reader, Writer
from geodiag.sweep.plan import Resolved
from geodiag.sweep.record import folder_of
from geodiag.sweep.spec import SELECT, Cell


@dataclass
class Outcome:
    finished: list[str] = field(default_factory=list)  # labels of cells run to the end now
    skipped: list[str] = field(default_factory=list)  # done before, or running elsewhere
    failed: dict[str, str] = field(default_factory=dict)  # cell -> the last line it printed


CELL_COLUMNS = ["run_id", "label", "seed", "lr", "status"]


def sweep_runs(store: str, sweep_id: str) -> pd.DataFrame:
    """The store's training runs of one sweep (run_id, label, seed, lr, status), newest first."""
    try:
        runs = Reader(store).runs()
    except GeodiagError:
        return pd.DataFrame(columns=CELL_COLUMNS)
    runs = runs[(runs["kind"] == "train") & (runs["sweep"] == sweep_id)]
    return runs[CELL_COLUMNS].reset_index(drop=True)


def runs_of(runs: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    """A cell's runs: its label and seed at its learning rate."""
    lr = pd.to_numeric(runs["lr"], errors="coerce").to_numpy(float)
    return runs[(runs["label"] == cell.label) & (runs["seed"] == cell.seed) & np.isclose(lr, cell.lr, rtol=1e-9,
                                                                                          atol=0)]


def todo(resolved: Resolved, cells: list[Cell]) -> tuple[list[Cell], list[Cell]]:
    """(cells to run, cells to skip). Unfinished runs of a cell to run are deleted first, so a cell keeps one run."""
    runs = sweep_runs(resolved.spec.store, resolved.spec.id)
    run, skip = [], []
    for cell in cells:
        mine = runs_of(runs, cell)
        if (mine["status"].isin(["finished", "running"])).any():
            skip.append(cell)
            continue
        for rid in mine["run_id"]:  # failed, cancelled, interrupted or stale: replaced by the retry
            Writer(resolved.spec.store).delete_run(rid)
        run.append(cell)
    return run, skip


def run_cells(resolved: Resolved, cells: list[Cell], *, workers: int = 1, progress: bool = True,
              tick: Callable[[], None] | None = None) -> Outcome:
    """Run the cells not already done, `workers` processes at a time. A final cell whose rate its label's selection
    chooses waits until that label has no selection cell left to run, then goes to the front of the queue: labels
    finish one after another, so a long sweep stopped midway leaves whole labels rather than a selection phase for
    every label, and the workers never idle while a later label still has cells. `tick()` runs every 0.2 s (the
    sweep's record beats)."""
    folder, outcome = sweep_folder(resolved), Outcome()
    pending, skipped = todo(resolved, [c for c in cells if not c.chosen_later])
    waiting = [c for c in cells if c.chosen_later]
    outcome.skipped += [name(c) for c in skipped]
    bar = tqdm(total=len(pending) + len(waiting), desc=f"sweep {resolved.spec.id}", unit="run",
               disable=not progress)
    live: dict[subprocess.Popen, Cell] = {}
    try:
        while pending or live or waiting:
            waiting, pending = _release(resolved, waiting, pending, list(live.values()), outcome, bar)
            while pending and len(live) < workers:
                cell = pending.pop(0)
                live[start(resolved, cell, folder, threads=threads_per_worker(workers))] = cell
                bar.set_postfix_str(", ".join(name(c) for c in live.values()))
            time.sleep(0.2)
            if tick:
                tick()
            for proc in [p for p in live if p.poll() is not None]:
                _collect(proc, live.pop(proc), folder, outcome, bar)
    except BaseException:  # Ctrl-C or SIGTERM: stop the cells (their runs end as cancelled), then stop
        for proc in live:
            proc.terminate()
        for proc in live:
            proc.wait()
        raise
    finally:
        bar.close()
    return outcome


def _release(resolved: Resolved, waiting: list[Cell], pending: list[Cell], live: list[Cell], outcome: Outcome,
             bar: tqdm) -> tuple[list[Cell], list[Cell]]:
    """(still waiting, the queue): the final cells of labels whose selection has nothing left to run get their
    chosen rate and go first; those whose label has no rate (a selection cell failed, or runs elsewhere) are
    reported as failed with the reason."""
    busy = {c.label for c in [*pending, *live] if c.phase == SELECT}
    free = [c for c in waiting if c.label not in busy]
    if not free:
        return waiting, pending
    ready, blocked = resolved.finalise(free)
    run, skip = todo(resolved, ready)
    outcome.skipped += [name(c) for c in skip]
    for cell, why in blocked.items():
        outcome.failed[cell] = why
        tqdm.write(f"{cell} not run: {why}.", file=sys.stderr)
    bar.total -= len(skip) + len(blocked)
    bar.refresh()
    return [c for c in waiting if c.label in busy], run + pending


def _collect(proc: subprocess.Popen, cell: Cell, folder: Path, outcome: Outcome, bar: tqdm) -> None:
    bar.update()
    if proc.returncode == 0:
        outcome.finished.append(name(cell))
        return
    lines = log_path(folder, cell).read_text(errors="replace").strip().splitlines()
    outcome.failed[name(cell)] = lines[-1] if lines else f"exit status {proc.returncode}"
    tqdm.write(f"{name(cell)} failed: {outcome.failed[name(cell)]}", file=sys.stderr)


def start(resolved: Resolved, cell: Cell, folder: Path, *, threads: int) -> subprocess.Popen:
    """`geodiag train --config` on the cell's config, its output in the sweep's log folder. An argument list, never
    a shell string."""
    config = folder / "cells" / f"{stem(cell)}.json"
    config.write_text(json.dumps(resolved.config(cell), indent=2))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with open(log_path(folder, cell), "w") as log:
        return subprocess.Popen([sys.executable, "-m", "geodiag", "train", "--config", str(config), "--no-progress"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)


def threads_per_worker(workers: int) -> int:
    """The cores shared out: 2 processes of 1 thread beat 1 process of 2 threads on a 2-core CPU (measured 1.57x)."""
    return max(1, (os.cpu_count() or 1) // workers)


def sweep_folder(resolved: Resolved) -> Path:
    """<store folder>/sweeps/<id>/: each cell's config and log."""
    folder = folder_of(resolved.spec)
    (folder / "cells").mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    return folder


def log_path(folder: Path, cell: Cell) -> Path:
    return folder / "logs" / f"{stem(cell)}.log"


def stem(cell: Cell) -> str:
    return f"{cell.index:03d}-{cell.label}-s{cell.seed}" + (f"-lr{cell.lr:g}" if cell.selection else "")


def name(cell: Cell) -> str:
    return f"{cell.label} s{cell.seed}" + (f" lr {cell.lr:g}" if cell.selection else "")
