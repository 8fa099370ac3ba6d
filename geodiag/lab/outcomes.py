"""What each training run came to, one row per run: its parameters (the budget's count when a sweep sized it),
accuracy before and after, the held-out loss, and geometry summaries to set against the outcome. Also which runs
a sweep (or a run's sweep) holds. Torch-free: the Results page and `geodiag export --figure results` read it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geodiag import names as n
from geodiag.errors import GeodiagError
from geodiag.lab.selection import cell_table, final_runs
from geodiag.store import Reader, parsed_config

SUMMARIES = {  # column -> what it is, for the geometry vs outcome panel
    "gid_rank_ratio": "GID / rank of the allocation used (mean over modules)",
    "erank": "ΔW effective rank at the end (mean over modules)",
    "angle_dw_grad": "ΔW–gradient principal angle at the end (degrees, mean)",
    "coverage": "probe activation coverage at the end (mean over layers)",
}
READ = (n.EVAL_ACCURACY, n.EVAL_LOSS, n.DEV_ACCURACY, n.DEV_LOSS, n.FORGET_LOSS, n.LOSS_LM, n.SPECTRUM_ERANK,
        n.ANGLE_DW_GRAD, n.PROBE_COVERAGE, n.GID, n.ADALORA_RANK, n.GATE_EFFECTIVE_RANK)


ITEM_COLUMNS = ["run_id", "item", "exact"]
COLUMNS = ["run_id", "name", "label", "method", "seed", "sweep", "lr", "phase", "final", "params", "trainable_params",
           "accuracy_before", "accuracy", "gain", "eval_loss", "dev_accuracy", "dev_loss", "forgetting", "lm_loss",
           *SUMMARIES]


def sweep_run_ids(reader: Reader, sweep_or_run: str) -> list[str]:
    """The finished training runs of a sweep, given its id or the id of one of its runs (a run outside any
    sweep: that run alone)."""
    runs = reader.runs()
    train = runs[(runs["kind"] == "train") & (runs["status"] == "finished")]
    if sweep_or_run in set(runs["sweep"].dropna()):
        return list(train.loc[train["sweep"] == sweep_or_run, "run_id"])
    if sweep_or_run not in set(runs["run_id"]):
        raise GeodiagError(f"There is no sweep or run '{sweep_or_run}' in {reader.path}; `geodiag runs list --store "
                           f"{reader.path}` shows both.")
    run = reader.run(sweep_or_run)
    if run.get("sweep"):
        return list(train.loc[train["sweep"] == run["sweep"], "run_id"])
    return [sweep_or_run]


def sweep_of(reader: Reader, sweep_or_run: str) -> str:
    """The sweep id, given it or the id of one of its runs; a sentence for anything else."""
    runs = reader.runs()
    if sweep_or_run in set(runs["sweep"].dropna()):
        return sweep_or_run
    if sweep_or_run not in set(runs["run_id"]):
        raise GeodiagError(f"There is no sweep or run '{sweep_or_run}' in {reader.path}; `geodiag runs list --store "
                           f"{reader.path}` shows both.")
    sweep = reader.run(sweep_or_run).get("sweep")
    if not sweep:
        raise GeodiagError(f"Run {sweep_or_run} is not part of a sweep; give a sweep id (`geodiag runs list` shows "
                           "them).")
    return sweep


@dataclass(frozen=True)
class SweepRows:
    """What a sweep's Results read, from one scan of the store."""
    outcomes: pd.DataFrame  # one row per run (COLUMNS)
    items: pd.DataFrame  # ITEM_COLUMNS: each run's test items at its last evaluation


def outcomes(reader: Reader, run_ids: list[str]) -> pd.DataFrame:
    """One row per run (COLUMNS), in the order given."""
    return sweep_rows(reader, run_ids).outcomes


