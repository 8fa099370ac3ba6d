"""geodiag dashboard: `make app`, or `streamlit run app.py` with GEODIAG_STORE pointing at a store."""

import os

import streamlit as st

from geodiag.store import DEFAULT_STORE

st.set_page_config(page_title="geodiag", page_icon=":material/insights:", layout="wide")

st.session_state.setdefault("store", os.environ.get("GEODIAG_STORE", DEFAULT_STORE))
with st.sidebar:
    st.text_input("Store", key="store", help="The DuckDB file that `geodiag` runs write to.")

pages = [st.Page("pages/runs.py", title="Runs", icon=":material/table_rows:", default=True)]
st.navigation(pages).run()
