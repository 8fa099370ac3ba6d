"""Runs: every run in the store with its status and model."""

import streamlit as st

from geodiag.errors import GeodiagError
from geodiag.ui import load_runs

COLUMNS = ["name", "status", "kind", "method", "model", "task", "trainable_params", "started_at",
           "ended_at", "run_id"]

st.title("Runs")
store = st.session_state.get("store", "")
try:
    runs = load_runs(store)
except GeodiagError as e:
    st.error(str(e))
    st.stop()

if runs.empty:
    st.info(f"The store {store} has no runs yet. Runs appear here as soon as a geodiag run writes to it.")
    st.stop()

st.caption(f"{len(runs)} run(s) in {store}")
st.dataframe(runs[COLUMNS], hide_index=True, width="stretch")
