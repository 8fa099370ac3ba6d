"""Results: which method wins at equal parameter budget, over seeds, and whether the geometry says why."""

import math

import pandas as pd
import streamlit as st

from geodiag.errors import GeodiagError
from geodiag.figures.registry import get_figure
from geodiag.lab import METHOD, edge_sentence, power_sentence
from geodiag.lab.outcomes import SUMMARIES
from geodiag.lab.stats import spearman
from geodiag.report import report_zip
from geodiag.store import Reader
from geodiag.ui import figure_section, load_verdicts, page, store_path

UNDERPOWERED = 0.03  # published differences between LoRA variants are 1-3 accuracy points
HEIGHT = 430  # tall enough for seven methods' legend entries beside a figure

def verdict_table(sweep: str, data: pd.DataFrame) -> None:
    """The numbers `geodiag results` prints: each method against the reference, paired on seeds and items."""
    labels = list(dict.fromkeys(data["label"]))
    reference = st.selectbox("Compare with", labels, index=labels.index("lora") if "lora" in labels else 0,
                             key="results-reference")
    try:
        table = load_verdicts(store_path(), sweep, reference)
    except GeodiagError as e:
        st.warning(str(e))
        return
    st.subheader(f"Verdicts against {reference}")
    mde = table["mde"].dropna()
    (st.warning if mde.empty or mde.min() > UNDERPOWERED else st.info)(power_sentence(table))
    if edge := edge_sentence(table):
        st.warning(edge)
    shown = table.assign(seeds=table["seeds"].map(len), **{c: 100 * table[c] for c in (
        "accuracy", "accuracy_se", "delta", "ci_low", "ci_high", "mde")})
    st.dataframe(shown[["label", "lr", "seeds", "n_items", "params", "accuracy", "accuracy_se", "delta", "ci_low",
                        "ci_high", "mde", "p_holm", "verdict", "forgetting"]], hide_index=True, column_config={
        "label": "method", "lr": st.column_config.NumberColumn("chosen lr", format="%.0e"),
        "n_items": "test items", "params": st.column_config.NumberColumn("parameters", format="localized"),
        "accuracy": st.column_config.NumberColumn("accuracy (%)", format="%.1f"),
        "accuracy_se": st.column_config.NumberColumn("± s.e.", format="%.1f"),
        "delta": st.column_config.NumberColumn(f"Δ vs {reference} (points)", format="%+.1f"),
        "ci_low": st.column_config.NumberColumn("95% low", format="%+.1f"),
        "ci_high": st.column_config.NumberColumn("95% high", format="%+.1f"),
        "mde": st.column_config.NumberColumn("MDE (points)", format="%.1f"),
        "p_holm": st.column_config.NumberColumn("p (Holm)", format="%.3f"),
        "forgetting": st.column_config.NumberColumn("forgetting", format="%+.3f")})
    st.caption(f"Δ is method − {reference} on the same seeds and test items, averaged; its interval and p-value come "
               f"from a {METHOD}: items are shared by every seed, so they are crossed with seeds, not nested in "
               "them. MDE: the smallest true difference this comparison detects with 80% power at 5%. p is "
               "Holm-adjusted across methods; the verdict is better or worse only below 0.05. Runs without "
               "per-item records compare at the seed level (0 test items).")
    if any(math.isnan(x) for x in table["ci_low"].iloc[1:]):
        st.caption("A method with one seed and no per-item records has no interval.")


def appendix(sweep: str) -> None:
    """`geodiag report` as one zip: every figure, the LaTeX table, the CSVs, appendix.pdf."""
    with st.expander("Appendix for a paper (what `geodiag report` writes, as one zip)"):
        c = st.columns(3)
        fmt = c[0].selectbox("Figures as", ["pdf", "svg", "png"], key="report-format")
        width = c[1].selectbox("Width", ["double", "single"], key="report-width", format_func=lambda w: {
            "double": "two-column (6.75 in)", "single": "one-column (3.25 in)"}[w])
        reference = st.session_state.get("results-reference", "lora")
        if c[2].button("Prepare the appendix", key="report-build"):
            bar = st.progress(0.0, text="starting")
            try:
                blob = report_zip(Reader(store_path()), sweep, fmt=fmt, width=width, reference=reference,
                                  on_step=lambda done, total, what: bar.progress(done / total, text=what))
                st.session_state["report-zip"] = (sweep, blob)
            except GeodiagError as e:
                st.error(str(e))
        made = st.session_state.get("report-zip")
        if made and made[0] == sweep:
            st.download_button("Download the appendix (zip)", made[1], file_name=f"appendix-{sweep}.zip",
                               mime="application/zip", key="report-download")
        st.caption(f"`geodiag report {sweep} --out DIR` writes the same folder: every figure at column width with "
                   "the CSV behind it, results.tex (booktabs), results.csv, README.md and appendix.pdf.")


runs, ids = page("Results")
train = runs[(runs["kind"] == "train") & (runs["status"] == "finished")]
sweeps = list(dict.fromkeys(train["sweep"].dropna()))  # newest first
if not sweeps:
    st.info("No sweep in this store yet. `geodiag sweep --methods lora,ralora,manifold --seeds 0,1,2 --budget "
            "lora-r=8` trains every method at LoRA r=8's parameter count, over seeds; the sidebar's run is shown "
            "alone meanwhile.")
own = runs.loc[runs["run_id"] == ids[0], "sweep"].iloc[0]
default = sweeps.index(own) if own in sweeps else 0
if st.session_state.get("results-sweep") not in sweeps:  # e.g. the Runs page's choice, once deleted
    st.session_state.pop("results-sweep", None)
kept = "results-sweep" in st.session_state  # Streamlit warns when a widget gets both an index and a session value
sweep = st.selectbox("Sweep", sweeps, key="results-sweep", **({} if kept else {"index": default})) if sweeps else ids[0]
data = figure_section("results", [sweep], runs, height=HEIGHT)
if data is not None:
    st.caption(get_figure("results").caption)
    verdict_table(sweep, data)
    appendix(sweep)
    st.subheader("Learning-rate selection")
    figure_section("lr", [sweep], runs, height=HEIGHT)
    st.caption(get_figure("lr").caption)
    st.subheader("Learning against forgetting")
    figure_section("forgetting", [sweep], runs, height=HEIGHT)
    st.caption(get_figure("forgetting").caption)
    st.subheader("Geometry against outcome")
    gain, forgetting = st.tabs(["against the accuracy gain", "against forgetting"])
    with gain:
        figure_section("outcome", [sweep], runs, height=HEIGHT)
    with forgetting:
        figure_section("outcome-forgetting", [sweep], runs, height=HEIGHT)
    rows = [{"summary": text, **spearman(data[col], data["gain"])} for col, text in SUMMARIES.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
        "rho": st.column_config.NumberColumn("Spearman ρ vs accuracy gain", format="%.2f"),
        "lo": st.column_config.NumberColumn("95% low", format="%.2f"),
        "hi": st.column_config.NumberColumn("95% high", format="%.2f"), "n": "runs"})
    st.caption("ρ over runs (seeds and a selection's learning rates count separately: the rate moves geometry and "
               "outcome together), with a Fisher-z interval (Bonett & Wright's variance); n is "
               "the number of runs with both values. Below n = 4 there is no interval, and with a dozen runs even "
               "ρ = 0.5 is compatible with no relation.")

