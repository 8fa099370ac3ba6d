"""Runs: every run in the store with its status and model."""

import pandas as pd
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
table = runs[COLUMNS].copy()
table["trainable_params"] = pd.to_numeric(table["trainable_params"], errors="coerce").astype("Int64")  # blank if none
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "trainable_params": st.column_config.NumberColumn("trainable params", format="localized"),
    "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
    "ended_at": st.column_config.DatetimeColumn("ended", format="YYYY-MM-DD HH:mm:ss"),
    "run_id": st.column_config.TextColumn("run id"),
})
