"""Manifold geometry: ManifoldLoRA Fig. 3, probe coverage, and subspace angles between ΔW, gradient and probe."""

import streamlit as st

from geodiag.names import PARTICIPATION_RATIO, PARTICIPATION_RATIO_N, PROBE_COVERAGE
from geodiag.ui import figure_section, load_metrics, page, run_record, stepped_figure, store_path

runs, ids = page("Manifold geometry")
st.caption("PR = (Σλ)² / Σλ² of the block outputs on the fixed record batch; n tokens is shown on hover. "
           "With n < h the PR is bounded by n − 1.")
step = stepped_figure("manifold", PARTICIPATION_RATIO, ids[:1], runs, height=640)
n = load_metrics(store_path(), tuple(ids[:1]), (PARTICIPATION_RATIO_N,))
h = run_record(runs, ids[0])["config"].get("hidden_size")
if h and not n.empty and n["value"].min() < h:
    st.warning(f"The record batch has {int(n['value'].min())} tokens, fewer than the hidden size h = {h}: each "
               "participation ratio is bounded by n − 1. Raise `--record-batch` for an unbounded estimate.")

coverage = load_metrics(store_path(), tuple(ids[:1]), (PROBE_COVERAGE,))
if not coverage.empty:
    last = coverage[coverage["step"] == coverage["step"].max()]
    st.metric("Probe activation coverage (mean over layers, last record)", f"{last['value'].mean():.1%}",
              help="Share of the centred input-activation variance inside span(Q). A random subspace of the "
                   "same size covers p/h.")

st.subheader("Subspace angles (beyond the papers)")
st.caption("Principal angles between the top-k subspaces of ΔW, of the full fine-tuning gradient of W on the "
           "record batch, and of the probe basis Q. 90° = orthogonal.")
figure_section("subspace", ids[:1], runs, step=step)
