"""Figure builders: pure DataFrame -> plotly Figure functions, one per paper figure, shared by the dashboard
pages and `geodiag export`. The registry says which metrics each figure reads, how much of the store it
spans (one run, or every run of the run's model for the atlas) and which command produces its data.
No torch here: pages import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from geodiag.figures import manifold, rank
from geodiag.figures.export import FORMATS, ExportError, export_figure, render_bytes, safe_name
from geodiag.figures.style import PaperStyle, paper_style


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    build: Callable[..., go.Figure]
    metrics: tuple[str, ...]
    hint: str  # the command that records this figure's data
    rows: int = 2  # panel rows, for the exported height
    scalars: bool = False  # also read every run-level scalar (Fig. 4)
    scope: str = "run"  # "run": the chosen runs; "model": every run of the first run's model (atlas)


_ALLOC = tuple(f"alloc/{m}{s}" for m in ("ralora", "ralora-pro", "gelora", "lora-gid")
               for s in ("/equivalent_rank", "/params"))

FIGURES: dict[str, FigureSpec] = {s.name: s for s in [
    FigureSpec("gates", "ManifoldLoRA Fig. 1: gates and effective rank", manifold.gates,
               ("gate/value", "gate/effective_rank", "gate/dead"), "geodiag train --method manifold"),
    FigureSpec("dynamics", "ManifoldLoRA Fig. 2: training-curve decomposition", manifold.dynamics,
               ("loss/lm", "loss/sparsity", "loss/alignment", "gate/effective_rank"),
               "geodiag train --method manifold"),
    FigureSpec("manifold", "ManifoldLoRA Fig. 3: manifold geometry", manifold.geometry,
               ("probe/d_eff", "probe/orthonormality", "probe/alignment", "geometry/participation_ratio",
                "geometry/participation_ratio_n"), "geodiag train --method manifold"),
    FigureSpec("curves", "ManifoldLoRA Fig. 4: every scalar curve", manifold.curves, (), "geodiag train",
               rows=3, scalars=True),
    FigureSpec("spectrum", "ManifoldLoRA Fig. 5: ΔW spectrum", manifold.spectrum,
               ("spectrum/singular_value", "spectrum/stable_rank", "spectrum/nuclear", "spectrum/frobenius",
                "spectrum/alpha"), "geodiag train (any adapter method) or geodiag import-peft DIR"),
    FigureSpec("gid", "RaLoRA: gradient intrinsic dimensionality", rank.gid, ("gid/erank", "gid/threshold"),
               "geodiag analyze gid, or geodiag train --method full --record-gid-every 10"),
    FigureSpec("fisher", "RaLoRA Table 8: GID vs Fisher", rank.fisher,
               ("gid/fisher_pearson_log", "gid/fisher_pearson_inv", "gid/fisher_spearman"), "geodiag analyze gid",
               rows=1),
    FigureSpec("id", "GeLoRA: intrinsic-dimension profile", rank.intrinsic_dim,
               ("id/twonn", "id/twonn_error", "id/twonn_n", "geometry/participation_ratio"), "geodiag analyze id",
               rows=1),
    FigureSpec("atlas", "Rank allocation atlas", rank.atlas,
               (*_ALLOC, "gate/effective_rank", "adalora/rank", "gid/erank"),
               "geodiag analyze gid and geodiag analyze id (and train runs on the same model)", rows=1,
               scope="model"),
    FigureSpec("subspace", "Subspace angles: ΔW, gradient and probe", rank.subspace, rank.SUBSPACE_METRICS,
               "geodiag train --subspace-k 8", rows=1),
]}


def get_figure(name: str) -> FigureSpec:
    from geodiag.errors import GeodiagError

    if name not in FIGURES:
        raise GeodiagError(f"Unknown figure '{name}'; `geodiag export --list` names them: {', '.join(FIGURES)}.")
    return FIGURES[name]


def scope_runs(runs: pd.DataFrame, spec: FigureSpec, run_ids: list[str]) -> list[str]:
    """The runs a figure reads: the chosen ones, or (atlas) every run of the first one's model, chosen first."""
    if spec.scope != "model" or not run_ids:
        return run_ids
    model = runs.loc[runs["run_id"] == run_ids[0], "model"]
    same = runs[runs["model"] == (model.iloc[0] if len(model) else None)]
    same = same.assign(order=same["kind"].map({"analysis": 0, "import": 2}).fillna(1)).sort_values("order")
    return list(dict.fromkeys([*run_ids, *same["run_id"]]))


def figure_data(reader, name: str, run_ids: list[str]) -> pd.DataFrame:
    """The tidy rows a figure draws (also the CSV written beside an export)."""
    spec = get_figure(name)
    ids = scope_runs(reader.runs(), spec, run_ids)
    return reader.metrics(ids, spec.metrics, scalars=spec.scalars)


def figure_options(name: str, run: dict | None) -> dict:
    """Builder options taken from the run's config: the loss weights, the hidden size, LoRA's rank."""
    cfg = (run or {}).get("config") or {}
    opts = cfg.get("method_options") or {}
    if name == "dynamics":
        return {"weights": {"loss/sparsity": opts.get("lambda_s", 0.01), "loss/alignment": opts.get("lambda_a", 0.10)}}
    if name == "manifold":
        return {"hidden_size": cfg.get("hidden_size")}
    return {}


def build_figure(name: str, data: pd.DataFrame, **options) -> go.Figure:
    return get_figure(name).build(data, **options)


def run_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Legend labels for runs: the name and the end of the id, which tells same-named runs apart."""
    return {r.run_id: f"{r.name} ({r.run_id[-6:]})" for r in runs.itertuples()}


__all__ = ["FIGURES", "FORMATS", "ExportError", "FigureSpec", "PaperStyle", "build_figure", "export_figure",
           "figure_data", "figure_options", "get_figure", "paper_style", "render_bytes", "run_labels", "safe_name",
           "scope_runs"]
