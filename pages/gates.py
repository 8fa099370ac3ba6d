"""Gates and effective rank: ManifoldLoRA Fig. 1, with a slider over the recorded steps."""

import streamlit as st

from geodiag.ui import figure_section, load_figure_data, runs_or_stop, selected, step_picker, store_path, through_entry

through_entry()

st.title("Gates and effective rank")
runs = runs_or_stop()
ids = selected(runs)
data = load_figure_data(store_path(), "gates", tuple(ids))
step = step_picker(data[data["run_id"] == ids[0]], "gate/value", "gates-step") if not data.empty else None
st.caption("Dead gates are those below 0.05 (paper 002 §3). Panel (d) overlays the runs chosen for comparison.")
figure_section("gates", ids, runs, step=step, data=data, height=640)
