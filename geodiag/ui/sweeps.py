"""Sweeps in the dashboard: the Launch page's Sweep form (rendered from the sweep's option schema and the train
options, planned by `geodiag sweep --plan --json` before it starts), a running sweep as one item with its progress
and Cancel, a stopped one with Resume, and the sweeps table of the Runs page. Everything is read from the store, so a
sweep started in a terminal shows the same way."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from geodiag.config import TrainConfig
from geodiag.errors import GeodiagError
from geodiag.lab.progress import SweepProgress, duration, progress_of
from geodiag.methods import METHODS
from geodiag.options import schema
from geodiag.store import Reader
from geodiag.sweep.options import SweepOptions
from geodiag.sweep.spec import ALIASES, PER_CELL
from geodiag.ui import launch as launcher
from geodiag.ui.data import LIVE_TTL_S
from geodiag.ui.forms import changed, grid, widget
from geodiag.ui.selection import store_path

HEAD = ("model", "task", "dataset")
# what the form starts from: a small comparison at LoRA r=8 that finishes on a laptop (the CLI's defaults stand for
# every field not named here)
FORM_DEFAULTS = {"methods": ["lora", "ralora", "manifold"], "seeds": ["0"], "budget": "lora-r=8", "steps": 100}


def sweep_form(tasks: list[str], start) -> None:
    """The Sweep mode of the Launch page; `start(args)` spawns the command."""
    own = {s.name: s for s in schema(SweepOptions)}
    train = [s for s in schema(TrainConfig) if s.group != "file" and s.name not in (*PER_CELL, "store")]
    by = {s.name: s for s in train}
    head = st.columns([1, 2, 1])
    values = {}
    with head[0]:
        values["model"] = widget(by["model"], "s-model")
    with head[1]:
        methods = widget(own["methods"], "s-methods", choices=[*METHODS, *ALIASES], default=FORM_DEFAULTS["methods"])
    with head[2]:
        values["task"] = widget(by["task"], "s-task", choices=tasks)
    basic = [s for s in own.values() if s.group == "basic" and s.name != "methods"]
    options = {"methods": methods, **grid(basic, "s", defaults=FORM_DEFAULTS)}
    st.markdown("**Training, for every cell**")
    values |= grid([s for s in train if s.group == "basic" and s.name not in HEAD], "s", defaults=FORM_DEFAULTS)
    if st.toggle("Advanced options", key="s-advanced"):
        values |= grid([s for s in [*train, *own.values()] if s.group == "advanced" or s.name == "dataset"], "s")
    options |= {k: values.pop(k) for k in list(values) if k in own}
    args = launcher.command("sweep", {**changed(list(own.values()), options), **changed(train, values),
                                      "model": values["model"], "store": store_path()})
    planned = st.session_state.get("s-plan")
    if st.button("Plan the sweep", key="s-plan-button", type="secondary" if planned else "primary"):
        with st.spinner("Planning: sizing every method on the model (and timing a few steps when this store has "
                        "no run on it)..."):
            try:
                st.session_state["s-plan"] = planned = (args, launcher.plan(args))
            except GeodiagError as e:
                st.session_state.pop("s-plan", None)
                st.error(str(e))
                return
    if not planned:
        return
    if planned[0] != args:
        st.caption("The options have changed since the last plan: plan again to start.")
        return
    plan_view(planned[1])
    if st.button("Start the sweep", type="primary", key="s-start"):
        st.session_state.pop("s-plan", None)
        start(args)


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
