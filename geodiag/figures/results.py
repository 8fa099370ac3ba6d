"""Outcomes at equal budget: accuracy and held-out loss against trainable parameters (a point per run, mean ± s.e.
per method over seeds, the Pareto front marked), and the geometry of each run against its accuracy gain with
Spearman's rho. Pure DataFrame -> Figure; the frame is one row per run (geodiag.lab.outcomes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from geodiag.figures._common import empty_figure, grid, note
from geodiag.figures.style import PALETTE
from geodiag.lab.outcomes import SUMMARIES
from geodiag.lab.stats import pareto_front, per_method, spearman

SHORT = {"gid_rank_ratio": "GID / rank", "erank": "ΔW effective rank", "angle_dw_grad": "ΔW–gradient angle (°)",
         "coverage": "probe coverage"}  # axis titles; the table below the figure says each in full


def colors(labels: list[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def symbols(labels: list[str]) -> dict[str, str]:
    """A second cue once the eight colours repeat: the ninth method on is drawn with another marker."""
    return {label: ("circle", "square", "triangle-up")[i // len(PALETTE) % 3] for i, label in enumerate(labels)}


def results(df: pd.DataFrame, **_) -> go.Figure:
    """(a) exact-match accuracy and (b) held-out LM loss against parameters: every run a small point, each method's
    mean ± standard error over its seeds a large one, and the Pareto front of the means (fewest parameters for the
    most accuracy) joined and ringed."""
    if df.empty or df["accuracy"].isna().all():
        return empty_figure("no evaluated training runs: train with --eval-size > 0 (e.g. geodiag sweep)")
    fig = grid(1, 2, ["(a) accuracy at equal budget", "(b) held-out loss"])
    order = list(dict.fromkeys(df["label"]))
    for col, value in ((1, "accuracy"), (2, "eval_loss")):
        _panel(fig, df, value, col, colors(order), symbols(order))
    span = df["params"].max() / max(df["params"].min(), 1)
    for col, yt in ((1, "exact-match accuracy"), (2, "held-out LM loss (answer tokens)")):
        fig.update_xaxes(title_text="trainable parameters", type="log" if span > 10 else "linear", row=1, col=col)
        fig.update_yaxes(title_text=yt, row=1, col=col)
    fig.update_layout(legend_title_text="method (mean ± s.e.)")
    return fig


def _panel(fig: go.Figure, df: pd.DataFrame, value: str, col: int, palette: dict[str, str],
           marks: dict[str, str]) -> None:
    if df[value].isna().all():
        note(fig, 1, col, f"no {value.replace('_', ' ')} recorded")
        return
    means = per_method(df, value)
    for label, part in df.groupby("label", sort=False):
        m = means[means["label"] == label].iloc[0]
        fig.add_trace(go.Scatter(x=part["params"], y=part[value], mode="markers", name=label, legendgroup=label,
                                 showlegend=False, opacity=0.45,
                                 marker={"size": 6, "color": palette[label], "symbol": marks[label]},
                                 text=[f"{label} seed {s}" for s in part["seed"]]), row=1, col=col)
        fig.add_trace(go.Scatter(x=[m["params"]], y=[m["mean"]], mode="markers", name=f"{label} (n={m['n']})",
                                 legendgroup=label, showlegend=col == 1,
                                 error_y={"type": "data", "array": [0 if np.isnan(m["se"]) else m["se"]]},
                                 marker={"size": 11, "color": palette[label],
                                         "symbol": "diamond" if marks[label] == "circle" else marks[label]}),
                      row=1, col=col)
    best = means.dropna(subset=["mean"])
    score = best["mean"] if value == "accuracy" else -best["mean"]  # less loss is better
    front = best[pareto_front(best["params"].to_numpy(), score.to_numpy())].sort_values("params")
    fig.add_trace(go.Scatter(x=front["params"], y=front["mean"], mode="lines+markers", name="Pareto front",
                             legendgroup="front", showlegend=col == 1, line={"dash": "dot", "color": "black"},
                             marker={"size": 17, "symbol": "circle-open", "color": "black"}), row=1, col=col)


def geometry(df: pd.DataFrame, **_) -> go.Figure:
    """Each run's geometry summary against its accuracy gain (after − before), one panel per summary, with
    Spearman's rho, its 95% interval (Fisher z) and n in the title: with a handful of runs the interval is wide,
    and says so."""
    have = [c for c in SUMMARIES if c in df and df[c].notna().sum() >= 2]
    if df.empty or not have or df["gain"].isna().all():
        return empty_figure("no run has both an accuracy gain and a geometry summary")
    titles = []
    for c in have:
        s = spearman(df[c], df["gain"])
        interval = "" if np.isnan(s["lo"]) else f" [{s['lo']:.2f}, {s['hi']:.2f}]"
        rho = "ρ undefined (a constant or n < 3)" if np.isnan(s["rho"]) else f"ρ = {s['rho']:.2f}{interval}"
        titles.append(f"{rho}, n = {s['n']}")
    fig = grid(1, len(have), titles)
    order = list(dict.fromkeys(df["label"]))
    palette, marks = colors(order), symbols(order)
    for col, c in enumerate(have, start=1):
        for label, part in df.groupby("label", sort=False):
            fig.add_trace(go.Scatter(x=part[c], y=part["gain"], mode="markers", name=label, legendgroup=label,
                                     showlegend=col == 1,
                                     marker={"size": 8, "color": palette[label], "symbol": marks[label]},
                                     text=[f"{label} seed {s}" for s in part["seed"]]), row=1, col=col)
        fig.update_xaxes(title_text=SHORT[c], row=1, col=col)
        fig.update_yaxes(title_text="accuracy gain" if col == 1 else None, row=1, col=col)
    return fig
