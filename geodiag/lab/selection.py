"""Learning-rate selection on the dev split (Lee et al. 2026, "Learning Rate Matters": each method at its own
tuned rate): per label, the grid value with the best mean dev accuracy over the selection seeds, ties broken by
the lower mean dev loss, then by the lower rate. Torch-free: it reads the store."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geodiag import names as n
from geodiag.errors import GeodiagError
from geodiag.store import Reader, parsed_config

COLUMNS = ["run_id", "label", "method", "model", "seed", "lr", "status", "phase", "grid", "select_seeds",
           "dev_accuracy", "dev_loss", "trainable_params", "config"]


@dataclass(frozen=True)
class Choice:
    lr: float | None  # None: not chosen yet (see reason)
    reason: str = ""
    curve: pd.DataFrame | None = None  # lr, n, dev_accuracy, dev_loss: the means the choice was made on


def sweep_table(reader: Reader, sweep_id: str) -> pd.DataFrame:
    """One row per training run of a sweep (newest first): its cell, rate, phase, status and final dev numbers."""
    try:
        runs = reader.runs()
    except GeodiagError:
        return pd.DataFrame(columns=COLUMNS)
    return cell_table(reader, runs[(runs["kind"] == "train") & (runs["sweep"] == sweep_id)])


def cell_table(reader: Reader, runs: pd.DataFrame) -> pd.DataFrame:
    """`sweep_table`'s rows for any training runs (several sweeps at once: one metrics query), with `sweep`."""
    runs = runs.copy()
    selection = [parsed_config(c).get("selection") or {} for c in runs["config"]]
    runs["phase"] = [s.get("phase", "final") for s in selection]
    runs["grid"] = [tuple(s.get("grid") or ()) for s in selection]
    runs["select_seeds"] = [tuple(s.get("seeds") or ()) for s in selection]
    finished = list(runs.loc[runs["status"] == "finished", "run_id"])
    m = reader.metrics(finished, [n.DEV_ACCURACY, n.DEV_LOSS]) if finished else pd.DataFrame(
        columns=["run_id", "name", "step", "value"])
    last = m.sort_values("step").groupby(["run_id", "name"])["value"].last().unstack()
    for col, name in (("dev_accuracy", n.DEV_ACCURACY), ("dev_loss", n.DEV_LOSS)):
        runs[col] = runs["run_id"].map(last.get(name, {})).astype(float)
    return runs[[*COLUMNS, "sweep"]].reset_index(drop=True)


def choose(table: pd.DataFrame, label: str, grid: tuple[float, ...], seeds: tuple[int, ...]) -> Choice:
    """The label's rate once every selection cell has ended (its latest run finished or failed); a rate counts
    only if it finished on every selection seed (a rate that diverges fails its run and drops out)."""
    mine = table[(table["label"] == label) & table["seed"].isin(seeds)].drop_duplicates(["lr", "seed"])
    curve, pending = [], 0
    for lr in grid:
        at = mine[np.isclose(mine["lr"].astype(float), lr, rtol=1e-9, atol=0)]
        pending += len(seeds) - int(at["status"].isin(["finished", "failed"]).sum())
        done = at[at["status"] == "finished"]
        if len(done) == len(seeds):
            curve.append({"lr": lr, "n": len(done), "dev_accuracy": done["dev_accuracy"].mean(),
                          "dev_loss": done["dev_loss"].mean()})
    frame = pd.DataFrame(curve, columns=["lr", "n", "dev_accuracy", "dev_loss"])
    if pending:
        return Choice(None, f"{pending} of its {len(grid) * len(seeds)} selection runs have not finished", frame)
    if frame["dev_accuracy"].isna().all():
        return Choice(None, "no rate of its grid finished on every selection seed", frame)
    ranked = frame.assign(neg=-frame["dev_accuracy"], loss=frame["dev_loss"].fillna(math.inf))
    return Choice(float(ranked.sort_values(["neg", "loss", "lr"]).iloc[0]["lr"]), "", frame)


def final_runs(table: pd.DataFrame, labels: set[str] | None = None) -> dict[str, tuple[float | None, list[str]]]:
    """label -> (its rate, its finished final runs), in the order the sweep ran its labels: with a grid, the runs
    at the chosen rate on every seed (the selection run at that rate included); without one, every finished run of
    the label. `labels`: only these."""
    out = {}
    if labels is not None:
        table = table[table["label"].isin(labels)]
    for label, mine in table.iloc[::-1].groupby("label", sort=False):  # oldest first: the sweep's own order
        mine = mine.iloc[::-1]  # newest first again, as choose() and the cells expect
        grids = [g for g in mine["grid"] if g]
        done = mine[mine["status"] == "finished"].drop_duplicates(["lr", "seed"])
        if not grids:
            lrs = done["lr"].dropna().unique()
            out[label] = (float(lrs[0]) if len(lrs) == 1 else None, list(done["run_id"]))
            continue
        picked = choose(table, label, grids[0], next(s for s in mine["select_seeds"] if s))
        at = done[np.isclose(done["lr"].astype(float), picked.lr, rtol=1e-9, atol=0)] if picked.lr else done[:0]
        out[label] = (picked.lr, list(at["run_id"]))
    return out


def selected_rates(reader: Reader, model: str) -> dict[str, float]:
    """method -> the rate the newest sweep on `model` selected for it (its label being the method's own name, not
    a variant such as pissa); what the Launch form pre-fills."""
    try:
        runs = reader.runs()
    except GeodiagError:
        return {}
    mine = runs[(runs["kind"] == "train") & (runs["model"] == model) & (runs["label"] == runs["method"])]
    picked = {s for s, c in zip(mine["sweep"], mine["config"], strict=True) if s and parsed_config(c).get("selection")}
    if not picked:
        return {}
    table = cell_table(reader, runs[(runs["kind"] == "train") & runs["sweep"].isin(picked)])  # one query
    out: dict[str, float] = {}
    for _, cells in table.groupby("sweep", sort=False):  # newest first; a label's newest choice wins
        wanted = set(mine["label"]) - set(out)
        for label, (lr, ids) in final_runs(cells, wanted).items():
            if lr and ids:
                out[label] = lr
    return out
