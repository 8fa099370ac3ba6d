"""Manifold geometry: ManifoldLoRA Fig. 3, probe coverage, and subspace angles between ΔW, gradient and probe."""

import streamlit as st

from geodiag.ui import (
    figure_section,
    load_figure_data,
    load_metrics,
    runs_or_stop,
    selected,
    step_picker,
    store_path,
    through_entry,
)

through_entry()

st.title("Manifold geometry")
runs = runs_or_stop()
ids = selected(runs)
data = load_figure_data(store_path(), "manifold", tuple(ids[:1]))
step = step_picker(data, "geometry/participation_ratio", "geometry-step") if not data.empty else None
st.caption("PR = (Σλ)² / Σλ² of the block outputs on the fixed record batch; n tokens is shown on hover. "
           "With n < h the PR is bounded by n − 1.")
figure_section("manifold", ids[:1], runs, step=step, data=data, height=640)

coverage = load_metrics(store_path(), tuple(ids[:1]), ("probe/activation_coverage",))
if not coverage.empty:
    last = coverage[coverage["step"] == coverage["step"].max()]
    st.metric("Probe activation coverage (mean over layers, last record)", f"{last['value'].mean():.1%}",
              help="Share of the centred input-activation variance inside span(Q). A random subspace of the "
                   "same size covers p/h.")

st.subheader("Subspace angles (beyond the papers)")
st.caption("Principal angles between the top-k subspaces of ΔW, of the full fine-tuning gradient of W on the "
           "record batch, and of the probe basis Q. 90° = orthogonal.")
figure_section("subspace", ids[:1], runs, step=step)
