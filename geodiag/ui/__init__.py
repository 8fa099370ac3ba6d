"""Streamlit glue shared by the pages: cached store reads. Imports neither torch nor the engine."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from geodiag.store import Reader

# Short enough that a running run's new points appear within seconds, long enough to spare the file.
LIVE_TTL_S = 3


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def load_runs(store: str) -> pd.DataFrame:
    return Reader(store).runs()
