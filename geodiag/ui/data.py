"""Cached store reads for the pages: short-lived, so a running run's new points appear within seconds."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from geodiag import figures, lab
from geodiag.lab import verdicts
from geodiag.names import EVAL_ACCURACY, LOSS_LM
from geodiag.store import Reader

# Short enough that a running run's new points appear within seconds, long enough to spare the file.
LIVE_TTL_S = 3


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def load_runs(store: str) -> pd.DataFrame:
    return Reader(store).runs()


def load_figure_data(store: str, name: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    """A figure's rows; every sweep figure of one sweep shares one outcome table (the Results page draws five)."""
    if figures.get_figure(name).scope == "sweep" and run_ids:
        return load_sweep_rows(store, run_ids[0]).outcomes
    return _figure_data(store, name, run_ids)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def _figure_data(store: str, name: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    return figures.figure_data(Reader(store), name, list(run_ids))


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def load_sweep_rows(store: str, sweep_or_run: str) -> lab.SweepRows:
    """One row per finished run of a sweep (given its id or one of its runs), what every sweep figure draws, and
    the runs' per-item test scores, what the verdicts compare: one read for the whole Results page."""
    reader = Reader(store)
    return lab.sweep_rows(reader, lab.sweep_run_ids(reader, sweep_or_run))


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def load_metrics(store: str, run_ids: tuple[str, ...], names: tuple[str, ...]) -> pd.DataFrame:
    return Reader(store).metrics(list(run_ids), names)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def load_verdicts(store: str, sweep: str, reference: str) -> pd.DataFrame:
    """`geodiag results`'s table; a GeodiagError (no reference run, nothing finished) passes through."""
    return verdicts(Reader(store), sweep, reference, load_sweep_rows(store, sweep))


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def selected_rates(store: str, model: str) -> dict[str, float]:
    """method -> the learning rate the store's newest sweep on `model` selected for it."""
    return lab.selected_rates(Reader(store), model)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def runs_with(store: str, names: tuple[str, ...]) -> set[str]:
    """Ids of the runs that recorded any of these metrics."""
    return Reader(store).runs_with(names)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def run_summary(store: str) -> pd.DataFrame:
    """The runs table with outcomes: steps done, final LM loss, accuracy before and after."""
    reader = Reader(store)
    runs = reader.runs()
    ends = reader.ends(list(runs["run_id"]), (LOSS_LM, EVAL_ACCURACY))
    ends = ends[ends["module"] == ""].set_index("run_id")  # run-level scalars: one row per run and metric
    lm, acc = ends[ends["name"] == LOSS_LM], ends[ends["name"] == EVAL_ACCURACY]
    out = runs[["run_id", "name", "status", "kind", "method", "model", "task"]].copy()
    out["steps"] = out["run_id"].map(lm["last_step"])
    out["final_loss"] = out["run_id"].map(lm["last"])
    out["acc_before"] = out["run_id"].map(acc["first"])
    out["acc_after"] = out["run_id"].map(acc["last"])
    out["trainable_params"] = pd.to_numeric(runs["trainable_params"], errors="coerce").astype("Int64")
    out["sweep"], out["seed"] = runs["sweep"], runs["seed"]
    out["started_at"], out["ended_at"] = runs["started_at"], runs["ended_at"]
    return out
