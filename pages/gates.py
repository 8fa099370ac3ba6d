"""Gates and effective rank: ManifoldLoRA Fig. 1, with a slider over the recorded steps."""

import streamlit as st

from geodiag.names import DEAD_GATE, GATE_VALUE
from geodiag.ui import page, stepped_figure

runs, ids = page("Gates and effective rank")
st.caption(f"Dead gates are those below {DEAD_GATE} (ManifoldLoRA §3). Panel (d) overlays the runs chosen for "
           "comparison.")
stepped_figure("gates", GATE_VALUE, ids, runs, height=640)
