"""Rank-allocation figures: RaLoRA's GID (RaLoRA Fig. 1a, 3, 4; Tables 7-8), GeLoRA's intrinsic-dimension
profile, the allocation atlas across methods, and subspace angles. Pure DataFrame -> Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from geodiag.allocation import gelora_ranks  # pure rules, no torch
from geodiag.figures._common import QV_COLORS, at_step, empty_figure, first_run, grid, note, pick
from geodiag.figures.style import PALETTE
from geodiag.names import (
    ADALORA_RANK,
    ANGLE_DW_GRAD,
    ANGLE_DW_PROBE,
    ANGLE_GRAD_PROBE,
    GATE_EFFECTIVE_RANK,
    GID,
    GID_FISHER,
    GID_THRESHOLD,
    PARTICIPATION_RATIO,
    TWONN,
    TWONN_ERROR,
    TWONN_N,
    allocation,
    allocation_parts,
    random_reference,
)

EPS_COLORS = {1: PALETTE[0], 3: PALETTE[1], 5: PALETTE[2]}


def gid(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
        labels: dict[str, str] | None = None, lora_rank: int = 8) -> go.Figure:
    """(a) GID heatmap layers x module types, (b) GID vs the LoRA rank, (c) GID over training steps,
    (d) entropy GID vs threshold ranks at eps 1e-1, 1e-3, 1e-5."""
    g = first_run(pick(df, GID))
    if g.empty:
        return empty_figure("no GID recorded: run `geodiag analyze gid` or train with --method full "
                            "--record-gid-every K")
    now = at_step(g, step)
    shown = int(now["step"].iloc[0])
    fig = grid(2, 2, [f"(a) GID, step {shown}", f"(b) GID vs LoRA rank {lora_rank}",
                      "(c) GID over steps", "(d) entropy GID vs threshold rank"], hspace=0.2)
    heat = now.pivot_table(index="module_type", columns="layer", values="value")
    fig.add_trace(go.Heatmap(z=heat.to_numpy(dtype=float), x=list(heat.columns), y=list(heat.index),
                             colorscale="Magma", name="GID",
                             colorbar={"title": "GID", "len": 0.42, "y": 0.79, "x": 0.41, "thickness": 8}),
                  row=1, col=1)
    for mtype, part in now.groupby("module_type", sort=True):
        part = part.sort_values("layer")
        fig.add_trace(go.Scatter(x=part["layer"], y=part["value"], mode="lines+markers", name=mtype,
                                 legendgroup=mtype, marker={"size": 4},
                                 line={"color": QV_COLORS.get(mtype, PALETTE[4])}), row=1, col=2)
    layers = [float(now["layer"].min()), float(now["layer"].max())]  # the reference in the legend, not on the data
    fig.add_trace(go.Scatter(x=layers, y=[lora_rank, lora_rank], mode="lines", name=f"LoRA r = {lora_rank}",
                             line={"dash": "dash", "color": "black", "width": 1}, hoverinfo="name"), row=1, col=2)
    steps = sorted(g["step"].unique())
    if len(steps) > 1:
        for mtype, part in g.groupby("module_type", sort=True):
            mean = part.groupby("step", as_index=False)["value"].mean()
            fig.add_trace(go.Scatter(x=mean["step"], y=mean["value"], mode="lines+markers", name=mtype,
                                     legendgroup=mtype, showlegend=False,
                                     line={"color": QV_COLORS.get(mtype, PALETTE[4])}), row=2, col=1)
    else:
        note(fig, 2, 1, "one measurement; for dynamics:<br>geodiag train --method full --record-gid-every K")
    thr = at_step(pick(df, GID_THRESHOLD), shown)
    thr = thr[thr["run_id"] == g["run_id"].iloc[0]]
    ref = now.set_index("module")["value"]
    for eps, part in thr.groupby("idx", sort=True):
        fig.add_trace(go.Scatter(x=ref.reindex(part["module"]), y=part["value"], mode="markers",
                                 name=f"ε = 1e-{int(eps)}", marker={"size": 4, "color": EPS_COLORS.get(int(eps))}),
                      row=2, col=2)
    if thr.empty:
        note(fig, 2, 2, "threshold ranks are recorded by<br>geodiag analyze gid")
    else:
        lo, hi = float(ref.min()), float(max(ref.max(), thr["value"].max()))
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"dash": "dot", "color": "gray"},
                                 showlegend=False, hoverinfo="skip"), row=2, col=2)
    fig.update_xaxes(type="log", row=2, col=2)  # threshold ranks span 1 to min(d_out, d_in)
    fig.update_yaxes(type="log", row=2, col=2)
    for (r, c), (xt, yt) in {(1, 1): ("layer", "module"), (1, 2): ("layer", "GID = erank(G)"),
                             (2, 1): ("step", "mean GID"), (2, 2): ("entropy GID", "#σ > ε")}.items():
        fig.update_xaxes(title_text=xt, row=r, col=c)
        fig.update_yaxes(title_text=yt, row=r, col=c)
    fig.update_layout(legend_title_text="module / ε")
    return fig


FISHER_STATS = ("pearson_log", "pearson_inv", "spearman")
FISHER_METRICS = tuple(GID_FISHER[k] for k in FISHER_STATS)


def fisher_table(df: pd.DataFrame) -> pd.DataFrame:
    """RaLoRA Table 8 as a frame: one row per module type, Pearson on log F, Pearson on 1/F, Spearman."""
    stat = {GID_FISHER[k]: k for k in FISHER_STATS}
    part = df[df["name"].isin(list(stat))]
    if part.empty:
        return pd.DataFrame(columns=["module_type", *FISHER_STATS])
    part = part.assign(stat=part["name"].map(stat))
    table = part.pivot_table(index="module_type", columns="stat", values="value").reset_index()
    return table.rename_axis(columns=None)


def fisher(df: pd.DataFrame, **_) -> go.Figure:
    """The GID-Fisher correlation table (RaLoRA Table 8) as an exportable figure."""
    t = fisher_table(df)
    if t.empty:
        return empty_figure("no GID-Fisher correlations: run `geodiag analyze gid`")
    cols = ["module_type"] + [c for c in FISHER_STATS if c in t]
    heads = {"module_type": "module", "pearson_log": "Pearson r<br>(GID, log F)",
             "pearson_inv": "Pearson r<br>(GID, 1/F)", "spearman": "Spearman ρ<br>(GID, F)"}
    cells = [t[c] if c == "module_type" else t[c].map(lambda v: f"{v:+.2f}") for c in cols]
    return go.Figure(go.Table(header={"values": [heads[c] for c in cols], "align": "left"},
                              cells={"values": cells, "align": "left"}))


def intrinsic_dim(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
                  labels: dict[str, str] | None = None, scale: float = 1.0) -> go.Figure:
    """GeLoRA: (a) TwoNN ID of hidden_states[0..L] with error bars and n, (b) their participation
    ratio, (c) the ranks the rule r_i = max(d_{i+1} - d_i, 0) + 1 implies, as reported for GeLoRA."""
    d = pick(df, TWONN)
    if d.empty:
        return empty_figure("no intrinsic dimensions: run `geodiag analyze id`")
    rid = d["run_id"].iloc[0]
    one = df[df["run_id"] == rid]
    d = pick(one, TWONN).sort_values("layer")
    err = pick(one, TWONN_ERROR).set_index("layer")["value"].reindex(d["layer"])
    n = pick(one, TWONN_N).set_index("layer")["value"].reindex(d["layer"])
    fig = grid(1, 3, ["(a) TwoNN intrinsic dimension", "(b) participation ratio",
                      "(c) implied GeLoRA rank (as reported)"])
    fig.add_trace(go.Scatter(x=d["layer"], y=d["value"], mode="lines+markers", name="TwoNN ID",
                             error_y={"type": "data", "array": err.fillna(0).to_numpy(), "visible": True},
                             customdata=n.fillna(0).astype(int), marker_color=PALETTE[0],
                             hovertemplate="hidden_states[%{x}]<br>ID %{y:.2f}<br>n = %{customdata}<extra></extra>"),
                  row=1, col=1)
    pr = pick(one, PARTICIPATION_RATIO).sort_values("layer")
    fig.add_trace(go.Scatter(x=pr["layer"], y=pr["value"], mode="lines+markers", name="PR", marker_color=PALETTE[1]),
                  row=1, col=2)
    ranks = gelora_ranks(d["value"].tolist(), scale=scale)
    fig.add_trace(go.Bar(x=list(range(len(ranks))), y=ranks, name=f"r_i (scale {scale:g})", marker_color=PALETTE[2]),
                  row=1, col=3)
    fig.update_xaxes(title_text="hidden_states index (0 = embeddings)", row=1, col=1)
    fig.update_xaxes(title_text="hidden_states index", row=1, col=2)
    fig.update_xaxes(title_text="block i", row=1, col=3)
    fig.update_yaxes(title_text="intrinsic dimension", row=1, col=1)
    fig.update_yaxes(title_text="participation ratio", row=1, col=2)
    fig.update_yaxes(title_text="rank r_i", row=1, col=3)
    return fig


def atlas_series(df: pd.DataFrame, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Every allocation on one axis: method, module, layer, module_type, rank (the update's rank: blocks x
    rank for block-diagonal methods), params, run_id. Learned ranks (ManifoldLoRA r_eff, AdaLoRA) are taken
    at each run's last record."""
    parts = []
    for name in sorted(df["name"].unique()):
        method, part = allocation_parts(name) or ("", "")
        if part == "equivalent_rank":
            part = pick(df, name).assign(method=method)
            params = pick(df, allocation(method, "params"))[["run_id", "module", "value"]]
            part = part.merge(params.rename(columns={"value": "params"}), on=["run_id", "module"], how="left")
            parts.append(part)
    learned = {GATE_EFFECTIVE_RANK: "manifold r_eff", ADALORA_RANK: "adalora"}
    for name, method in learned.items():
        part = at_step(pick(df, name), None)
        if not part.empty:
            parts.append(part.assign(method=method, params=np.nan))
    gid = at_step(pick(df, GID), None)
    if not gid.empty:
        parts.append(gid.assign(method="GID (measured)", params=np.nan))
    if not parts:
        return pd.DataFrame(columns=["method", "module", "layer", "module_type", "rank", "params", "run_id"])
    out = pd.concat(parts, ignore_index=True).rename(columns={"value": "rank"})
    # one series per method: the first run that recorded it (the frame's run order)
    first = out.groupby("method")["run_id"].transform("first")
    out = out[out["run_id"] == first]
    return out[["method", "module", "layer", "module_type", "rank", "params", "run_id"]]


