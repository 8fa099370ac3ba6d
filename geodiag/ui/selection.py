"""What every page shares: routing through app.py, the store path, its runs (or a sentence), the sidebar's
selection and filters."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from geodiag import figures
from geodiag.errors import GeodiagError
from geodiag.store import parsed_config
from geodiag.ui.data import load_runs

FILTERS = ("method", "model", "task", "status")
labels = figures.run_labels  # one label rule for the pages and `geodiag export`


def through_entry() -> None:
    """Make sure app.py (sidebar, navigation) runs. Under a bare `streamlit run app.py`, Streamlit routes the
    very first session of a fresh server through its legacy pages/ folder handling until some session has
    called st.navigation, which would run a page on its own; switch that off and rerun, so that app.py routes
    to this same page. (`geodiag dashboard` switches it off before the server starts: geodiag.cli.dashboard.)"""
    from streamlit.runtime.pages_manager import PagesManager

    # app.py seeds "store" before routing; its absence means this page was run on its own
    if PagesManager.uses_pages_directory and "store" not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page(title: str) -> tuple[pd.DataFrame, list[str]]:
    """The common top of a figure page: route through app.py, title, the store's runs (or a sentence and
    stop), and the selected run ids (the sidebar's run first, then the runs to compare)."""
    through_entry()
    st.title(title)
    runs = runs_or_stop()
    return runs, selected(runs)


def store_path() -> str:
    return st.session_state.get("store", "")


def runs_or_stop() -> pd.DataFrame:
    """The store's runs, or a readable message (missing, locked, corrupt store) and the page stops."""
    try:
        runs = load_runs(store_path())
    except GeodiagError as e:
        st.error(str(e))
        st.stop()
    if runs.empty:
        st.info(f"The store {store_path()} has no runs yet. Start one on the Launch page or with "
                "`geodiag train --model tiny --steps 20`.")
        st.stop()
    return runs


def selected(runs: pd.DataFrame) -> list[str]:
    """The run chosen in the sidebar first, then the runs picked for comparison; stale ids are dropped."""
    ids = set(runs["run_id"])
    primary = st.session_state.get("run")
    chosen = [primary] if primary in ids else [runs["run_id"].iloc[0]]
    chosen += [r for r in st.session_state.get("compare", []) if r in ids and r not in chosen]
    return chosen


def filtered(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that pass the sidebar's filters (a filter with nothing chosen passes everything)."""
    for col in FILTERS:
        chosen = st.session_state.get(f"filter-{col}") or []
        if chosen:
            runs = runs[runs[col].isin(chosen)]
    return runs


def run_record(runs: pd.DataFrame, run_id: str) -> dict:
    rec = runs[runs["run_id"] == run_id].iloc[0].to_dict()
    rec["config"] = parsed_config(rec.get("config"))
    return rec
