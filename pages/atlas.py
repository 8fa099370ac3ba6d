"""Rank allocation atlas: every allocation recorded for the selected run's model on one layer axis."""

import streamlit as st

from geodiag.figures.rank import atlas_series
from geodiag.ui import figure_section, page

runs, ids = page("Rank allocation atlas")
model = runs.loc[runs["run_id"] == ids[0], "model"].iloc[0]
st.caption(f"Every allocation recorded for **{model}**: RaLoRA and RaLoRA-Pro (blocks × rank), LoRA+GID, GeLoRA "
           "(as reported), EVA's (peft), ManifoldLoRA's learned effective rank and AdaLoRA's final ranks, with the "
           "measured GID dotted. No paper shows them side by side.")
data = figure_section("atlas", ids[:1], runs, height=460)
if data is not None:
    s = atlas_series(data)
    summary = s.groupby("method").agg(modules=("module", "nunique"), mean_rank=("rank", "mean"),
                                      params=("params", "sum")).reset_index()
    summary.loc[summary["params"] == 0, "params"] = None
    st.dataframe(summary, hide_index=True, column_config={
        "mean_rank": st.column_config.NumberColumn("mean rank", format="%.1f"),
        "params": st.column_config.NumberColumn("trainable parameters", format="localized")})
