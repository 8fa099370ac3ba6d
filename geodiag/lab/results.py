"""A sweep's verdicts, the numbers `geodiag results` prints and the Results page shows: per label its chosen rate,
seeds, test accuracy over seeds and items, the paired difference to a reference label over the seeds and items
both have, its 95% interval, the minimum detectable effect, a Holm-adjusted p-value across labels, a verdict, and
forgetting. Torch-free: read from the store."""

from __future__ import annotations

import math

import pandas as pd

from geodiag.errors import GeodiagError
from geodiag.lab.compare import holm, two_way, verdict
from geodiag.lab.outcomes import SweepRows, sweep_of, sweep_rows
from geodiag.lab.selection import final_runs, sweep_table
from geodiag.store import Reader

KEYS = ["label", "method", "lr", "seeds", "n_items", "params", "accuracy", "accuracy_se", "delta", "ci_low",
        "ci_high", "df", "mde", "p", "p_holm", "verdict", "forgetting", "forgetting_se", "dev_accuracy", "grid_edge"]


def verdicts(reader: Reader, sweep_or_run: str, reference: str = "lora", rows: SweepRows | None = None
             ) -> pd.DataFrame:
    """One row per label (KEYS), the reference first; bad input is one sentence. `rows`: the sweep's outcome table
    and item scores when the caller has them already (the Results page draws its figures from them)."""
    sweep = sweep_of(reader, sweep_or_run)
    dev = None if rows is None else dict(zip(rows.outcomes["run_id"], zip(
        rows.outcomes["dev_accuracy"], rows.outcomes["dev_loss"], strict=True), strict=True))
    table = sweep_table(reader, sweep, dev)
    finals = {label: runs for label, runs in final_runs(table).items() if runs[1]}
    if not finals:
        raise GeodiagError(f"Sweep {sweep} has no finished run yet; `geodiag sweep` runs it (a rerun resumes).")
    if reference not in finals:
        raise GeodiagError(f"Sweep {sweep} has no finished {reference} run to compare with; choose --reference from "
                           f"{', '.join(finals)}.")
    runs = table.set_index("run_id")
    compared = [r for _, ids in finals.values() for r in ids]
    if rows is None or not set(compared) <= set(rows.outcomes["run_id"]):
        rows = sweep_rows(reader, compared)
    per_run, items = rows.outcomes.set_index("run_id"), rows.items
    ref = _matrix(items, runs, finals[reference][1])
    out = pd.DataFrame([_row(label, lr, ids, runs, items, ref if label != reference else None, per_run)
                        for label, (lr, ids) in sorted(finals.items(), key=lambda kv: kv[0] != reference)],
                       columns=KEYS)
    out["grid_edge"] = [grid_edge(table, label, lr) for label, lr in zip(out["label"], out["lr"], strict=True)]
    out["p_holm"] = holm(out["p"].tolist())
    out["verdict"] = [verdict(d, p) if label != reference else "reference"
                      for label, d, p in zip(out["label"], out["delta"], out["p_holm"], strict=True)]
    return out


def _matrix(items: pd.DataFrame, runs: pd.DataFrame, run_ids: list[str]) -> pd.DataFrame:
    """seeds x items of exact match (a seed's newest run)."""
    mine = items[items["run_id"].isin(run_ids)].assign(seed=lambda d: d["run_id"].map(runs["seed"]).astype(int))
    return mine.pivot_table(index="seed", columns="item", values="exact", aggfunc="first")


def _row(label: str, lr, run_ids: list[str], runs: pd.DataFrame, items: pd.DataFrame, ref: pd.DataFrame | None,
         per_run: pd.DataFrame) -> dict:
    """One label's numbers; `per_run` is the outcome table (parameters, forgetting) of the compared runs."""
    x = _matrix(items, runs, run_ids).dropna(axis=1)
    own = two_way(x.to_numpy())
    first = runs.loc[run_ids[0]]
    out = {"label": label, "method": first["method"], "lr": lr, "seeds": sorted(int(s) for s in x.index),
           "n_items": 0 if list(x.columns) == [-1] else x.shape[1], "params": per_run.loc[run_ids[0], "params"],
           "accuracy": own.mean, "accuracy_se": own.se, "dev_accuracy": float(runs.loc[run_ids, "dev_accuracy"].mean())}
    f = per_run.loc[run_ids, "forgetting"].dropna()
    out["forgetting"] = float(f.mean()) if len(f) else math.nan
    out["forgetting_se"] = float(f.std(ddof=1) / math.sqrt(len(f))) if len(f) > 1 else math.nan
    seeds = sorted(set(x.index) & set(ref.index)) if ref is not None else []
    shared = [c for c in x.columns if c in ref.columns] if ref is not None else []
    if not seeds or not shared:  # the reference itself, or nothing in common with it
        return {**out, **dict.fromkeys(("delta", "ci_low", "ci_high", "df", "mde", "p"), math.nan)}
    d = two_way(x.loc[seeds, shared].to_numpy() - ref.loc[seeds, shared].to_numpy())  # paired: same seed, same item
    lo, hi = d.interval()
    return {**out, "delta": d.mean, "ci_low": lo, "ci_high": hi, "df": d.df, "mde": d.mde(), "p": d.p_value()}


def grid_edge(table: pd.DataFrame, label: str, lr: float | None) -> str:
    """'lowest' or 'highest' when the label's chosen rate is an end of its grid (the best rate may lie beyond it),
    else ''. `table`: the sweep's cells (sweep_table)."""
    grids = [g for g in table.loc[table["label"] == label, "grid"] if g]
    if lr is None or not grids or len(grids[0]) < 2:
        return ""
    if math.isclose(lr, min(grids[0]), rel_tol=1e-9):
        return "lowest"
    return "highest" if math.isclose(lr, max(grids[0]), rel_tol=1e-9) else ""


def edge_sentence(table: pd.DataFrame) -> str:
    """A warning, in words, for every label whose chosen rate is an end of its grid ('' when none is)."""
    at = table[table["grid_edge"].astype(bool)]
    if at.empty:
        return ""
    each = "; ".join(f"{r.label} chose {r.lr:g}, the {r.grid_edge} rate of its grid" for r in at.itertuples())
    return (f"At the edge of a learning-rate grid: {each}. A better rate may lie beyond, so the accuracy shown may "
            "understate the method: extend its lr_grid and rerun the sweep (finished cells are kept).")


def power_sentence(table: pd.DataFrame) -> str:
    """What the sweep can see, in words: the range of its comparisons' minimum detectable effects."""
    rows = table.dropna(subset=["mde"]).sort_values("mde")
    if rows.empty:
        return ("No comparison here has an interval: give the labels at least two shared seeds, or per-item "
                "records, to measure what this sweep can detect.")
    lo, hi = rows.iloc[0], rows.iloc[-1]
    span = (f"{100 * lo['mde']:.1f} ({lo['label']})" if len(rows) == 1 else
            f"{100 * lo['mde']:.1f} ({lo['label']}) to {100 * hi['mde']:.1f} ({hi['label']})")
    return (f"This sweep can detect differences of {span} accuracy points or more (80% power, two-sided 5%); "
            "smaller true differences read as indistinguishable.")