def sweep_rows(reader: Reader, run_ids: list[str]) -> SweepRows:
    """The outcome table and the per-item test scores of these runs. Every metric is read as its ends (first and
    last values per run and module, per item for the item scores, aggregated in DuckDB), allocations and the
    sweeps' GID analyses included, in one query."""
    runs = reader.runs().set_index("run_id")
    missing = [r for r in run_ids if r not in runs.index]
    if missing:
        reader.run(missing[0])  # the StoreError sentence
    if not run_ids:
        return SweepRows(pd.DataFrame(columns=COLUMNS), pd.DataFrame(columns=ITEM_COLUMNS))
    analyses = _gid_analyses(runs, run_ids)
    ends = reader.ends([*run_ids, *analyses], (*READ, n.ITEM_EXACT), prefix="alloc/", by_index=(n.ITEM_EXACT,))
    items, ends = ends[ends["name"] == n.ITEM_EXACT], ends[ends["name"] != n.ITEM_EXACT]
    start, end, steps = _run_values(ends)
    per_module = _per_module(ends)
    final = _final(reader, runs, {s for s in runs.loc[run_ids, "sweep"] if s}, end)
    analysis_gids = _sweep_gids(analyses, per_module)
    rows = [_row(rid, runs.loc[rid], start.get(rid, {}), end.get(rid, {}), steps.get(rid, {}),
                 per_module.get(rid, {}), analysis_gids, final) for rid in run_ids]
    return SweepRows(pd.DataFrame(rows, columns=COLUMNS), _items(items, end, run_ids))


def _items(items: pd.DataFrame, end: dict[str, dict[str, float]], run_ids: list[str]) -> pd.DataFrame:
    """run_id, item, exact: each run's test items at its last evaluation; a run without per-item records gets its
    accuracy as a single item -1, so that old runs still compare at the seed level."""
    test = items[items["module"] == "test"]
    test = test[test["step"] == test.groupby("run_id")["step"].transform("max")]  # the last test evaluation
    per_item = pd.DataFrame({"run_id": test["run_id"], "item": test["idx"].astype(int), "exact": test["last"]})
    scored = set(per_item["run_id"])
    bare = [rid for rid in run_ids if rid not in scored and n.EVAL_ACCURACY in end.get(rid, {})]
    whole = pd.DataFrame({"run_id": bare, "item": -1, "exact": [end[rid][n.EVAL_ACCURACY] for rid in bare]})
    return pd.concat([per_item, whole], ignore_index=True)[ITEM_COLUMNS]


def _run_values(ends: pd.DataFrame) -> tuple[dict, dict, dict]:
    """run -> metric -> its run-level first value, its value at the end (the mean over modules and indices at
    its last step), and at how many steps it was recorded."""
    scalar = ends[ends["module"] == ""]
    at_end = ends[ends["at_end"]].assign(total=lambda d: d["last"] * d["n_last"])
    sums = at_end.groupby(["run_id", "name"], sort=False)[["total", "n_last"]].sum()
    end_mean = (sums["total"] / sums["n_last"]).to_dict()
    start, end, steps = {}, {}, {}
    for (rid, name), value in end_mean.items():
        end.setdefault(rid, {})[name] = float(value)
    for rid, name, first, count in zip(scalar["run_id"], scalar["name"], scalar["first"], scalar["steps"],
                                       strict=True):
        start.setdefault(rid, {})[name] = float(first)
        steps.setdefault(rid, {})[name] = int(count)
    return start, end, steps


