"""The peers' own geometry, on the same axes as the rest: DoRA's magnitude/direction split (Liu et al. 2024,
§2.2 and Fig. 2) and intruder dimensions (Shuttleworth et al. 2024). Pure DataFrame -> Figure."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from geodiag.figures._common import QV_COLORS, at_step, empty_figure, first_run, grid, per_layer, pick, run_label
from geodiag.figures.style import PALETTE
from geodiag.names import DORA_DIRECTION, DORA_MAGNITUDE, INTRUDERS, SINGULAR_VALUE

RANK_TOL = 1e-6  # a singular value counts towards ΔW's rank above this fraction of the largest


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


def intruders(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
              labels: dict[str, str] | None = None) -> go.Figure:
    """(a) intruders per layer of the first run at the chosen step, (b) against the rank of each module's ΔW
    (from its recorded spectrum; every run), (c) the mean per layer of every run, e.g. LoRA beside full
    fine-tuning, which the paper finds has few."""
    counts = pick(df, INTRUDERS)
    if counts.empty:
        return empty_figure("no intruder dimensions recorded: train with geodiag (they are recorded at the end)")
    one = first_run(counts)
    shown = int(at_step(one, step)["step"].iloc[0])
    fig = grid(1, 3, [f"(a) intruders per layer, step {shown}", "(b) intruders against the rank of ΔW",
                      "(c) mean intruders per layer, each run"])
    per_layer(fig, at_step(one, shown), row=1, col=1)
    names = run_label(counts, labels)
    last = at_step(counts, None)  # each run's last record
    ranks = _update_ranks(pick(df, SINGULAR_VALUE))
    for i, (rid, part) in enumerate(last.groupby("run_id", sort=False)):
        color = PALETTE[i % len(PALETTE)]
        both = part.merge(ranks, on=["run_id", "step", "module"], how="inner")
        if not both.empty:
            fig.add_trace(go.Scatter(x=both["rank"], y=both["value"], mode="markers", name=names[rid],
                                     legendgroup=rid, marker={"size": 5, "color": color}, text=list(both["module"])),
                          row=1, col=2)
        mean = part.groupby("layer", as_index=False)["value"].mean()
        fig.add_trace(go.Scatter(x=mean["layer"], y=mean["value"], mode="lines+markers", name=names[rid],
                                 legendgroup=rid, showlegend=both.empty, line={"color": color}, marker={"size": 4}),
                      row=1, col=3)
    for c, (xt, yt) in enumerate([("layer", "intruder dimensions"), ("rank of ΔW", "intruder dimensions"),
                                  ("layer", "mean intruder dimensions")], start=1):
        fig.update_xaxes(title_text=xt, row=1, col=c)
        fig.update_yaxes(title_text=yt, row=1, col=c)
    return fig


def _update_ranks(sv: pd.DataFrame) -> pd.DataFrame:
    """run_id, step, module, rank: the number of singular values above RANK_TOL of the largest."""
    if sv.empty:
        return pd.DataFrame(columns=["run_id", "step", "module", "rank"])
    top = sv.groupby(["run_id", "step", "module"])["value"].transform("max")
    kept = sv.assign(kept=sv["value"] > RANK_TOL * top)
    return kept.groupby(["run_id", "step", "module"], as_index=False)["kept"].sum().rename(columns={"kept": "rank"})