def atlas(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
          labels: dict[str, str] | None = None) -> go.Figure:
    """Across methods (no paper has it): every allocation per layer, one panel per module type, and the
    parameter count of each allocation."""
    s = atlas_series(df, labels)
    if s.empty:
        return empty_figure("no allocations recorded: run `geodiag analyze gid` and `geodiag analyze id`")
    types = sorted(s["module_type"].dropna().unique())
    fig = grid(1, len(types) + 1, [f"{t}: rank per layer" for t in types] + ["trainable parameters"])
    methods = sorted(s["method"].unique())
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    legend_done: set[str] = set()  # one legend entry per method, in the first panel that has it
    for c, t in enumerate(types, start=1):
        for m in methods:
            part = s[(s["module_type"] == t) & (s["method"] == m)].groupby("layer", as_index=False)["rank"].mean()
            if part.empty:
                continue
            dash = "dot" if m.startswith("GID") else None
            fig.add_trace(go.Scatter(x=part["layer"], y=part["rank"], mode="lines+markers", name=m, legendgroup=m,
                                     showlegend=m not in legend_done, marker={"size": 3, "color": colors[m]},
                                     line={"color": colors[m], "dash": dash, "width": 1.3}), row=1, col=c)
            legend_done.add(m)
        fig.update_xaxes(title_text="layer", row=1, col=c)
    fig.update_yaxes(title_text="rank of ΔW (blocks × rank)", row=1, col=1)
    params = s.dropna(subset=["params"]).groupby("method")["params"].sum()
    fig.add_trace(go.Bar(x=list(params.index), y=list(params.values), showlegend=False, name="parameters",
                         marker_color=[colors[m] for m in params.index]), row=1, col=len(types) + 1)
    fig.update_yaxes(title_text="parameters", row=1, col=len(types) + 1)
    return fig