def _per_module(ends: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """run -> metric -> module -> value, for the GIDs (each module's last value) and the ranks an allocation
    ended with (the modules recorded at the metric's last step)."""
    ranked = ends["name"].isin([n.ADALORA_RANK, n.GATE_EFFECTIVE_RANK]) | ends["name"].str.endswith(
        "/equivalent_rank")
    wanted = ends[((ends["name"] == n.GID) | (ranked & ends["at_end"])) & (ends["module"] != "")]
    out: dict = {}
    for rid, name, module, value in zip(wanted["run_id"], wanted["name"], wanted["module"], wanted["last"],
                                        strict=True):
        out.setdefault(rid, {}).setdefault(name, {})[module] = float(value)
    return out


def _final(reader: Reader, runs: pd.DataFrame, sweeps: set[str], end: dict[str, dict[str, float]]) -> set[str]:
    """The runs each sweep compares: per label, those at its chosen learning rate (all of them without a grid).
    One table for every sweep; the dev numbers of the runs already read are not read again."""
    if not sweeps:
        return set()
    dev = {rid: (v.get(n.DEV_ACCURACY, np.nan), v.get(n.DEV_LOSS, np.nan)) for rid, v in end.items()}
    table = cell_table(reader, runs[(runs["kind"] == "train") & runs["sweep"].isin(sweeps)].reset_index(), dev)
    return {rid for _, mine in table.groupby("sweep", sort=False) for _, ids in final_runs(mine).values()
            for rid in ids}


def _row(rid: str, run: pd.Series, start: dict[str, float], end: dict[str, float], steps: dict[str, int],
         per_module: dict[str, dict[str, float]], analysis_gids: dict[str, dict[str, float]], final: set[str]
         ) -> dict:
    config = parsed_config(run["config"])
    budget = config.get("budget") or {}
    trainable = None if pd.isna(run["trainable_params"]) else int(run["trainable_params"])
    recorded_forgetting = steps.get(n.FORGET_LOSS, 0) >= 2  # before and after training
    out = {"run_id": rid, "name": run["name"], "label": run["label"], "method": run["method"],
           "seed": run["seed"], "sweep": run["sweep"], "lr": config.get("lr"),
           "phase": (config.get("selection") or {}).get("phase", "final"), "final": rid in final or not run["sweep"],
           "params": budget.get("params", trainable), "trainable_params": trainable,
           "accuracy_before": start.get(n.EVAL_ACCURACY, np.nan), "accuracy": end.get(n.EVAL_ACCURACY, np.nan),
           "eval_loss": end.get(n.EVAL_LOSS, np.nan), "lm_loss": end.get(n.LOSS_LM, np.nan),
           "dev_accuracy": end.get(n.DEV_ACCURACY, np.nan), "dev_loss": end.get(n.DEV_LOSS, np.nan),
           "forgetting": end[n.FORGET_LOSS] - start[n.FORGET_LOSS] if recorded_forgetting else np.nan,
           "erank": end.get(n.SPECTRUM_ERANK, np.nan), "angle_dw_grad": end.get(n.ANGLE_DW_GRAD, np.nan),
           "coverage": end.get(n.PROBE_COVERAGE, np.nan)}
    out["gain"] = out["accuracy"] - out["accuracy_before"]
    out["gid_rank_ratio"] = _gid_rank_ratio(per_module, config, analysis_gids.get(run["sweep"] or "", {}))
    return out


def _gid_rank_ratio(per_module: dict[str, dict[str, float]], config: dict, sweep_gids: dict[str, float]) -> float:
    """mean_m GID_m / rank_m: the GIDs the run recorded (or its sweep's analysis), over the rank each module
    ended with (the allocation's equivalent rank, AdaLoRA's kept rank, ManifoldLoRA's gate effective rank, or
    the uniform rank r)."""
    gids = per_module.get(n.GID) or sweep_gids
    allocated = sorted(x for x in per_module if (n.allocation_parts(x) or ("", ""))[1] == "equivalent_rank")
    ranks = next((per_module[x] for x in (*allocated, n.ADALORA_RANK, n.GATE_EFFECTIVE_RANK) if per_module.get(x)),
                 {})
    if not ranks:
        r = (config.get("method_options") or {}).get("r")
        ranks = {mod: float(r) for mod in gids} if r else ranks
    common = [mod for mod in ranks if mod in gids and ranks[mod] > 0]
    return float(np.mean([gids[mod] / ranks[mod] for mod in common])) if common else np.nan


def _gid_analyses(runs: pd.DataFrame, run_ids: list[str]) -> dict[str, str]:
    """analysis run -> its sweep, for the finished shared GID analyses of these runs' sweeps (newest first)."""
    sweeps = {s for s in runs.loc[run_ids, "sweep"] if s}
    found = runs[(runs["kind"] == "analysis") & (runs["method"] == "gid") & (runs["status"] == "finished")
                 & runs["sweep"].isin(sweeps)]
    return dict(zip(found.index, found["sweep"], strict=True))


def _sweep_gids(analyses: dict[str, str], per_module: dict) -> dict[str, dict[str, float]]:
    """sweep id -> module -> GID of that sweep's shared GID analysis (its newest)."""
    out: dict[str, dict[str, float]] = {}
    for rid, sweep in analyses.items():
        out.setdefault(sweep, per_module.get(rid, {}).get(n.GID, {}))
    return out
