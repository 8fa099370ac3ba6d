"""The peers' own geometry, on the same axes as the rest: DoRA's magnitude/direction split (Liu et al. 2024,
§2.2 and Fig. 2). Pure DataFrame -> Figure."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from geodiag.figures._common import QV_COLORS, at_step, empty_figure, first_run, grid, per_layer, pick
from geodiag.figures.style import PALETTE
from geodiag.names import DORA_DIRECTION, DORA_MAGNITUDE


def dora(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
         labels: dict[str, str] | None = None) -> go.Figure:
    """(a) ΔM per layer, (b) ΔD per layer at the chosen step, (c) ΔD against ΔM for every module and record
    (DoRA Fig. 2: full fine-tuning moves them with a negative slope, LoRA with a positive one)."""
    one = first_run(df)
    mag, direction = pick(one, DORA_MAGNITUDE), pick(one, DORA_DIRECTION)
    if mag.empty:
        return empty_figure("no DoRA decomposition recorded: train with --method dora")
    shown = int(at_step(mag, step)["step"].iloc[0])
    fig = grid(1, 3, [f"(a) magnitude change ΔM, step {shown}", f"(b) direction change ΔD, step {shown}",
                      "(c) ΔD against ΔM over training"])
    per_layer(fig, at_step(mag, shown), row=1, col=1)
    per_layer(fig, at_step(direction, shown), row=1, col=2, legend=False)
    both = mag.merge(direction, on=["step", "module", "module_type"], suffixes=("_m", "_d"))
    both = both[both["step"] > 0]
    for i, (mtype, part) in enumerate(both.groupby("module_type", sort=True)):
        fig.add_trace(go.Scatter(x=part["value_m"], y=part["value_d"], mode="markers", name=mtype, legendgroup=mtype,
                                 showlegend=False, text=[f"{m}, step {s}" for m, s in zip(part["module"], part["step"],
                                                                                         strict=True)],
                                 marker={"size": 5, "color": QV_COLORS.get(mtype, PALETTE[i % len(PALETTE)])}),
                      row=1, col=3)
    for c, (xt, yt) in enumerate([("layer", "ΔM = mean |m − ‖W₀‖|"), ("layer", "ΔD = mean (1 − cos)"),
                                  ("ΔM", "ΔD")], start=1):
        fig.update_xaxes(title_text=xt, row=1, col=c)
        fig.update_yaxes(title_text=yt, row=1, col=c)
    fig.update_layout(legend_title_text="module")
    return fig
