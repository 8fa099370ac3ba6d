"""GID (RaLoRA): heatmap layers x module types, GID vs LoRA rank, GID over steps, threshold
estimators, and the GID-Fisher correlation table."""

import streamlit as st

from geodiag.figures.rank import fisher_table
from geodiag.names import GID, R_REF
from geodiag.ui import figure_section, load_figure_data, page, runs_with_data, stepped_figure, store_path

runs, ids = page("Gradient intrinsic dimensionality")
rank = st.number_input("LoRA reference rank", 1, 256, R_REF, key="gid-rank")
st.caption("GID = entropy effective rank of the accumulated full fine-tuning gradient of each weight (RaLoRA Eq. 3). "
           "It depends on the number of batches, batch size and sequence length recorded with the run.")
stepped_figure("gid", GID, ids[:1], runs, lora_rank=int(rank), height=640)

st.subheader("GID vs Fisher information (RaLoRA Table 8)")
fisher_ids = runs_with_data("fisher", ids[:1], runs)
table = fisher_table(load_figure_data(store_path(), "fisher", tuple(fisher_ids)))
if table.empty:
    st.info("No GID-Fisher correlations in this run. Record them with `geodiag analyze gid`.")
else:
    st.dataframe(table, hide_index=True, column_config={
        "module_type": "module", "pearson_log": st.column_config.NumberColumn("Pearson(GID, log F)", format="%+.2f"),
        "pearson_inv": st.column_config.NumberColumn("Pearson(GID, 1/F)", format="%+.2f"),
        "spearman": st.column_config.NumberColumn("Spearman(GID, F)", format="%+.2f")})
    with st.expander("Export the table"):
        figure_section("fisher", fisher_ids, runs)
