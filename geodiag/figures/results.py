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


def by_method(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame sorted by label (stably) and its labels in that order: every figure of a sweep draws a method in
    the same colour, marker and legend place, whatever runs each figure leaves out (the learning-rate curves keep
    only selection runs, the others only the chosen rate's)."""
    df = df.sort_values("label", kind="stable")
    return df, list(df["label"].unique())


def colors(labels: list[str]) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def symbols(labels: list[str]) -> dict[str, str]:
    """A second cue once the eight colours repeat: the ninth method on is drawn with another marker."""
    return {label: ("circle", "square", "triangle-up")[i // len(PALETTE) % 3] for i, label in enumerate(labels)}


def results(df: pd.DataFrame, **_) -> go.Figure:
    """(a) exact-match accuracy and (b) held-out LM loss against parameters: every run a small point, each method's
    mean ± standard error over its seeds a large one, and the Pareto front of the means (fewest parameters for the
    most accuracy) joined and ringed."""
    df, order = by_method(df)
    df = compared(df)
    if df.empty or df["accuracy"].isna().all():
        return empty_figure("no evaluated training runs: train with --eval-size > 0 (e.g. geodiag sweep)")
    fig = grid(1, 2, ["(a) accuracy at equal budget", "(b) held-out loss"])
    for col, value in ((1, "accuracy"), (2, "eval_loss")):
        _panel(fig, df, value, col, colors(order), symbols(order))
    span = df["params"].max() / max(df["params"].min(), 1)
    lo, hi = float(df["params"].min()), float(df["params"].max())
    # methods matched to one budget have one count: +-10% around it, not plotly's +-0.0005k (460.7995k)
    same = {"range": [0.9 * lo, 1.1 * hi]} if hi - lo <= 0.01 * hi else {}
    for col, yt in ((1, "exact-match accuracy"), (2, "held-out LM loss (answer tokens)")):
        fig.update_xaxes(title_text="trainable parameters", type="log" if span > 10 else "linear", row=1, col=col,
                         **same)
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


def compared(df: pd.DataFrame) -> pd.DataFrame:
    """The runs a sweep compares: each label at its chosen learning rate (the selection's other rates drop out)."""
    return df[df["final"].astype(bool)] if "final" in df else df


def geometry(df: pd.DataFrame, target: str = "gain", **_) -> go.Figure:
    """Each run's geometry summary against its accuracy gain (after − before) or its forgetting, one panel per
    summary, with Spearman's rho, its 95% interval (Fisher z) and n in the title: with a handful of runs the
    interval is wide, and says so. Every finished run of the sweep is a point, the selection's other learning rates
    included: the rate moves geometry and outcome together, which is part of what this asks."""
    df, order = by_method(df)
    have = [c for c in SUMMARIES if c in df and df[c].notna().sum() >= 2]
    if df.empty or not have or target not in df or df[target].isna().all():
        return empty_figure(f"no run has both {TARGETS[target]} and a geometry summary")
    titles = []
    for c in have:
        s = spearman(df[c], df[target])
        interval = "" if np.isnan(s["lo"]) else f" [{s['lo']:.2f}, {s['hi']:.2f}]"
        rho = "ρ undefined (a constant or n < 3)" if np.isnan(s["rho"]) else f"ρ = {s['rho']:.2f}{interval}"
        titles.append(f"{rho}, n = {s['n']}")
    fig = grid(1, len(have), titles)
    palette, marks = colors(order), symbols(order)
    for col, c in enumerate(have, start=1):
        for label, part in df.groupby("label", sort=False):
            fig.add_trace(go.Scatter(x=part[c], y=part[target], mode="markers", name=label, legendgroup=label,
                                     showlegend=col == 1,
                                     marker={"size": 8, "color": palette[label], "symbol": marks[label]},
                                     text=[f"{label} seed {s}" for s in part["seed"]]), row=1, col=col)
        fig.update_xaxes(title_text=SHORT[c], row=1, col=col)
        fig.update_yaxes(title_text=TARGETS[target] if col == 1 else None, row=1, col=col)
    return fig


def geometry_forgetting(df: pd.DataFrame, **_) -> go.Figure:
    """Geometry against forgetting: the same panels as against the gain (intruder dimensions and ΔW effective rank
    are claimed to matter here, Shuttleworth et al. 2024)."""
    return geometry(df, target="forgetting")


def lr_curves(df: pd.DataFrame, **_) -> go.Figure:
    """Per method, dev accuracy against the learning rate over its selection runs (mean over selection seeds, a
    faint point per run), the chosen rate ringed: how much of a comparison the rate alone decides."""
    df, order = by_method(df)
    sel = df[df["phase"] == "select"].dropna(subset=["lr", "dev_accuracy"]) if "phase" in df else df[:0]
    if sel.empty:
        return empty_figure("no learning-rate selection in this sweep: geodiag sweep --lr-grid 1e-4,3e-4,1e-3,3e-3")
    fig = go.Figure()
    palette, marks = colors(order), symbols(order)
    for label, part in sel.groupby("label", sort=False):
        mean = part.groupby("lr")["dev_accuracy"].mean().sort_index()
        fig.add_trace(go.Scatter(x=part["lr"], y=part["dev_accuracy"], mode="markers", opacity=0.4,
                                 legendgroup=label, showlegend=False, marker={"color": palette[label], "size": 5}))
        fig.add_trace(go.Scatter(x=mean.index, y=mean.values, mode="lines+markers", name=label, legendgroup=label,
                                 line={"color": palette[label]}, marker={"symbol": marks[label], "size": 7}))
        chosen = df[(df["label"] == label) & df["final"].astype(bool)]["lr"].dropna()
        if len(chosen) and chosen.iloc[0] in mean.index:
            fig.add_trace(go.Scatter(x=[chosen.iloc[0]], y=[mean[chosen.iloc[0]]], mode="markers", legendgroup=label,
                                     showlegend=False, hovertext=f"{label}: chosen",
                                     marker={"symbol": "circle-open", "size": 16, "color": palette[label],
                                             "line": {"width": 2}}))
    fig.update_xaxes(title_text="learning rate", type="log", dtick=1, exponentformat="power")
    fig.update_yaxes(title_text="dev exact-match accuracy")
    fig.update_layout(legend_title_text="method (ringed: chosen)")
    return fig


def learning_forgetting(df: pd.DataFrame, **_) -> go.Figure:
    """Learning against forgetting (Biderman et al. 2024, Fig. 1's axes): test accuracy against the rise of the
    token loss on general text, a point per run and each method's mean ± s.e. on both axes."""
    df, order = by_method(df)
    df = compared(df)
    have = df.dropna(subset=["accuracy", "forgetting"]) if "forgetting" in df else df[:0]
    if have.empty:
        return empty_figure("no run recorded forgetting: geodiag train records it unless --forget-size 0")
    fig = go.Figure()
    palette, marks = colors(order), symbols(order)
    acc, forget = per_method(have, "accuracy"), per_method(have, "forgetting")
    for (label, part), a, f in zip(have.groupby("label", sort=False), acc.itertuples(), forget.itertuples(),
                                   strict=True):
        fig.add_trace(go.Scatter(x=part["forgetting"], y=part["accuracy"], mode="markers", opacity=0.45,
                                 legendgroup=label, showlegend=False,
                                 marker={"size": 6, "color": palette[label], "symbol": marks[label]}))
        fig.add_trace(go.Scatter(x=[f.mean], y=[a.mean], mode="markers", name=f"{label} (n={a.n})", legendgroup=label,
                                 error_x={"type": "data", "array": [0 if np.isnan(f.se) else f.se]},
                                 error_y={"type": "data", "array": [0 if np.isnan(a.se) else a.se]},
                                 marker={"size": 11, "color": palette[label], "symbol": "diamond"}))
    fig.update_xaxes(title_text="forgetting (Δ token loss on general text)")
    fig.update_yaxes(title_text="test exact-match accuracy")
    fig.update_layout(legend_title_text="method (mean ± s.e.)")
    return fig


TARGETS = {"gain": "accuracy gain", "forgetting": "forgetting (Δ loss, general text)"}
