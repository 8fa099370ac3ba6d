"""Intrinsic dimension (GeLoRA): TwoNN profile with error bars, PR, and the implied ranks."""

import streamlit as st

from geodiag.ui import figure_section, page

runs, ids = page("Intrinsic dimension")
scale = st.slider("GeLoRA budget scale", 0.25, 8.0, 1.0, 0.25, key="id-scale",
                  help="Multiplies r_i = max(d_{i+1} − d_i, 0) + 1 to match another method's parameter budget.")
st.caption("TwoNN on non-padding token states entering and leaving each block (hidden_states[0..L]); error bars "
           "are bootstrap standard errors and n is on hover. The rank rule is as reported for GeLoRA (Ed-dib et al.): "
           "its full text and code were not available, so the rule is the one its reviews agree on.")
figure_section("id", ids[:1], runs, scale=float(scale), height=420)
