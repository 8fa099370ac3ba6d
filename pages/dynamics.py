"""Training dynamics: ManifoldLoRA Fig. 2 (loss decomposition) and Fig. 4 (every scalar curve, runs overlaid)."""

import streamlit as st

from geodiag.ui import figure_section, page

runs, ids = page("Training dynamics")
st.caption("Smoothing and the runs to overlay are in the sidebar; the raw curve stays faint behind the EMA.")
st.subheader("Loss decomposition (ManifoldLoRA Fig. 2)")
figure_section("dynamics", ids[:1], runs, height=620)
st.subheader("Every scalar curve (Fig. 4)" + (f", {len(ids)} runs overlaid" if len(ids) > 1 else ""))
figure_section("curves", ids, runs)
