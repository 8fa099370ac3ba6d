"""The figure registry: each figure's builder, the metrics it reads, how much of the store it spans (one run,
or every run of the run's model for the atlas) and which command records its data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from geodiag import names as n
from geodiag.errors import GeodiagError
from geodiag.figures import manifold, peers, rank, results
from geodiag.lab.outcomes import outcomes, sweep_run_ids


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    build: Callable[..., go.Figure]
    metrics: tuple[str, ...]  # the first is the one the figure cannot be drawn without
    hint: str  # the command that records this figure's data
    scalars: bool = False  # also read every run-level scalar (Fig. 4)
    scope: str = "run"  # "run": the chosen runs; "model": every run of the first run's model (atlas); "sweep":
    # every finished run of the chosen run's sweep (or of the sweep whose id is given), one row per run
    prefer: str | None = None  # the kind of run to show first when the chosen one has no data (analysis)
    # metrics whose names depend on what the runs recorded (every method's allocation): those starting with
    # `prefix` that `keep` accepts, read in the same query as the others
    prefix: str | None = None
    keep: Callable[[str], bool] | None = None
    caption: str = ""  # what the figure shows, in sentences: under it on its page and in `geodiag report`
    # a model-scope figure that draws, per group of its metrics, only the first run (in scope order) that recorded
    # the group: metric name -> group (the atlas: one series per method); only those runs' rows are read
    first_of: Callable[[str], str] | None = None

    def reads(self, reader, run_ids: list[str]) -> tuple[str, ...]:
        """The names of every metric the figure reads from these runs."""
        more = reader.names_starting(run_ids, self.prefix) if self.prefix else []
        return (*self.metrics, *[x for x in more if self.wants(x)])

    def read(self, reader, run_ids: list[str]) -> pd.DataFrame:
        """The figure's rows from these runs, in one query."""
        rows = reader.metrics(run_ids, self.metrics, scalars=self.scalars, prefix=self.prefix)
        unwanted = [x for x in rows["name"].unique() if not self.wants(x)]
        return rows[~rows["name"].isin(unwanted)].reset_index(drop=True) if unwanted else rows

    def wants(self, name: str) -> bool:
        """Whether a metric the query returned is one the figure reads (a prefixed name must pass `keep`)."""
        if name in self.metrics or not (self.prefix and name.startswith(self.prefix)):
            return True
        return self.keep is None or self.keep(name)


def is_allocation(name: str) -> bool:
    """An allocation's per-module rank or parameter count (alloc/<method>/equivalent_rank or /params), whichever
    method or rule recorded it."""
    return (n.allocation_parts(name) or ("", ""))[1] in ("equivalent_rank", "params")


RESULTS = ("A small point per run; a diamond per method at its mean over seeds, ± one standard error (n in the "
           "legend); the dotted line joins the Pareto front of the means: no other method has as few parameters and "
           "as much accuracy (or as little loss). Parameters are the budget's count (ManifoldLoRA: its adapters, not "
           "its training-time probes; AdaLoRA: its final budget).")
LR = ("Dev accuracy against the learning rate, per method: the mean over its selection seeds, a faint point per run, "
      "the chosen rate ringed. Each method is compared at its own best rate (Lee et al. 2026): a single shared rate "
      "decides much of a comparison on its own.")
FORGETTING = ("Test accuracy against forgetting: the rise of the mean token loss on general text that is not the "
              "task's (the Python Language Reference prose by default) from the base model to the trained one "
              "(Biderman et al. 2024). Up and to the left learns more and forgets less.")
GEOMETRY = ("Each run's geometry summaries against {outcome}, one point per run (seeds and a selection's learning "
            "rates count separately), with Spearman's rho, its Fisher-z 95% interval and n in each panel's title.")

