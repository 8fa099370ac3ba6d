"""What each training run came to, one row per run: its parameters (the budget's count when a sweep sized it),
accuracy before and after, the held-out loss, and geometry summaries to set against the outcome. Also which runs
a sweep (or a run's sweep) holds. Torch-free: the Results page and `geodiag export --figure results` read it."""

from __future__ import annotations

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
READ = (n.EVAL_ACCURACY, n.EVAL_LOSS, n.DEV_ACCURACY, n.FORGET_LOSS, n.LOSS_LM, n.SPECTRUM_ERANK, n.ANGLE_DW_GRAD,
        n.PROBE_COVERAGE, n.GID, n.ADALORA_RANK, n.GATE_EFFECTIVE_RANK)


COLUMNS = ["run_id", "name", "label", "method", "seed", "sweep", "lr", "phase", "final", "params", "trainable_params",
           "accuracy_before", "accuracy", "gain", "eval_loss", "dev_accuracy", "forgetting", "lm_loss", *SUMMARIES]


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


def outcomes(reader: Reader, run_ids: list[str]) -> pd.DataFrame:
    """One row per run (COLUMNS), in the order given."""
    runs = reader.runs().set_index("run_id")
    missing = [r for r in run_ids if r not in runs.index]
    if missing:
        reader.run(missing[0])  # the StoreError sentence
    if not run_ids:
        return pd.DataFrame(columns=COLUMNS)
    m = reader.metrics(list(run_ids), READ, prefix="alloc/")  # every method's allocation, in the same scan
    analysis_gids = _sweep_gids(reader, runs, run_ids)
    final = _final(reader, runs, {s for s in runs.loc[run_ids, "sweep"] if s})
    by_run = dict(tuple(m.groupby("run_id", sort=False)))
    rows = [_row(rid, runs.loc[rid], by_run.get(rid, m[:0]), analysis_gids, final) for rid in run_ids]
    return pd.DataFrame(rows, columns=COLUMNS)


def _final(reader: Reader, runs: pd.DataFrame, sweeps: set[str]) -> set[str]:
    """The runs each sweep compares: per label, those at its chosen learning rate (all of them without a grid).
    One table for every sweep (one metrics query), however many sweeps the runs come from."""
    if not sweeps:
        return set()
    table = cell_table(reader, runs[(runs["kind"] == "train") & runs["sweep"].isin(sweeps)].reset_index())
    return {rid for _, mine in table.groupby("sweep", sort=False) for _, ids in final_runs(mine).values()
            for rid in ids}


def _row(rid: str, run: pd.Series, m: pd.DataFrame, analysis_gids: dict[str, dict[str, float]],
         final: set[str]) -> dict:
    config = parsed_config(run["config"])
    acc, forget = _series(m, n.EVAL_ACCURACY), _series(m, n.FORGET_LOSS)
    budget = config.get("budget") or {}
    trainable = None if pd.isna(run["trainable_params"]) else int(run["trainable_params"])
    out = {"run_id": rid, "name": run["name"], "label": run["label"], "method": run["method"],
           "seed": run["seed"], "sweep": run["sweep"], "lr": config.get("lr"),
           "phase": (config.get("selection") or {}).get("phase", "final"), "final": rid in final or not run["sweep"],
           "params": budget.get("params", trainable),
           "trainable_params": trainable,
           "accuracy_before": acc.iloc[0] if len(acc) else np.nan, "accuracy": acc.iloc[-1] if len(acc) else np.nan,
           "eval_loss": _last(m, n.EVAL_LOSS), "lm_loss": _last(m, n.LOSS_LM), "dev_accuracy": _last(m, n.DEV_ACCURACY),
           "forgetting": forget.iloc[-1] - forget.iloc[0] if len(forget) >= 2 else np.nan,
           "erank": _last(m, n.SPECTRUM_ERANK), "angle_dw_grad": _last(m, n.ANGLE_DW_GRAD),
           "coverage": _last(m, n.PROBE_COVERAGE)}
    out["gain"] = out["accuracy"] - out["accuracy_before"]
    out["gid_rank_ratio"] = _gid_rank_ratio(m, config, analysis_gids.get(run["sweep"] or "", {}))
    return out


def _series(m: pd.DataFrame, name: str) -> pd.Series:
    """A run-level scalar over steps."""
    return m[m["name"] == name].sort_values("step")["value"].reset_index(drop=True)


def _last(m: pd.DataFrame, name: str) -> float:
    """The mean of a metric over modules (and indices) at the last step it was recorded."""
    x = m[m["name"] == name]
    return float(x[x["step"] == x["step"].max()]["value"].mean()) if len(x) else np.nan


def _gid_rank_ratio(m: pd.DataFrame, config: dict, sweep_gids: dict[str, float]) -> float:
    """mean_m GID_m / rank_m: the GIDs the run recorded (or its sweep's analysis), over the rank each module
    ended with (the allocation's equivalent rank, AdaLoRA's kept rank, ManifoldLoRA's gate effective rank, or
    the uniform rank r)."""
    gids = m[m["name"] == n.GID].groupby("module")["value"].last().to_dict() or sweep_gids
    ranks = pd.Series(dtype=float)
    allocated = sorted({x for x in m["name"] if (n.allocation_parts(x) or ("", ""))[1] == "equivalent_rank"})
    for name in (*allocated, n.ADALORA_RANK, n.GATE_EFFECTIVE_RANK):
        x = m[m["name"] == name]
        if len(x):
            ranks = x[x["step"] == x["step"].max()].groupby("module")["value"].mean()
            break
    if ranks.empty:
        r = (config.get("method_options") or {}).get("r")
        ranks = pd.Series({mod: float(r) for mod in gids}) if r else ranks
    common = [mod for mod in ranks.index if mod in gids and ranks[mod] > 0]
    return float(np.mean([gids[mod] / ranks[mod] for mod in common])) if common else np.nan


def _sweep_gids(reader: Reader, runs: pd.DataFrame, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """sweep id -> module -> GID of that sweep's shared GID analysis."""
    sweeps = {s for s in runs.loc[run_ids, "sweep"] if s}
    found = runs[(runs["kind"] == "analysis") & (runs["method"] == "gid") & (runs["status"] == "finished")
                 & runs["sweep"].isin(sweeps)]
    out = {}
    for rid, sweep in zip(found.index, found["sweep"], strict=True):
        g = reader.metric(rid, n.GID)
        out.setdefault(sweep, dict(zip(g["module"], g["value"], strict=True)))
    return out
