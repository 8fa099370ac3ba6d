"""Results: which method wins at equal parameter budget, over seeds, and whether the geometry says why."""

import pandas as pd
import streamlit as st

from geodiag.lab.outcomes import SUMMARIES
from geodiag.lab.stats import paired_differences, per_method, spearman
from geodiag.ui import figure_section, page

runs, ids = page("Results")
train = runs[(runs["kind"] == "train") & (runs["status"] == "finished")]
sweeps = list(dict.fromkeys(train["sweep"].dropna()))  # newest first
if not sweeps:
    st.info("No sweep in this store yet. `geodiag sweep --methods lora,ralora,manifold --seeds 0,1,2 --budget "
            "lora-r=8` trains every method at LoRA r=8's parameter count, over seeds; the sidebar's run is shown "
            "alone meanwhile.")
own = runs.loc[runs["run_id"] == ids[0], "sweep"].iloc[0]
default = sweeps.index(own) if own in sweeps else 0
sweep = st.selectbox("Sweep", sweeps, index=default, key="results-sweep") if sweeps else ids[0]
data = figure_section("results", [sweep], runs, height=430)
if data is not None:
    st.caption("A small point per run; a diamond per method at its mean over seeds, ± one standard error (n in "
               "the legend); the dotted line joins the Pareto front of the means: no other method has as few "
               "parameters and as much accuracy (or as little loss). Parameters are the budget's count (ManifoldLoRA: "
               "its adapters, not its training-time probes; AdaLoRA: its final budget).")
    table = per_method(data, "accuracy").merge(per_method(data, "eval_loss")[["label", "mean", "se"]], on="label",
                                               suffixes=("", "_loss"))
    diffs = paired_differences(data, "accuracy")
    table = table.merge(diffs, on="label", how="left")
    st.subheader("Mean ± standard error over seeds, and the paired difference to LoRA")
    st.dataframe(table, hide_index=True, column_config={
        "label": "method", "n": "seeds", "mean": st.column_config.NumberColumn("accuracy", format="%.3f"),
        "se": st.column_config.NumberColumn("± s.e.", format="%.3f"),
        "params": st.column_config.NumberColumn("parameters", format="localized"),
        "mean_loss": st.column_config.NumberColumn("held-out loss", format="%.3f"),
        "se_loss": st.column_config.NumberColumn("± s.e.", format="%.3f"),
        "n_pairs": "paired seeds", "diff": st.column_config.NumberColumn("Δ accuracy vs LoRA", format="%+.3f"),
        "lo": st.column_config.NumberColumn("95% t low", format="%+.3f"),
        "hi": st.column_config.NumberColumn("95% t high", format="%+.3f")})
    st.caption("Δ is method − LoRA on the same seed, averaged over the seeds both have; the interval is Student's t "
               "with n − 1 degrees of freedom (none with one pair). With 3 seeds an interval spans ±4.3 standard "
               "errors of the difference: read it as a hint, not a verdict.")
    st.subheader("Geometry against outcome")
    figure_section("outcome", [sweep], runs, height=360)
    rows = [{"summary": text, **spearman(data[col], data["gain"])} for col, text in SUMMARIES.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
        "rho": st.column_config.NumberColumn("Spearman ρ vs accuracy gain", format="%.2f"),
        "lo": st.column_config.NumberColumn("95% low", format="%.2f"),
        "hi": st.column_config.NumberColumn("95% high", format="%.2f"), "n": "runs"})
    st.caption("ρ over runs (seeds count separately), with a Fisher-z interval (Bonett & Wright's variance); n is "
               "the number of runs with both values. Below n = 4 there is no interval, and with a dozen runs even "
               "ρ = 0.5 is compatible with no relation.")
