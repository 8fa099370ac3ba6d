"""ΔW spectrum: ManifoldLoRA Fig. 5, with the step selectable."""

import streamlit as st

from geodiag.names import SINGULAR_VALUE
from geodiag.ui import page, stepped_figure

runs, ids = page("ΔW spectrum")
st.caption("Computed from the adapter factors (QR of B and Aᵀ), never forming the dense ΔW. At step 0 B = 0, so "
           "the spectrum is empty until training moves it.")
stepped_figure("spectrum", SINGULAR_VALUE, ids[:1], runs, height=680)
