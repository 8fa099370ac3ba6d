"""ΔW spectrum: ManifoldLoRA Fig. 5, with the step selectable."""

import streamlit as st

from geodiag.ui import figure_section, load_figure_data, runs_or_stop, selected, step_picker, store_path, through_entry

through_entry()

st.title("ΔW spectrum")
runs = runs_or_stop()
ids = selected(runs)
data = load_figure_data(store_path(), "spectrum", tuple(ids[:1]))
step = step_picker(data, "spectrum/singular_value", "spectrum-step") if not data.empty else None
st.caption("Computed from the adapter factors (QR of B and Aᵀ), never forming the dense ΔW. At step 0 B = 0, so "
           "the spectrum is empty until training moves it.")
figure_section("spectrum", ids[:1], runs, step=step, data=data, height=680)
