"""One figure section: the data (from the sidebar's run, or the newest run of its model that has any), the
figure from its builder, and the export controls beneath it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from geodiag import figures
from geodiag.errors import GeodiagError
from geodiag.ui.data import load_figure_data, runs_with
from geodiag.ui.selection import labels, run_record, store_path


def figure_section(name: str, run_ids: list[str], runs: pd.DataFrame, *, step: int | None = None,
                   data: pd.DataFrame | None = None, height: int | None = None, **options) -> pd.DataFrame | None:
    """Load, build and show one registered figure with its export controls; or say which command records
    its data. Returns the data (None if there was none)."""
    spec = figures.get_figure(name)
    if data is None:
        run_ids = runs_with_data(name, run_ids, runs)
        data = _load(name, run_ids)
    if data is None or data.empty:
        st.info(f"No data for **{spec.title}** in the selected run. Record it with `{spec.hint}`.")
        return None
    chosen = run_record(runs, run_ids[0]) if run_ids[0] in set(runs["run_id"]) else None  # not a sweep id
    opts = {**figures.figure_options(name, chosen), **options}
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


def stepped_figure(name: str, metric: str, run_ids: list[str], runs: pd.DataFrame, **kw) -> int | None:
    """A figure drawn at one step, with a slider over the steps at which the first run recorded `metric`."""
    run_ids = runs_with_data(name, run_ids, runs)
    data = _load(name, run_ids)
    if data is None:
        return None
    first = data[data["run_id"] == run_ids[0]]
    step = step_picker(first, metric, f"{name}-step") if not first.empty else None
    figure_section(name, run_ids, runs, step=step, data=data, **kw)
    return step


def runs_with_data(name: str, run_ids: list[str], runs: pd.DataFrame) -> list[str]:
    """The runs to draw: the sidebar's, or, when it recorded nothing this figure draws, the newest run of the
    same model that did (said in a caption, with a picker of every such run). Compared runs stay as they are."""
    spec = figures.get_figure(name)
    if not spec.metrics or spec.scope != "run":  # every run has scalars; the atlas, a sweep, read many runs
        return run_ids
    having = runs_with(store_path(), spec.metrics[:1])  # what the figure cannot be drawn without
    if run_ids[0] in having:
        return run_ids
    model = run_record(runs, run_ids[0])["model"]
    same = runs[(runs["model"] == model) & runs["run_id"].isin(having)]  # newest first
    eligible = list(same.sort_values("kind", key=lambda k: k != spec.prefer, kind="stable")["run_id"])
    if not eligible:
        return run_ids
    names = labels(runs)
    choice = st.selectbox(f"Run for this figure ({model})", eligible, key=f"fallback-{name}",
                          format_func=lambda r: names.get(r, r))
    which = f"the newest {spec.prefer or ''} run of {model} that has it" if choice == eligible[0] else "chosen below"
    st.caption(f"The sidebar's run **{names.get(run_ids[0], run_ids[0])}** has no data for this figure; showing "
               f"**{names.get(choice, choice)}**, {which.replace('  ', ' ')}.")
    return [choice, *run_ids[1:]]


def step_picker(data: pd.DataFrame, metric: str, key: str, label: str = "Step") -> int | None:
    """A slider over the steps at which `metric` was recorded (None if there is nothing to choose)."""
    steps = sorted(int(s) for s in data.loc[data["name"] == metric, "step"].unique())
    if len(steps) < 2:
        return steps[0] if steps else None
    return st.select_slider(label, options=steps, value=steps[-1], key=key)


def _load(name: str, run_ids: list[str]) -> pd.DataFrame | None:
    try:
        return load_figure_data(store_path(), name, tuple(run_ids))
    except GeodiagError as e:
        st.error(str(e))
        return None


def _export_controls(name: str, fig, data: pd.DataFrame, run_id: str) -> None:
    spec = figures.get_figure(name)
    with st.expander(f"Export {spec.name} for a paper"):
        c1, c2, c3, c4 = st.columns(4)
        fmt = c1.selectbox("Format", figures.FORMATS, key=f"fmt-{name}")
        column = c2.selectbox("Width", ["double", "single"], key=f"col-{name}",
                              format_func=lambda c: {"double": "two-column (6.75 in)",
                                                     "single": "one-column (3.25 in)"}[c])
        font = c3.selectbox("Font", ["serif", "sans"], key=f"font-{name}")
        size = c4.number_input("Font size (pt)", 8, 24, 8, key=f"size-{name}",
                               help="8 pt or more: print wants 7 pt at least")
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
                    st.session_state[f"bytes-{name}"] = (fmt, figures.render_bytes(fig, fmt, style=style))
                except GeodiagError as e:
                    st.error(str(e))
        if f"bytes-{name}" in st.session_state:
            kind, blob = st.session_state[f"bytes-{name}"]
            st.download_button(f"Download {kind.upper()}", blob, file_name=f"{stem}.{kind}", key=f"dl-{name}")
        if b2.button("Save PDF, SVG, PNG and CSV", key=f"save-{name}"):
            with st.spinner("Writing the files with Chromium..."):
                try:
                    paths = figures.export_figure(fig, data, folder, stem, style=style)
                    st.success("Wrote " + ", ".join(p.name for p in paths) + f" in {Path(folder).resolve()}")
                except GeodiagError as e:
                    st.error(str(e))
