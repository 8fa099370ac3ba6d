"""Runs: every run in the store with its outcome; filters (sidebar), links into the other pages,
rename and delete with confirmation."""


import streamlit as st

from geodiag.errors import GeodiagError
from geodiag.store import Writer
from geodiag.ui import PAGES, filtered, labels, load_runs, run_summary, runs_or_stop, store_path, through_entry
from geodiag.ui.sweeps import sweeps_table


def sweeps_section() -> None:
    """The store's sweeps with their progress (started here or in a terminal), each a way into its Results."""
    try:
        table = sweeps_table(store_path())
    except GeodiagError as e:
        st.error(str(e))
        return
    if table.empty:
        return
    st.subheader("Sweeps")
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "progress": st.column_config.ProgressColumn("steps done", min_value=0.0, max_value=1.0, format="percent"),
        "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
        "ended_at": st.column_config.DatetimeColumn("ended", format="YYYY-MM-DD HH:mm:ss")})
    ready = list(table.loc[table["finished"] > 0, "sweep"])
    if not ready:
        st.caption("No cell of these sweeps has finished yet: their Results appear with the first finished cell.")
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Sweep", ready, key="runs-sweep")
    if c2.button("Open its Results", key="runs-open-results"):
        st.session_state["results-sweep"] = chosen
        st.switch_page("pages/results.py")


through_entry()

st.title("Runs")
runs = runs_or_stop()
shown = filtered(runs)
table = run_summary(store_path()).set_index("run_id").reindex(shown["run_id"]).reset_index()
st.caption(f"{len(shown)} of {len(runs)} run(s) in {store_path()}; filter them in the sidebar.")
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "run_id": st.column_config.TextColumn("run id"),
    "steps": st.column_config.NumberColumn("steps", format="%d"),
    "final_loss": st.column_config.NumberColumn("final LM loss", format="%.3f"),
    "acc_before": st.column_config.NumberColumn("accuracy before", format="percent"),
    "acc_after": st.column_config.NumberColumn("accuracy after", format="percent"),
    "trainable_params": st.column_config.NumberColumn("trainable params", format="localized"),
    "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
    "ended_at": st.column_config.DatetimeColumn("ended", format="YYYY-MM-DD HH:mm:ss"),
})

sweeps_section()

failed = shown[shown["status"].isin(["failed", "interrupted", "stale"]) & shown["message"].notna()]
for r in failed.itertuples():
    st.warning(f"**{r.name}** ({r.status}): {r.message}")

st.subheader("Open a run")
names = labels(runs)
current = st.session_state.get("run")
st.write(f"Showing **{names.get(current, current)}** in the figure pages (choose another in the sidebar).")
cols = st.columns(4)
for i, p in enumerate(p for p in PAGES if not p.default):
    cols[i % 4].page_link(p.path, label=p.title, icon=p.icon, help=p.shows)

with st.expander("Rename or delete a run"):
    target = st.selectbox("Run", list(runs["run_id"]), format_func=lambda r: names.get(r, r), key="manage-run")
    new = st.text_input("New name", key="manage-name")
    c1, c2 = st.columns(2)
    if c1.button("Rename", disabled=not new.strip(), key="manage-rename"):
        try:
            Writer(store_path()).rename_run(target, new)
            load_runs.clear()
            run_summary.clear()
            st.success(f"Renamed to {new.strip()!r}.")
        except GeodiagError as e:
            st.error(str(e))
    sure = c2.checkbox(f"Yes, delete {names.get(target, target)} and all its metrics", key="manage-sure")
    if c2.button("Delete", type="primary", disabled=not sure, key="manage-delete"):
        try:
            Writer(store_path()).delete_run(target)
            load_runs.clear()
            run_summary.clear()
            st.success(f"Deleted {target}.")
            st.rerun()
        except GeodiagError as e:
            st.error(str(e))

