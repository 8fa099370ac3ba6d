"""Sweeps in the dashboard: the plan the Launch page's Sweep form shows (from `geodiag sweep --plan --json`), a
running sweep as one item with its progress and Cancel, a stopped one with Resume, and the sweeps table of the Runs
page. Everything is read from the store, so a sweep started in a terminal shows the same way. (The form itself is
on the Launch page, beside the Train form: it reads the method registry and the sweep's schema, which this
package does not import.)"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from geodiag.errors import GeodiagError
from geodiag.lab.progress import SweepProgress, duration, progress_of
from geodiag.store import Reader
from geodiag.ui import launch as launcher
from geodiag.ui.data import LIVE_TTL_S
from geodiag.ui.selection import store_path


def plan_view(plan: dict) -> None:
    """Cells per phase, each label's size at the budget, the estimated wall time and where it comes from."""
    cells = pd.DataFrame(plan["cells"])
    phases = plan["phases"]
    c = st.columns(4)
    c[0].metric("runs", len(cells))
    c[1].metric("selection / final", f"{phases['select']} / {phases['final']}")
    c[2].metric("parameter budget", f"{plan['target']:,}" if plan.get("target") else "each method's own")
    c[3].metric("estimated time", duration(plan["estimate"]["seconds"]), help=plan["estimate"]["source"])
    labels = cells.groupby("label", sort=False).agg(method=("method", "first"), params=("params", "first"),
                                                    sized_by=("sized_by", "first"), runs=("cell", "count"),
                                                    seeds=("seed", lambda s: ", ".join(map(str, sorted(set(s))))))
    labels["params"] = [f"{p:,.0f}" if pd.notna(p) else f"after the shared {k} analysis" for p, k in
                        zip(labels["params"], labels["sized_by"], strict=True)]
    st.dataframe(labels.drop(columns="sized_by").reset_index(), hide_index=True, width="stretch")
    st.caption(f"Sweep {plan['sweep']} on {plan['model']}, {plan['workers']} worker(s). The time is estimated at "
               f"{plan['estimate']['seconds_per_step']:.2f} s per step from {plan['estimate']['source']}.")


def sweep_item(record: dict, progress: SweepProgress) -> None:
    """A running sweep as one item: phase, cells by state, steps, ETA, Cancel."""
    head, button = st.columns([4, 1])
    head.markdown(f"**{record['name']}** · sweep · {progress.phase} · pid {record['pid']}")
    if button.button("Cancel", key=f"cancel-sweep-{record['run_id']}"):
        try:
            launcher.cancel(record["pid"], group=False)
            st.toast(f"Cancelling sweep {record['name']}: its cells stop at their next step and keep their data.")
        except GeodiagError as e:
            st.error(str(e))
    eta = "estimating the time left..." if progress.eta_s is None else f"about {duration(progress.eta_s)} left"
    st.progress(progress.fraction, text=f"step {progress.steps_done:,} / {progress.steps_total:,} · {eta}")
    st.caption(counts(progress))


def counts(progress: SweepProgress) -> str:
    phases = f"selection {progress.select[0]}/{progress.select[1]} · " if progress.select[1] else ""
    return (f"{progress.queued} queued · {progress.running} running · {progress.finished} finished · "
            f"{progress.failed} failed or cancelled · {phases}final seeds {progress.final[0]}/{progress.final[1]}")


def stopped_item(record: dict, progress: SweepProgress, start_resume) -> None:
    """A sweep that stopped before its end (cancelled, failed, killed), with Resume."""
    head, button = st.columns([4, 1])
    head.markdown(f"**{record['name']}** · sweep · {record['status']} · {progress.finished} of {progress.cells} "
                  "cells finished")
    if record.get("message"):
        head.caption(str(record["message"]))
    if button.button("Resume", key=f"resume-sweep-{record['run_id']}",
                     help="rerun it: finished cells are skipped, the others run again"):
        start_resume(record)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def sweeps_table(store: str) -> pd.DataFrame:
    """Every sweep of the store with its progress, newest first (the Runs page)."""
    reader = Reader(store)
    records, runs = reader.sweeps(), reader.runs()
    rows = []
    for rec in records.to_dict("records"):
        p = progress_of(reader, rec, runs)
        rows.append({"sweep": rec["run_id"], "status": rec["status"], "phase": p.phase, "cells": p.cells,
                     "finished": p.finished, "failed": p.failed, "progress": p.fraction, "started_at":
                     rec["started_at"], "ended_at": rec["ended_at"]})
    return pd.DataFrame(rows, columns=["sweep", "status", "phase", "cells", "finished", "failed", "progress",
                                       "started_at", "ended_at"])


def log_dir() -> Path:
    return Path(store_path()).resolve().parent / "logs"
