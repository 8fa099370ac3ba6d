"""ManifoldLoRA figures (ManifoldLoRA §5): Fig. 1 gates and effective rank, Fig. 2 training-curve decomposition,
Fig. 3 manifold geometry, Fig. 4 every scalar curve, Fig. 5 the Delta W spectrum. Pure DataFrame -> Figure.

Every builder takes the tidy long frame the reader returns for several metrics and runs (columns run_id,
name, step, module, layer, module_type, idx, value) and draws the first run unless the panel overlays runs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from geodiag.figures._common import (
    QV_COLORS,
    at_step,
    curve,
    empty_figure,
    first_run,
    grid,
    note,
    per_layer,
    pick,
    run_label,
)
from geodiag.figures.style import PALETTE
from geodiag.names import (
    DEAD_GATE,
    FROBENIUS,
    GATE_DEAD,
    GATE_EFFECTIVE_RANK,
    GATE_VALUE,
    LAMBDA_A,
    LAMBDA_S,
    LOSS_ALIGNMENT,
    LOSS_LM,
    LOSS_SPARSITY,
    NUCLEAR,
    PARTICIPATION_RATIO,
    PARTICIPATION_RATIO_N,
    POWERLAW_ALPHA,
    PROBE_ALIGNMENT,
    PROBE_D_EFF,
    PROBE_ORTHONORMALITY,
    SINGULAR_VALUE,
    STABLE_RANK,
)


def gates(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
          labels: dict[str, str] | None = None) -> go.Figure:
    """Fig. 1 rank collapse: (a) gate histogram with the dead threshold, (b) effective rank per layer q vs v,
    (c) dead gates per layer, (d) mean effective rank over steps (every run overlaid)."""
    values = at_step(first_run(pick(df, GATE_VALUE)), step)
    if values.empty:
        return empty_figure("no gate values: this run is not a ManifoldLoRA run")
    shown = int(values["step"].iloc[0])
    fig = grid(2, 2, [f"(a) gate values, step {shown}", "(b) effective rank per layer",
                      "(c) dead gates per layer", "(d) mean effective rank"])
    fig.add_trace(go.Histogram(x=values["value"], xbins={"start": 0.0, "end": 1.0, "size": 0.025},
                               marker_color=PALETTE[0], name="gates", showlegend=False), row=1, col=1)
    fig.update_xaxes(range=[0, 1], row=1, col=1)  # gates live in (0, 1): a fixed axis compares runs
    fig.add_vline(x=DEAD_GATE, line_dash="dash", line_color="black", row=1, col=1,
                  annotation_text=f"dead < {DEAD_GATE}", annotation_font_size=9)
    erank = first_run(pick(df, GATE_EFFECTIVE_RANK))
    per_layer(fig, at_step(erank, shown), row=1, col=2)
    per_layer(fig, at_step(first_run(pick(df, GATE_DEAD)), shown), row=2, col=1, bar=True, legend=False)
    names = run_label(df, labels)
    for i, (rid, part) in enumerate(pick(df, GATE_EFFECTIVE_RANK).groupby("run_id", sort=False)):
        mean = part.groupby("step", as_index=False)["value"].mean()
        curve(fig, mean["step"], mean["value"], name=names.get(rid, rid), color=PALETTE[(i + 4) % len(PALETTE)],
              smoothing=smoothing, row=2, col=2, legend=len(names) > 1)
    fig.update_xaxes(title_text="gate value g", row=1, col=1)
    fig.update_yaxes(title_text="count", row=1, col=1)
    fig.update_xaxes(title_text="layer", row=1, col=2)
    fig.update_yaxes(title_text="r_eff = Σ g", row=1, col=2)
    fig.update_xaxes(title_text="layer", row=2, col=1)
    fig.update_yaxes(title_text="dead gates", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(title_text="step", row=2, col=2)
    fig.update_yaxes(title_text="mean r_eff", row=2, col=2)
    fig.update_layout(barmode="group", legend_title_text="module")
    return fig


def dynamics(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
             labels: dict[str, str] | None = None, weights: dict[str, float] | None = None) -> go.Figure:
    """Fig. 2: (a) LM, sparsity and alignment losses, (b) lambda-weighted auxiliary losses stacked,
    (c) sparsity vs alignment coloured by step, (d) LM loss vs mean effective rank coloured by step."""
    one = first_run(df)
    lm = pick(one, LOSS_LM)
    if lm.empty:
        return empty_figure("no training losses recorded for this run")
    weights = weights or {LOSS_SPARSITY: LAMBDA_S, LOSS_ALIGNMENT: LAMBDA_A}
    fig = grid(2, 2, ["(a) losses", "(b) λ-weighted auxiliary losses", "(c) sparsity vs alignment",
                      "(d) LM loss vs effective rank"])
    colors = {LOSS_LM: PALETTE[0], LOSS_SPARSITY: PALETTE[1], LOSS_ALIGNMENT: PALETTE[2]}
    for name, color in colors.items():
        part = pick(one, name)
        if not part.empty:
            curve(fig, part["step"], part["value"], name=name.split("/")[1], color=color, smoothing=smoothing,
                  row=1, col=1)
    for name in (LOSS_SPARSITY, LOSS_ALIGNMENT):
        part = pick(one, name)
        if not part.empty:
            fig.add_trace(go.Scatter(x=part["step"], y=part["value"] * weights.get(name, 1.0), stackgroup="aux",
                                     mode="lines", line={"color": colors[name], "width": 0.5}, showlegend=False,
                                     name=f"λ·{name.split('/')[1]}"), row=1, col=2)
    sp = pick(one, LOSS_SPARSITY).set_index("step")["value"]
    al = pick(one, LOSS_ALIGNMENT).set_index("step")["value"]
    both = pd.concat({"sparsity": sp, "alignment": al}, axis=1).dropna().reset_index()
    scale = {"colorscale": "Viridis", "showscale": True, "colorbar": {"title": "step", "len": 0.4, "y": 0.2}}
    if not both.empty:
        fig.add_trace(go.Scatter(x=both["sparsity"], y=both["alignment"], mode="markers", showlegend=False,
                                 marker={"color": both["step"], "size": 4, **scale, "showscale": False},
                                 name="sparsity vs alignment"), row=2, col=1)
    erank = pick(one, GATE_EFFECTIVE_RANK).groupby("step")["value"].mean()
    joined = pd.concat({"erank": erank, "lm": lm.set_index("step")["value"]}, axis=1).dropna().reset_index()
    if not joined.empty:
        fig.add_trace(go.Scatter(x=joined["erank"], y=joined["lm"], mode="markers+lines", showlegend=False,
                                 line={"color": "lightgray", "width": 0.5},
                                 marker={"color": joined["step"], "size": 5, **scale}, name="LM loss vs r_eff"),
                      row=2, col=2)
    for (r, c), (xt, yt) in {(1, 1): ("step", "loss"), (1, 2): ("step", "weighted loss"),
                             (2, 1): ("sparsity loss", "alignment loss"),
                             (2, 2): ("mean r_eff", "LM loss")}.items():
        fig.update_xaxes(title_text=xt, row=r, col=c)
        fig.update_yaxes(title_text=yt, row=r, col=c)
    return fig


def curves(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
           labels: dict[str, str] | None = None, cols: int = 4) -> go.Figure:
    """Fig. 4: small multiples of every run-level scalar over steps, runs overlaid."""
    scalars = df[df["idx"].isna() & df["module"].isna()]
    names = sorted(scalars["name"].unique())
    if not names:
        return empty_figure("no scalar curves recorded")
    rows = math.ceil(len(names) / cols)
    fig = grid(rows, cols, names)
    fig.update_layout(height=max(320, 220 * rows))
    runs = run_label(scalars, labels)
    colors = {rid: PALETTE[i % len(PALETTE)] for i, rid in enumerate(runs)}
    for k, name in enumerate(names):
        for rid, part in pick(scalars, name).groupby("run_id", sort=False):
            part = part.sort_values("step")
            curve(fig, part["step"], part["value"], name=runs[rid], color=colors[rid], smoothing=smoothing,
                  row=k // cols + 1, col=k % cols + 1, legend=k == 0 and len(runs) > 1, group=rid)
    fig.update_xaxes(title_text="step", row=rows)
    return fig


def geometry(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
             labels: dict[str, str] | None = None, hidden_size: int | None = None) -> go.Figure:
    """Fig. 3: (a) probe d_eff per layer, (b) participation ratio per layer with n, (c) probe orthonormality
    per layer, (d) alignment loss per adapter-probe pair."""
    one = first_run(df)
    pr = at_step(pick(one, PARTICIPATION_RATIO), step)
    if pr.empty:
        return empty_figure("no participation ratios recorded for this run")
    shown = int(pr["step"].iloc[0])
    fig = grid(2, 2, [f"(a) probe d_eff, step {shown}", "(b) participation ratio (n tokens)",
                      "(c) probe orthonormality", "(d) alignment loss per pair"])
    deff = at_step(pick(one, PROBE_D_EFF), shown).sort_values("layer")  # module names sort 10 before 2
    fig.add_trace(go.Scatter(x=deff["layer"], y=deff["value"], mode="lines+markers", name="d_eff",
                             marker_color=PALETTE[0], showlegend=False), row=1, col=1)
    n = at_step(pick(one, PARTICIPATION_RATIO_N), shown).set_index("layer")["value"]
    pr = pr.sort_values("layer")
    ns = [int(n.get(layer, 0)) for layer in pr["layer"]]
    fig.add_trace(go.Scatter(x=pr["layer"], y=pr["value"], mode="lines+markers", name="PR", showlegend=False,
                             marker_color=PALETTE[7], customdata=ns,
                             hovertemplate="layer %{x}<br>PR %{y:.2f}<br>n = %{customdata}<extra></extra>"),
                  row=1, col=2)
    low = hidden_size is not None and ns and min(ns) < hidden_size
    text = f"n = {min(ns)}–{max(ns)} tokens" if ns else ""
    if low:
        text += f" < h = {hidden_size}: PR ≤ n − 1"
    if text:
        note(fig, 1, 2, text, where="top-left", color="firebrick" if low else "gray")
    orth = at_step(pick(one, PROBE_ORTHONORMALITY), shown).sort_values("layer")
    fig.add_trace(go.Scatter(x=orth["layer"], y=orth["value"], mode="lines+markers", showlegend=False,
                             name="‖QᵀQ − I‖", marker_color=PALETTE[2]), row=2, col=1)
    align = at_step(pick(one, PROBE_ALIGNMENT), shown).sort_values(["layer", "module_type"])
    for mtype, part in align.groupby("module_type", sort=True):
        fig.add_trace(go.Bar(x=part["layer"], y=part["value"], name=mtype,
                             marker_color=QV_COLORS.get(mtype, PALETTE[4])), row=2, col=2)
    for (r, c), yt in {(1, 1): "d_eff = Σ gᵖ", (1, 2): "participation ratio", (2, 1): "‖QᵀQ − I‖_F",
                       (2, 2): "L_align"}.items():
        fig.update_xaxes(title_text="layer", row=r, col=c)
        fig.update_yaxes(title_text=yt, row=r, col=c)
    fig.update_layout(barmode="group", legend_title_text="module")
    return fig


def spectrum(df: pd.DataFrame, *, step: int | None = None, smoothing: float = 0.0,
             labels: dict[str, str] | None = None, max_index: int = 64) -> go.Figure:
    """Fig. 5: (a) heatmap modules x singular index (log10), (b) stable rank per layer q vs v,
    (c) nuclear vs Frobenius coloured by module type, (d) power-law exponent per layer with alpha = -1."""
    one = first_run(df)
    sv = at_step(pick(one, SINGULAR_VALUE), step)
    if sv.empty or not (sv["value"] > 0).any():
        return empty_figure("no non-zero Delta W spectrum at this step (B = 0 before training)")
    shown = int(sv["step"].iloc[0])
    fig = grid(2, 2, [f"(a) log10 σ of ΔW, step {shown}", "(b) stable rank per layer",
                      "(c) nuclear vs Frobenius norm", "(d) power-law exponent α"], hspace=0.2)
    sv = sv[sv["idx"] < max_index]
    order = sv[["module", "layer", "module_type"]].drop_duplicates().sort_values(["module_type", "layer"])
    mat = sv.pivot_table(index="module", columns="idx", values="value").reindex(order["module"])
    labels_y = [f"{t}{int(layer)}" if not pd.isna(layer) else m
                for m, layer, t in order.itertuples(index=False)]
    z = np.log10(mat.to_numpy(dtype=float).clip(min=1e-12))
    fig.add_trace(go.Heatmap(z=z, x=list(mat.columns), y=labels_y, colorscale="Viridis", showscale=True,
                             colorbar={"title": "log10 σ", "len": 0.42, "y": 0.79, "x": 0.41,
                                                                        "thickness": 8}, name="log10 σ"),
                  row=1, col=1)
    per_layer(fig, at_step(pick(one, STABLE_RANK), shown), row=1, col=2)
    nuc = at_step(pick(one, NUCLEAR), shown).set_index("module")
    fro = at_step(pick(one, FROBENIUS), shown).set_index("module")["value"]
    for mtype, part in nuc.groupby("module_type", sort=True):
        fig.add_trace(go.Scatter(x=part["value"], y=fro.reindex(part.index), mode="markers", name=mtype,
                                 legendgroup=mtype, showlegend=False, text=list(part.index),
                                 marker={"color": QV_COLORS.get(mtype, PALETTE[4]), "size": 5}), row=2, col=1)
    per_layer(fig, at_step(pick(one, POWERLAW_ALPHA), shown), row=2, col=2, legend=False)
    fig.add_hline(y=-1, line_dash="dash", line_color="black", row=2, col=2, annotation_text="α = −1",
                  annotation_font_size=9)
    for (r, c), (xt, yt) in {(1, 1): ("singular index k", "module"), (1, 2): ("layer", "stable rank"),
                             (2, 1): ("nuclear norm ‖ΔW‖_*", "Frobenius norm ‖ΔW‖_F"),
                             (2, 2): ("layer", "α (σ_k ∝ k^α)")}.items():
        fig.update_xaxes(title_text=xt, row=r, col=c)
        fig.update_yaxes(title_text=yt, row=r, col=c)
    fig.update_layout(legend_title_text="module")
    return fig
