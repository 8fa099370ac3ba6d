"""A sweep's progress from its record and its cells: known answers for the counts, steps, phase and ETA."""

import pandas as pd

from geodiag.lab.progress import duration, sweep_progress

T0 = pd.Timestamp("2026-01-01 12:00:00")


def cell(run_id: str, status: str, phase: str, started_s: float, steps: int = 10) -> dict:
    return {"run_id": run_id, "status": status, "started_at": T0 + pd.Timedelta(seconds=started_s),
            "config": {"steps": steps, "selection": {"grid": [1e-3, 3e-3], "seeds": [0], "phase": phase}}}


def test_counts_steps_phase_and_eta_from_this_invocations_pace():
    record = {"run_id": "s", "status": "running", "started_at": T0,
              "config": {"plan": {"select": 4, "final": 2, "steps": 60}}}
    cells = pd.DataFrame([cell("a", "finished", "select", 1), cell("b", "finished", "select", 2),
                          cell("c", "running", "select", 60), cell("d", "failed", "select", 3),
                          cell("e", "finished", "final", -3600)])  # e: finished by an earlier invocation
    p = sweep_progress(record, cells, {"c": 4, "d": 7}, now=T0 + pd.Timedelta(seconds=120))
    assert (p.queued, p.running, p.finished, p.failed, p.cells) == (1, 1, 3, 1, 6)
    assert (p.steps_done, p.steps_total) == (10 + 10 + 4 + 10, 60)  # a failed cell's steps do not count
    assert p.select == (2, 4) and p.final == (1, 2) and p.phase == "selection"
    # 24 steps in the 120 s since this invocation started (e's 10 came before it): 26 left at 5 s each
    assert p.eta_s == 26 * 120 / 24
    assert abs(p.fraction - 34 / 60) < 1e-12


def test_phase_follows_the_record_and_the_analyses():
    record = {"run_id": "s", "status": "running", "started_at": T0, "config": {"plan": {"select": 0, "final": 1,
                                                                                      "steps": 10}}}
    empty = pd.DataFrame(columns=["run_id", "status", "started_at", "config"])
    waiting = sweep_progress(record, empty, {}, analysing=True, now=T0 + pd.Timedelta(seconds=5))
    assert waiting.phase == "shared analyses" and waiting.queued == 1 and waiting.eta_s is None
    assert sweep_progress(record, empty, {}).phase == "final seeds"
    assert sweep_progress({**record, "status": "cancelled"}, empty, {}).phase == "cancelled"
    done = pd.DataFrame([cell("a", "finished", "final", 1)])
    assert sweep_progress({**record, "status": "finished"}, done, {}).phase == "done"


def test_durations_read_in_the_unit_that_fits():
    assert [duration(s) for s in (42, 600, 3 * 3600)] == ["42 s", "10 min", "3.0 h"]
