"""GID (RaLoRA, paper 003): heatmap layers x module types, GID vs LoRA rank, GID over steps, threshold
estimators, and the GID-Fisher correlation table."""

import streamlit as st

from geodiag.figures.rank import fisher_table
from geodiag.ui import figure_section, load_figure_data, runs_or_stop, selected, step_picker, store_path, through_entry

through_entry()

st.title("Gradient intrinsic dimensionality")
runs = runs_or_stop()
ids = selected(runs)
rank = st.number_input("LoRA reference rank", 1, 256, 8, key="gid-rank")
data = load_figure_data(store_path(), "gid", tuple(ids[:1]))
step = step_picker(data, "gid/erank", "gid-step") if not data.empty else None
st.caption("GID = entropy effective rank of the accumulated full fine-tuning gradient of each weight (003 Eq. 2). "
           "It depends on the number of batches, batch size and sequence length recorded with the run.")
figure_section("gid", ids[:1], runs, step=step, data=data, lora_rank=int(rank), height=640)

st.subheader("GID vs Fisher information (003 Table 8)")
table = fisher_table(load_figure_data(store_path(), "fisher", tuple(ids[:1])))
if table.empty:
    st.info("No GID-Fisher correlations in this run. Record them with `geodiag analyze gid`.")
else:
    st.dataframe(table, hide_index=True, column_config={
        "module_type": "module", "pearson_log": st.column_config.NumberColumn("Pearson(GID, log F)", format="%+.2f"),
        "pearson_inv": st.column_config.NumberColumn("Pearson(GID, 1/F)", format="%+.2f"),
        "spearman": st.column_config.NumberColumn("Spearman(GID, F)", format="%+.2f")})
    with st.expander("Export the table"):
        figure_section("fisher", ids[:1], runs)