SUBSPACE = {ANGLE_DW_GRAD: "ΔW vs gradient (column spaces)",
            ANGLE_DW_PROBE: "ΔW rows vs probe Q", ANGLE_GRAD_PROBE: "gradient rows vs probe Q"}
CHANCE = {n: random_reference(n) for n in SUBSPACE}  # each pair's random-subspace reference
SUBSPACE_METRICS = (*SUBSPACE, *CHANCE.values())


def subspace(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
             labels: dict[str, str] | None = None) -> go.Figure:
    """Principal angles (beyond the papers): (a) mean angle over steps per subspace pair, (b) per layer."""
    one = first_run(df[df["name"].isin(SUBSPACE_METRICS)])
    if not one["name"].isin(SUBSPACE).any():
        return empty_figure("no subspace angles: train with --subspace-k 8")
    now = at_step(one, step)
    fig = grid(1, 2, ["(a) mean principal angle over steps", f"(b) per layer, step {int(now['step'].iloc[0])}"])
    for i, (name, title) in enumerate(SUBSPACE.items()):
        part = pick(one, name)
        if part.empty:
            continue
        color = PALETTE[i]
        mean = part.groupby("step", as_index=False)["value"].mean()
        fig.add_trace(go.Scatter(x=mean["step"], y=mean["value"], mode="lines+markers", name=title, legendgroup=name,
                                 line={"color": color}), row=1, col=1)
        layer = pick(now, name).groupby("layer", as_index=False)["value"].mean()
        fig.add_trace(go.Scatter(x=layer["layer"], y=layer["value"], mode="lines+markers", name=title,
                                 legendgroup=name, showlegend=False, line={"color": color}), row=1, col=2)
        _chance(fig, one, now, name, title, color)
    fig.add_hline(y=90, line_dash="dot", line_color="gray", row=1, col=1, annotation_text="orthogonal",
                  annotation_position="bottom right", annotation_font_size=9)
    if one["name"].isin(CHANCE.values()).any():
        note(fig, 1, 2, "dashed: random subspaces of the same dimensions", where="top")
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_xaxes(title_text="layer", row=1, col=2)
    fig.update_yaxes(title_text="mean angle (degrees)", range=[0, 92], row=1, col=1)
    fig.update_yaxes(title_text="mean angle (degrees)", range=[0, 92], row=1, col=2)
    return fig


def _chance(fig: go.Figure, one: pd.DataFrame, now: pd.DataFrame, name: str, title: str, color: str) -> None:
    """The random-subspace reference of one pair, dashed in its colour and legend group, beside its curves."""
    over_steps = pick(one, CHANCE[name]).groupby("step", as_index=False)["value"].mean()
    per_layer = pick(now, CHANCE[name]).groupby("layer", as_index=False)["value"].mean()
    for col, frame, x in ((1, over_steps, "step"), (2, per_layer, "layer")):
        if not frame.empty:
            fig.add_trace(go.Scatter(x=frame[x], y=frame["value"], mode="lines", name=f"{title}: random",
                                     legendgroup=name, showlegend=False, hoverinfo="name+y",
                                     line={"color": color, "dash": "dash", "width": 1}), row=1, col=col)