FIGURES: dict[str, FigureSpec] = {s.name: s for s in [
    FigureSpec("gates", "ManifoldLoRA Fig. 1: gates and effective rank", manifold.gates,
               (n.GATE_VALUE, n.GATE_EFFECTIVE_RANK, n.GATE_DEAD), "geodiag train --method manifold"),
    FigureSpec("dynamics", "ManifoldLoRA Fig. 2: training-curve decomposition", manifold.dynamics,
               (n.LOSS_LM, n.LOSS_SPARSITY, n.LOSS_ALIGNMENT, n.GATE_EFFECTIVE_RANK),
               "geodiag train --method manifold"),
    FigureSpec("manifold", "ManifoldLoRA Fig. 3: manifold geometry", manifold.geometry,
               (n.PROBE_D_EFF, n.PROBE_ORTHONORMALITY, n.PROBE_ALIGNMENT, n.PARTICIPATION_RATIO,
                n.PARTICIPATION_RATIO_N), "geodiag train --method manifold"),
    FigureSpec("curves", "ManifoldLoRA Fig. 4: every scalar curve", manifold.curves, (), "geodiag train", scalars=True),
    FigureSpec("spectrum", "ManifoldLoRA Fig. 5: ΔW spectrum", manifold.spectrum,
               (n.SINGULAR_VALUE, n.STABLE_RANK, n.NUCLEAR, n.FROBENIUS, n.POWERLAW_ALPHA),
               "geodiag train (any adapter method) or geodiag import-peft DIR"),
    FigureSpec("gid", "RaLoRA: gradient intrinsic dimensionality", rank.gid, (n.GID, n.GID_THRESHOLD),
               "geodiag analyze gid, or geodiag train --method full --record-gid-every 10", prefer="analysis"),
    FigureSpec("fisher", "RaLoRA Table 8: GID vs Fisher", rank.fisher, rank.FISHER_METRICS, "geodiag analyze gid",
               prefer="analysis"),
    FigureSpec("id", "GeLoRA: intrinsic-dimension profile", rank.intrinsic_dim,
               (n.TWONN, n.TWONN_ERROR, n.TWONN_N, n.PARTICIPATION_RATIO), "geodiag analyze id",
               prefer="analysis"),
    FigureSpec("atlas", "Rank allocation atlas", rank.atlas,
               (n.GATE_EFFECTIVE_RANK, n.ADALORA_RANK, n.GID),
               "geodiag analyze gid and geodiag analyze id (and train runs on the same model)",
               scope="model", prefix="alloc/", keep=is_allocation,
               first_of=lambda name: (n.allocation_parts(name) or (name,))[0]),
    FigureSpec("subspace", "Subspace angles: ΔW, gradient and probe", rank.subspace, rank.SUBSPACE_METRICS,
               "geodiag train --subspace-k 8"),
    FigureSpec("dora", "DoRA: magnitude and direction change", peers.dora, (n.DORA_MAGNITUDE, n.DORA_DIRECTION),
               "geodiag train --method dora"),
    FigureSpec("intruders", "Intruder dimensions (Shuttleworth et al. 2024)", peers.intruders,
               (n.INTRUDERS, n.SINGULAR_VALUE), "geodiag train (recorded at the end of every run)"),
    FigureSpec("results", "Outcomes at equal budget: accuracy and loss against parameters", results.results,
               (n.EVAL_ACCURACY, n.EVAL_LOSS), "geodiag sweep --budget lora-r=8 (evaluated runs)",
               scope="sweep", caption=RESULTS),
    FigureSpec("outcome", "Geometry against outcome (Spearman's rho)", results.geometry,
               (n.EVAL_ACCURACY, n.SPECTRUM_ERANK), "geodiag sweep (evaluated runs with spectra)",
               scope="sweep", caption=GEOMETRY.format(outcome="the accuracy gain over the base model")),
    FigureSpec("lr", "Learning-rate selection: dev accuracy against the rate", results.lr_curves,
               (n.DEV_ACCURACY,), "geodiag sweep --lr-grid 1e-4,3e-4,1e-3,3e-3", scope="sweep",
               caption=LR),
    FigureSpec("forgetting", "Learning against forgetting (Biderman et al. 2024)", results.learning_forgetting,
               (n.EVAL_ACCURACY, n.FORGET_LOSS), "geodiag sweep (runs record forgetting by default)",
               scope="sweep", caption=FORGETTING),
    FigureSpec("outcome-forgetting", "Geometry against forgetting (Spearman's rho)", results.geometry_forgetting,
               (n.FORGET_LOSS, n.SPECTRUM_ERANK), "geodiag sweep (runs record forgetting by default)",
               scope="sweep", caption=GEOMETRY.format(outcome="forgetting")),
]}


def get_figure(name: str) -> FigureSpec:
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
    """The tidy rows a figure draws (also the CSV written beside an export); a sweep figure's are one row per run
    of the sweep (the first id: a sweep id, or a run of the sweep)."""
    spec = get_figure(name)
    if spec.scope == "sweep":
        return outcomes(reader, sweep_run_ids(reader, run_ids[0])) if run_ids else outcomes(reader, [])
    ids = scope_runs(reader.runs(), spec, run_ids)
    if spec.first_of is None or len(ids) <= 1:
        return spec.read(reader, ids)
    return _first_runs(reader, spec, ids)


def _first_runs(reader, spec: FigureSpec, ids: list[str]) -> pd.DataFrame:
    """The rows of each group's first run only (a store of 2,000 runs reads a handful of them): which run recorded
    which metric comes from one aggregating query, then only the chosen runs' rows are read."""
    have = reader.names_by_run(ids, spec.metrics, prefix=spec.prefix)
    have = have[have["name"].map(spec.wants).astype(bool)]
    group = spec.first_of
    order = {rid: i for i, rid in enumerate(ids)}
    have = have.assign(group=have["name"].map(group), order=have["run_id"].map(order)).sort_values("order")
    first = have.groupby("group")["run_id"].first()  # group -> its first run
    keep = have[have["run_id"] == have["group"].map(first)]
    rows = reader.metrics(sorted(set(keep["run_id"]), key=order.get), tuple(dict.fromkeys(keep["name"])))
    return rows.merge(keep[["run_id", "name"]], on=["run_id", "name"]).reset_index(drop=True)


def figure_options(name: str, run: dict | None) -> dict:
    """Builder options taken from the run's config: the loss weights, the hidden size, LoRA's rank."""
    cfg = (run or {}).get("config") or {}
    opts = cfg.get("method_options") or {}
    if name == "dynamics":
        return {"weights": {n.LOSS_SPARSITY: opts.get("lambda_s", n.LAMBDA_S),
                            n.LOSS_ALIGNMENT: opts.get("lambda_a", n.LAMBDA_A)}}
    if name == "manifold":
        return {"hidden_size": cfg.get("hidden_size")}
    return {}


def build_figure(name: str, data: pd.DataFrame, **options) -> go.Figure:
    return get_figure(name).build(data, **options)


def run_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Legend labels for runs: the name and the end of the id, which tells same-named runs apart."""
    return {rid: f"{name} ({rid[-6:]})" for rid, name in zip(runs["run_id"].tolist(), runs["name"].tolist(),
                                                               strict=True)}  # two columns, not every row's
