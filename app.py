"""geodiag dashboard: `make app` or `geodiag dashboard --store S` (or a bare `streamlit run app.py` with
GEODIAG_STORE pointing at a store).

The entry sets the page up, draws the shared sidebar (store, run filters, the run to show, runs to compare,
smoothing) and hands over to the page files in pages/. Nothing here imports torch.
"""

import os

import streamlit as st

from geodiag.errors import GeodiagError
from geodiag.store import DEFAULT_STORE
from geodiag.ui import FILTERS, PAGES, filtered, labels, load_runs

st.set_page_config(page_title="geodiag", page_icon=":material/insights:", layout="wide")

st.session_state.setdefault("store", os.environ.get("GEODIAG_STORE", DEFAULT_STORE))
st.session_state.setdefault("smoothing", 0.0)
# keep the selection when a page that does not show these widgets is open (Streamlit drops unused keys)
for key in ("run", "compare", "smoothing", "store"):
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]


def sidebar() -> None:
    st.text_input("Store", key="store", help="The DuckDB file that `geodiag` runs write to.")
    try:
        runs = load_runs(st.session_state["store"])
    except GeodiagError:
        return  # the page shows the sentence
    if runs.empty:
        return
    with st.expander("Filter runs", expanded=False):
        for col in FILTERS:
            values = sorted(v for v in runs[col].dropna().unique())
            st.multiselect(col.capitalize(), values, key=f"filter-{col}")
    shown = filtered(runs)
    if shown.empty:
        st.warning("No run matches the filters.")
        shown = runs
    names = labels(runs)
    ids = list(shown["run_id"])
    linked = st.query_params.get("run")  # a deep link: ?run=RUN_ID
    if linked in ids and not st.session_state.get("linked"):
        st.session_state["run"], st.session_state["linked"] = linked, True
    if st.session_state.get("run") not in ids:
        st.session_state["run"] = ids[0]
    st.selectbox("Run", ids, key="run", format_func=lambda r: names.get(r, r))
    st.multiselect("Compare with", [r for r in ids if r != st.session_state["run"]], key="compare",
                   format_func=lambda r: names.get(r, r), help="Curves of these runs are overlaid.")
    st.slider("Smoothing (EMA)", 0.0, 0.99, key="smoothing", step=0.01,
              help="Exponential moving average of curves; the raw curve stays faint behind.")


with st.sidebar:
    sidebar()

st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES]).run()
