"""What the allocation lab reads from a stored analysis run: the vectors a rule allocates from and the shapes of
the modules it allocates to. Torch-free: the dashboard and `geodiag allocate` never load a model."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from geodiag.allocation import ANALYSES, ModuleShape, Plan, Vectors
from geodiag.errors import GeodiagError
from geodiag.names import ESD_ALPHA, ESD_SPIKES, ESD_STABLE_RANK, GID, IMPORTANCE, TWONN
from geodiag.store import Reader


@dataclass(frozen=True)
class StoredAnalysis:
    run_id: str
    kind: str  # gid | id | spectra
    model: str
    vectors: Vectors
    shapes: tuple[ModuleShape, ...]


def analysis_runs(reader: Reader) -> pd.DataFrame:
    """Finished analysis runs, newest first."""
    runs = reader.runs()
    return runs[(runs["kind"] == "analysis") & (runs["status"] == "finished")].reset_index(drop=True)


def stored_analysis(reader: Reader, run_id: str) -> StoredAnalysis:
    run = reader.run(run_id)
    if run["kind"] != "analysis" or run["method"] not in ANALYSES:
        raise GeodiagError(f"Run {run_id} is a {run['kind']} run; allocations come from a `geodiag analyze "
                           f"{'|'.join(ANALYSES)}` run.")
    modules = run["config"].get("modules")
    if not modules:
        raise GeodiagError(f"Analysis {run_id} was recorded before geodiag kept module shapes; run `geodiag analyze "
                           f"{run['method']}` again.")
    shapes = tuple(ModuleShape(name, int(d_in), int(d_out), layer, mtype)
                   for name, d_out, d_in, layer, mtype in modules)
    if run["method"] == "gid":
        vectors = Vectors(gids=_by_module(reader, run_id, GID), importance=_by_module(reader, run_id, IMPORTANCE))
    elif run["method"] == "spectra":
        vectors = Vectors(alpha=_by_module(reader, run_id, ESD_ALPHA), spikes=_by_module(reader, run_id, ESD_SPIKES),
                          stable_rank=_by_module(reader, run_id, ESD_STABLE_RANK))
    else:
        ids = reader.metric(run_id, TWONN)
        vectors = Vectors(ids={int(r.layer): float(r.value) for r in ids.itertuples()})
    return StoredAnalysis(run_id, run["method"], str(run["model"]), vectors, shapes)


def _by_module(reader: Reader, run_id: str, name: str) -> dict[str, float]:
    df = reader.metric(run_id, name)
    return {str(m): float(v) for m, v in zip(df["module"], df["value"], strict=True)}


def plan_frame(plan: Plan) -> pd.DataFrame:
    """One row per module of an allocation plan: the lab's table and figure."""
    shapes = {s.name: s for s in plan.shapes}
    return pd.DataFrame([{"preset": plan.settings.preset, "module": a.module, "layer": a.layer,
                          "module_type": a.module_type, "d_out": shapes[a.module].d_out, "d_in": shapes[a.module].d_in,
                          "rank": a.rank, "blocks": a.blocks, "equivalent_rank": a.equivalent_rank,
                          "alpha": plan.alphas[a.module], "params": a.params} for a in plan.allocations])


def compare_plans(a: Plan, b: Plan) -> pd.DataFrame:
    """The modules whose allocation differs between two plans: rank and blocks under each, and the change."""
    fa, fb = plan_frame(a).set_index("module"), plan_frame(b).set_index("module")
    both = fa[["layer", "module_type", "rank", "blocks", "params"]].merge(
        fb[["rank", "blocks", "params"]], left_index=True, right_index=True, how="outer", suffixes=("", "_b"))
    changed = both[(both["rank"] != both["rank_b"]) | (both["blocks"] != both["blocks_b"])].copy()
    changed["rank_change"] = changed["rank_b"] - changed["rank"]
    return changed.reset_index()
