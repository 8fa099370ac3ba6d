"""The allocation lab's figure: one or two presets' allocations per layer, rank by module type, and the blocks
behind a block-diagonal rule. Pure DataFrame -> Figure; the frame is one row per module and preset
(geodiag.lab.plan_frame)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from geodiag.figures._common import QV_COLORS, empty_figure, grid
from geodiag.figures.style import PALETTE


def allocation_plan(df: pd.DataFrame, **_) -> go.Figure:
    """(a) rank of the whole update per layer (rank x blocks), a line per module type and preset (dashed: the
    second preset); (b) the blocks n_l per layer, where the rule has them."""
    if df.empty:
        return empty_figure("no allocation: pick an analysis and a rule")
    fig = grid(1, 2, ["(a) rank of ΔW per layer (rank × blocks)", "(b) blocks per layer"])
    presets = list(dict.fromkeys(df["preset"]))
    for p_i, preset in enumerate(presets):
        for t_i, (mtype, part) in enumerate(df[df["preset"] == preset].groupby("module_type", sort=True)):
            part = part.sort_values("layer")
            color = QV_COLORS.get(mtype, PALETTE[t_i % len(PALETTE)])
            dash = "solid" if p_i == 0 else "dash"
            name = f"{mtype} · {preset}"
            fig.add_trace(go.Scatter(x=part["layer"], y=part["equivalent_rank"], mode="lines+markers", name=name,
                                     legendgroup=name, line={"color": color, "dash": dash}, marker={"size": 5},
                                     text=[f"{m}: rank {r} x {b} blocks" for m, r, b in
                                           zip(part["module"], part["rank"], part["blocks"], strict=True)]),
                          row=1, col=1)
            fig.add_trace(go.Scatter(x=part["layer"], y=part["blocks"], mode="lines+markers", name=name,
                                     legendgroup=name, showlegend=False, line={"color": color, "dash": dash},
                                     marker={"size": 5}), row=1, col=2)
    for col, yt in ((1, "rank of the update"), (2, "blocks n_l")):
        fig.update_xaxes(title_text="layer", row=1, col=col)
        fig.update_yaxes(title_text=yt, row=1, col=col)
    fig.update_layout(legend_title_text="module · preset")
    return fig
