"""Gates and effective rank: ManifoldLoRA Fig. 1, with a slider over the recorded steps."""

import streamlit as st

from geodiag.ui import page, stepped_figure

runs, ids = page("Gates and effective rank")
st.caption("Dead gates are those below 0.05 (paper 002 §3). Panel (d) overlays the runs chosen for comparison.")
stepped_figure("gates", "gate/value", ids, runs, height=640)
