"""Streamlit glue shared by the pages: cached store reads, the shared selection, one figure section with
its export controls. Imports neither torch nor the engine; pages only wire data to figures through here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from geodiag import figures
from geodiag.errors import GeodiagError
from geodiag.store import Reader

# Short enough that a running run's new points appear within seconds, long enough to spare the file.
LIVE_TTL_S = 3


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def load_runs(store: str) -> pd.DataFrame:
    return Reader(store).runs()


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def load_figure_data(store: str, name: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    return figures.figure_data(Reader(store), name, list(run_ids))


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def load_metrics(store: str, run_ids: tuple[str, ...], names: tuple[str, ...]) -> pd.DataFrame:
    return Reader(store).metrics(list(run_ids), names)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def run_summary(store: str) -> pd.DataFrame:
    """The runs table with outcomes: steps done, final LM loss, accuracy before and after."""
    reader = Reader(store)
    runs = reader.runs()
    m = reader.metrics(list(runs["run_id"]), ("loss/lm", "eval/accuracy"))
    lm = m[m["name"] == "loss/lm"].sort_values("step").groupby("run_id")
    acc = m[m["name"] == "eval/accuracy"].sort_values("step").groupby("run_id")["value"]
    out = runs[["run_id", "name", "status", "kind", "method", "model", "task"]].copy()
    out["steps"] = out["run_id"].map(lm["step"].max())
    out["final_loss"] = out["run_id"].map(lm["value"].last())
    out["acc_before"] = out["run_id"].map(acc.first())
    out["acc_after"] = out["run_id"].map(acc.last())
    out["trainable_params"] = pd.to_numeric(runs["trainable_params"], errors="coerce").astype("Int64")
    out["started_at"], out["ended_at"] = runs["started_at"], runs["ended_at"]
    return out


def through_entry() -> None:
    """Make sure app.py (sidebar, navigation) runs. Streamlit routes the very first session of a fresh server
    through its legacy pages/ folder handling until some session has called st.navigation, which would run
    a page on its own; switch that off and rerun, so that app.py routes to this same page."""
    from streamlit.runtime.pages_manager import PagesManager

    # app.py seeds "store" before routing; its absence means this page was run on its own
    if PagesManager.uses_pages_directory and "store" not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page(title: str) -> tuple[pd.DataFrame, list[str]]:
    """The common top of a figure page: route through app.py, title, the store's runs (or a sentence and
    stop), and the selected run ids (the sidebar's run first, then the runs to compare)."""
    through_entry()
    st.title(title)
    runs = runs_or_stop()
    return runs, selected(runs)


def store_path() -> str:
    return st.session_state.get("store", "")


def runs_or_stop() -> pd.DataFrame:
    """The store's runs, or a readable message (missing, locked, corrupt store) and the page stops."""
    try:
        runs = load_runs(store_path())
    except GeodiagError as e:
        st.error(str(e))
        st.stop()
    if runs.empty:
        st.info(f"The store {store_path()} has no runs yet. Start one on the Launch page or with "
                "`geodiag train --model tiny --steps 20`.")
        st.stop()
    return runs


def selected(runs: pd.DataFrame) -> list[str]:
    """The run chosen in the sidebar first, then the runs picked for comparison; stale ids are dropped."""
    ids = set(runs["run_id"])
    primary = st.session_state.get("run")
    chosen = [primary] if primary in ids else [runs["run_id"].iloc[0]]
    chosen += [r for r in st.session_state.get("compare", []) if r in ids and r not in chosen]
    return chosen


labels = figures.run_labels  # one label rule for the pages and `geodiag export`
FILTERS = ("method", "model", "task", "status")


def filtered(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that pass the sidebar's filters (a filter with nothing chosen passes everything)."""
    for col in FILTERS:
        chosen = st.session_state.get(f"filter-{col}") or []
        if chosen:
            runs = runs[runs[col].isin(chosen)]
    return runs


def run_record(runs: pd.DataFrame, run_id: str) -> dict:
    import json

    rec = runs[runs["run_id"] == run_id].iloc[0].to_dict()
    cfg = rec.get("config")
    rec["config"] = json.loads(cfg) if isinstance(cfg, str) and cfg else (cfg if isinstance(cfg, dict) else {})
    return rec


def step_picker(data: pd.DataFrame, metric: str, key: str, label: str = "Step") -> int | None:
    """A slider over the steps at which `metric` was recorded (None if there is nothing to choose)."""
    steps = sorted(int(s) for s in data.loc[data["name"] == metric, "step"].unique())
    if len(steps) < 2:
        return steps[0] if steps else None
    return st.select_slider(label, options=steps, value=steps[-1], key=key)


def stepped_figure(name: str, metric: str, run_ids: list[str], runs: pd.DataFrame, **kw) -> int | None:
    """A figure drawn at one step, with a slider over the steps at which the first run recorded `metric`."""
    try:
        data = load_figure_data(store_path(), name, tuple(run_ids))
    except GeodiagError as e:
        st.error(str(e))
        return None
    first = data[data["run_id"] == run_ids[0]]
    step = step_picker(first, metric, f"{name}-step") if not first.empty else None
    figure_section(name, run_ids, runs, step=step, data=data, **kw)
    return step


def figure_section(name: str, run_ids: list[str], runs: pd.DataFrame, *, step: int | None = None,
                   data: pd.DataFrame | None = None, height: int | None = None, **options) -> pd.DataFrame | None:
    """Load, build and show one registered figure with its export controls; or say which command records
    its data. Returns the data (None if there was none)."""
    spec = figures.get_figure(name)
    if data is None:
        try:
            data = load_figure_data(store_path(), name, tuple(run_ids))
        except GeodiagError as e:
            st.error(str(e))
            return None
    if data.empty:
        st.info(f"No data for **{spec.title}** in the selected run. Record it with `{spec.hint}`.")
        return None
    opts = {**figures.figure_options(name, run_record(runs, run_ids[0])), **options}
    fig = figures.build_figure(name, data, step=step, smoothing=st.session_state.get("smoothing", 0.0),
                               labels=labels(runs), **opts)
    if not fig.data:
        st.info(f"No data for **{spec.title}** in the selected run. Record it with `{spec.hint}`.")
        return None
    if height:
        fig.update_layout(height=height)
    st.plotly_chart(fig, key=f"chart-{name}", config={"displaylogo": False})
    _export_controls(name, fig, data, run_ids[0])
    return data


def _export_controls(name: str, fig, data: pd.DataFrame, run_id: str) -> None:
    spec = figures.get_figure(name)
    with st.expander(f"Export {spec.name} for a paper"):
        c1, c2, c3, c4 = st.columns(4)
        fmt = c1.selectbox("Format", figures.FORMATS, key=f"fmt-{name}")
        column = c2.selectbox("Width", ["double", "single"], key=f"col-{name}",
                              format_func=lambda c: {"double": "two-column (7.16 in)",
                                                     "single": "one-column (3.5 in)"}[c])
        font = c3.selectbox("Font", ["serif", "sans"], key=f"font-{name}")
        size = c4.number_input("Font size (pt)", 5, 24, 8, key=f"size-{name}")
        style = figures.PaperStyle(column=column, font=font, font_size=int(size))
        stem = figures.safe_name(f"{name}-{run_id}")
        st.download_button("Data (CSV)", data.to_csv(index=False).encode(), file_name=f"{stem}.csv",
                           mime="text/csv", key=f"csv-{name}")
        folder = st.text_input("Save into folder", value=str(Path("exports").resolve()), key=f"dir-{name}",
                               help="The figure (every format) and its CSV are written inside this folder only.")
        b1, b2 = st.columns(2)
        if b1.button(f"Prepare {fmt.upper()} download", key=f"prep-{name}"):
            with st.spinner(f"Rendering {fmt.upper()} with Chromium..."):
                try:
                    st.session_state[f"bytes-{name}"] = (fmt, figures.render_bytes(fig, fmt, style=style,
                                                                                    rows=spec.rows))
                except GeodiagError as e:
                    st.error(str(e))
        if f"bytes-{name}" in st.session_state:
            kind, blob = st.session_state[f"bytes-{name}"]
            st.download_button(f"Download {kind.upper()}", blob, file_name=f"{stem}.{kind}", key=f"dl-{name}")
        if b2.button("Save PDF, SVG, PNG and CSV", key=f"save-{name}"):
            with st.spinner("Writing the files with Chromium..."):
                try:
                    paths = figures.export_figure(fig, data, folder, stem, style=style, rows=spec.rows)
                    st.success("Wrote " + ", ".join(p.name for p in paths) + f" in {Path(folder).resolve()}")
                except GeodiagError as e:
                    st.error(str(e))
