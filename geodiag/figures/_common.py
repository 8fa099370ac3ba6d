"""Helpers shared by the figure builders: tidy-frame selection, EMA smoothing, subplot grids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geodiag.figures.style import PALETTE

QV_COLORS = {"q": PALETTE[0], "k": PALETTE[2], "v": PALETTE[1], "o": PALETTE[3]}


def pick(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows of one metric (the frames carry a `name` column)."""
    return df[df["name"] == name]


def first_run(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the frame's first run (the run a single-run panel draws)."""
    return df[df["run_id"] == df["run_id"].iloc[0]] if not df.empty else df


def at_step(df: pd.DataFrame, step: int | None) -> pd.DataFrame:
    """Rows at `step`, or at the last step each run recorded when step is None (or not recorded)."""
    if df.empty:
        return df
    if step is not None and (df["step"] == step).any():
        return df[df["step"] == step]
    last = df.groupby("run_id")["step"].transform("max")
    return df[df["step"] == last]


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard-style exponential moving average with debiasing; weight 0 leaves values as they are."""
    if weight <= 0 or len(values) == 0:
        return np.asarray(values, dtype=float)
    out, acc, norm = np.empty(len(values)), 0.0, 0.0
    for i, v in enumerate(np.asarray(values, dtype=float)):
        acc = weight * acc + (1 - weight) * v
        norm = weight * norm + (1 - weight)
        out[i] = acc / norm
    return out


def grid(rows: int, cols: int, titles: list[str], *, hspace: float = 0.12, **kw) -> go.Figure:
    return make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=hspace,
                         vertical_spacing=0.18 if rows > 1 else 0.1, **kw)


def note(fig: go.Figure, row: int, col: int, text: str, *, where: str = "center", color: str = "gray") -> None:
    """Text inside one panel, placed in paper coordinates from the panel's domain (an axis-domain reference
    fails in plotly.js when the panel holds no trace)."""
    sub = fig.get_subplot(row, col)
    (x0, x1), (y0, y1) = sub.xaxis.domain, sub.yaxis.domain
    x, anchor = ((x0 + x1) / 2, "center") if where == "center" else (x0 + 0.01, "left")
    y = (y0 + y1) / 2 if where == "center" else y1 - 0.01
    fig.add_annotation(text=text, xref="paper", yref="paper", x=x, y=y, xanchor=anchor,
                       yanchor="middle" if where == "center" else "top", showarrow=False,
                       font={"size": 9, "color": color})


def run_label(df: pd.DataFrame, labels: dict[str, str] | None) -> dict[str, str]:
    ids = list(dict.fromkeys(df["run_id"])) if "run_id" in df else []
    return {r: (labels or {}).get(r, r) for r in ids}


def curve(fig: go.Figure, x, y, *, name: str, color: str, smoothing: float, row: int | None = None,
          col: int | None = None, legend: bool = True, group: str | None = None) -> None:
    """A line with its EMA over it and the raw values faint behind it (when smoothing > 0)."""
    pos = {} if row is None else {"row": row, "col": col}
    if smoothing > 0:
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line={"color": color, "width": 1}, opacity=0.25,
                                 showlegend=False, hoverinfo="skip", legendgroup=group or name), **pos)
        y = ema(np.asarray(y, dtype=float), smoothing)
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line={"color": color, "width": 1.6},
                             showlegend=legend, legendgroup=group or name), **pos)


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def per_layer(fig, df, *, row, col, mode="lines+markers", bar=False, legend=True, text=None):
    """One trace per module type, x = layer (q and v as the papers compare them)."""
    for mtype, part in df.groupby("module_type", sort=True):
        part = part.groupby("layer", as_index=False)["value"].mean().sort_values("layer")
        color = QV_COLORS.get(mtype, PALETTE[len(fig.data) % len(PALETTE)])
        trace = (go.Bar(x=part["layer"], y=part["value"], name=mtype, marker_color=color, legendgroup=mtype,
                        showlegend=legend) if bar else
                 go.Scatter(x=part["layer"], y=part["value"], mode=mode, name=mtype, line={"color": color},
                            marker={"size": 4}, legendgroup=mtype, showlegend=legend))
        fig.add_trace(trace, row=row, col=col)
