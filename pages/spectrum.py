"""ΔW spectrum: ManifoldLoRA Fig. 5, with the step selectable; DoRA's magnitude/direction split for DoRA runs;
intruder dimensions of the selected runs."""

import streamlit as st

from geodiag.names import DORA_MAGNITUDE, INTRUDERS, SINGULAR_VALUE
from geodiag.ui import page, run_record, stepped_figure

runs, ids = page("ΔW spectrum")
st.caption("Computed from the adapter factors (QR of B and Aᵀ), never forming the dense ΔW. At step 0 B = 0, so "
           "the spectrum is empty until training moves it. After PiSSA or OLoRA initialisation ΔW = s(BA − B₀A₀), "
           "rank ≤ 2r, from the factors too.")
stepped_figure("spectrum", SINGULAR_VALUE, ids[:1], runs, height=680)
if run_record(runs, ids[0]).get("method") == "dora":
    st.subheader("DoRA: magnitude and direction")
    st.caption("For DoRA the spectrum above is the direction update s·B·A's (exact, from the factors). W′ − W is "
               "not low-rank (each output row is rescaled by m / ‖W + sBA‖), so its change is shown as DoRA's "
               "magnitude change ΔM and direction change ΔD per module (Liu et al. 2024, §2.2), both exact: "
               "computed from W and the factors in float64.")
    stepped_figure("dora", DORA_MAGNITUDE, ids[:1], runs, height=380)
st.subheader("Intruder dimensions")
st.caption("Shuttleworth et al. 2024: of the top-k singular vectors of the fine-tuned W + ΔW, how many have no "
           "counterpart among the pre-trained W's (largest |cos| below ε; k = 10, ε = 0.5 by default, as peft). "
           "W's singular vectors come from one SVD before training; W + ΔW's top-k from Lanczos iterations on the "
           "operator, never a dense SVD. Select a full fine-tuning run beside an adapter run to compare them.")
stepped_figure("intruders", INTRUDERS, ids, runs, height=380)
