"""How far a sweep is, from the store alone (so a sweep started in a terminal shows the same as one started from
the Launch page): its record (`Reader.sweeps()`: status, plan) and its cells (the train runs naming it). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from geodiag.names import LOSS_LM
from geodiag.store import Reader, parsed_config

UNFINISHED = ("failed", "cancelled", "interrupted", "stale")


@dataclass(frozen=True)
class SweepProgress:
    sweep: str
    status: str  # the record's: running, finished, failed, cancelled, interrupted
    queued: int
    running: int
    finished: int
    failed: int  # failed, cancelled or killed cells (a Resume reruns them)
    steps_done: int
    steps_total: int
    eta_s: float | None  # None: nothing timed yet
    phase: str  # shared analyses | selection | final seeds | done
    select: tuple[int, int]  # selection cells finished, planned
    final: tuple[int, int]  # final cells finished, planned

    @property
    def cells(self) -> int:
        return self.queued + self.running + self.finished + self.failed

    @property
    def fraction(self) -> float:
        return min(1.0, self.steps_done / self.steps_total) if self.steps_total else 0.0


def sweep_progress(record: dict, cells: pd.DataFrame, last_step: dict[str, int], analysing: bool = False,
                   now: pd.Timestamp | None = None) -> SweepProgress:
    """`record`: the sweep's row (its config parsed or not); `cells`: its train runs (run columns plus the parsed
    `config`); `last_step`: run id -> the last step with a recorded LM loss (running cells)."""
    plan = parsed_config(record.get("config")).get("plan") or {}
    configs = [parsed_config(c) for c in cells["config"]]
    phase = pd.Series([(c.get("selection") or {}).get("phase", "final") for c in configs], index=cells.index,
                      dtype=object)
    steps = pd.Series([int(c.get("steps") or 0) for c in configs], index=cells.index, dtype=float)
    done, live = cells["status"] == "finished", cells["status"] == "running"
    n_select, n_final = int(plan.get("select", 0)), int(plan.get("final", 0))
    counts = {"finished": int(done.sum()), "running": int(live.sum()), "failed": int(cells["status"].isin(
        UNFINISHED).sum())}
    steps_done = int(steps[done].sum()) + sum(int(last_step.get(r, 0)) for r in cells.loc[live, "run_id"])
    total = int(plan.get("steps") or steps.sum())
    select = (int((done & (phase == "select")).sum()), n_select)
    final = (int((done & (phase != "select")).sum()), n_final)
    return SweepProgress(
        str(record["run_id"]), str(record["status"]),
        max(0, n_select + n_final - sum(counts.values())), counts["running"], counts["finished"], counts["failed"],
        steps_done, total, _eta(record, cells, steps, last_step, total - steps_done, now), _phase(
            record, select, final, analysing), select, final)


def _eta(record: dict, cells: pd.DataFrame, steps: pd.Series, last_step: dict[str, int], remaining: int,
         now: pd.Timestamp | None) -> float | None:
    """Remaining steps at the pace this run of the sweep has kept: steps done per second of wall time since the
    record started (workers share the wall time, so the pace already counts them)."""
    started = pd.Timestamp(record["started_at"])
    if pd.isna(started) or remaining <= 0:
        return 0.0 if remaining <= 0 else None
    now = now if now is not None else pd.Timestamp.now(tz="UTC").tz_localize(None)
    since = cells[pd.to_datetime(cells["started_at"]) >= started]  # this invocation's cells (a Resume skips others)
    mine = int(steps[since.index[since["status"] == "finished"]].sum()) + sum(
        int(last_step.get(r, 0)) for r in since.loc[since["status"] == "running", "run_id"])
    elapsed = (now - started).total_seconds()
    return remaining * elapsed / mine if mine > 0 and elapsed > 0 else None


def _phase(record: dict, select: tuple[int, int], final: tuple[int, int], analysing: bool) -> str:
    if record["status"] != "running":
        return "done" if record["status"] == "finished" else str(record["status"])
    if analysing:
        return "shared analyses"
    return "selection" if select[0] < select[1] else "final seeds"


def progress_of(reader: Reader, record: dict, runs: pd.DataFrame | None = None) -> SweepProgress:
    """A sweep's progress read from the store (`runs`: `reader.runs()` when the caller has it already)."""
    runs = reader.runs() if runs is None else runs
    mine = runs[runs["sweep"] == record["run_id"]]
    cells = mine[mine["kind"] == "train"]
    live = list(cells.loc[cells["status"] == "running", "run_id"])
    loss = reader.metrics(live, (LOSS_LM,)) if live else pd.DataFrame(columns=["run_id", "step"])
    last = loss.groupby("run_id")["step"].max().astype(int).to_dict() if not loss.empty else {}
    analysing = bool(((mine["kind"] == "analysis") & (mine["status"] == "running")).any())
    return sweep_progress(record, cells, last, analysing)


def duration(seconds: float) -> str:
    """12 s, 14 min, 3.2 h."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
