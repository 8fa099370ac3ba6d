"""Learning-rate selection on the dev split (Lee et al. 2026, "Learning Rate Matters": each method at its own
tuned rate): per label, the grid value with the best mean dev accuracy over the selection seeds, ties broken by
the lower mean dev loss, then by the lower rate. Torch-free: it reads the store."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def sweep_table(reader: Reader, sweep_id: str, dev: dict[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """One row per training run of a sweep (newest first): its cell, rate, phase, status and final dev numbers
    (`dev` as in cell_table)."""
    try:
        runs = reader.runs()
    except GeodiagError:
        return pd.DataFrame(columns=COLUMNS)
    return cell_table(reader, runs[(runs["kind"] == "train") & (runs["sweep"] == sweep_id)], dev)


def cell_table(reader: Reader, runs: pd.DataFrame, dev: dict[str, tuple[float, float]] | None = None
               ) -> pd.DataFrame:
    """`sweep_table`'s rows for any training runs (several sweeps at once: one metrics query), with `sweep`.
    `dev`: run -> (dev accuracy, dev loss) already read (an outcome table's); only the other runs are read."""
    runs = runs.copy()
    selection = [parsed_config(c).get("selection") or {} for c in runs["config"]]
    runs["phase"] = [s.get("phase", "final") for s in selection]
    runs["grid"] = [tuple(s.get("grid") or ()) for s in selection]
    runs["select_seeds"] = [tuple(s.get("seeds") or ()) for s in selection]
    known = dict(dev or {})
    unread = [r for r in runs.loc[runs["status"] == "finished", "run_id"] if r not in known]
    if unread:
        ends = reader.ends(unread, [n.DEV_ACCURACY, n.DEV_LOSS])  # run-level scalars: their last values
        last = ends.pivot_table(index="run_id", columns="name", values="last", aggfunc="first")
        last = last.reindex(index=unread, columns=[n.DEV_ACCURACY, n.DEV_LOSS]).astype(float)
        known.update(zip(last.index, zip(last[n.DEV_ACCURACY], last[n.DEV_LOSS], strict=True), strict=True))
    runs["dev_accuracy"] = [known.get(r, (math.nan, math.nan))[0] for r in runs["run_id"]]
    runs["dev_loss"] = [known.get(r, (math.nan, math.nan))[1] for r in runs["run_id"]]
    return runs[[*COLUMNS, "sweep"]].reset_index(drop=True)


def choose(table: pd.DataFrame, label: str, grid: tuple[float, ...], seeds: tuple[int, ...]) -> Choice:
    """The label's rate once every selection cell has ended (its latest run finished or failed); a rate counts
    only if it finished on every selection seed (a rate that diverges fails its run and drops out)."""
    return _choose(_records(table[table["label"] == label]), grid, seeds)


def final_runs(table: pd.DataFrame, labels: set[str] | None = None) -> dict[str, tuple[float | None, list[str]]]:
    """label -> (its rate, its finished final runs), in the order the sweep ran its labels: with a grid, the runs
    at the chosen rate on every seed (the selection run at that rate included); without one, every finished run of
    the label. `labels`: only these."""
    return _final_runs(_records(table), labels)


def _final_runs(records: list[dict], labels: set[str] | None = None) -> dict[str, tuple[float | None, list[str]]]:
    """final_runs() over a table's records, newest first."""
    records = [r for r in records if labels is None or r["label"] in labels]
    by_label: dict[str, list[dict]] = {r["label"]: [] for r in reversed(records)}  # oldest first: the sweep's order
    for r in records:
        by_label[r["label"]].append(r)
    out = {}
    for label, mine in by_label.items():
        done = list(_newest_per_cell(r for r in mine if r["status"] == "finished").values())
        grids = [r["grid"] for r in mine if r["grid"]]
        if not grids:
            lrs = list(dict.fromkeys(r["lr"] for r in done if _rate(r["lr"])))
            out[label] = (float(lrs[0]) if len(lrs) == 1 else None, [r["run_id"] for r in done])
            continue
        picked = _choose(mine, grids[0], next(r["select_seeds"] for r in mine if r["select_seeds"]))
        out[label] = (picked.lr, [r["run_id"] for r in done if picked.lr and _same(r["lr"], picked.lr)])
    return out


def _choose(mine: list[dict], grid: tuple[float, ...], seeds: tuple[int, ...]) -> Choice:
    """choose() over one label's records, newest first."""
    latest = _newest_per_cell(r for r in mine if r["seed"] in seeds)
    curve, pending = [], 0
    for lr in grid:
        at = [r for (x, _), r in latest.items() if _same(x, lr)]
        pending += len(seeds) - sum(r["status"] in ("finished", "failed") for r in at)
        done = [r for r in at if r["status"] == "finished"]
        if len(done) == len(seeds):
            curve.append({"lr": lr, "n": len(done), "dev_accuracy": _mean(r["dev_accuracy"] for r in done),
                          "dev_loss": _mean(r["dev_loss"] for r in done)})
    frame = pd.DataFrame(curve, columns=["lr", "n", "dev_accuracy", "dev_loss"])
    if pending:
        return Choice(None, f"{pending} of its {len(grid) * len(seeds)} selection runs have not finished", frame)
    scored = [c for c in curve if not math.isnan(c["dev_accuracy"])]
    if not scored:
        return Choice(None, "no rate of its grid finished on every selection seed", frame)
    best = min(scored, key=lambda c: (-c["dev_accuracy"], _or_inf(c["dev_loss"]), c["lr"]))  # ties: lower loss
    return Choice(float(best["lr"]), "", frame)


def _records(table: pd.DataFrame) -> list[dict]:
    """The table's rows as plain dicts (a missing seed None, a missing rate NaN): the selection logic walks a
    few dozen rows, where pandas' per-operation cost would dominate."""
    keep = ["run_id", "label", "seed", "lr", "status", "grid", "select_seeds", "dev_accuracy", "dev_loss"]
    rows = table[keep].to_dict("records")
    for r in rows:
        r["seed"] = None if pd.isna(r["seed"]) else int(r["seed"])
        r["lr"] = float(r["lr"]) if _rate(r["lr"]) else math.nan
    return rows


def _newest_per_cell(rows) -> dict[tuple[float, int | None], dict]:
    """(rate, seed) -> the newest of the given records (newest first) of that cell."""
    out: dict = {}
    for r in rows:
        out.setdefault((r["lr"], r["seed"]), r)
    return out


def _rate(x) -> bool:
    return x is not None and not pd.isna(x)


def _same(x: float, lr: float) -> bool:
    return _rate(x) and math.isclose(float(x), lr, rel_tol=1e-9, abs_tol=0)


def _mean(values) -> float:
    """The mean of the values that are not NaN (NaN when none is), as pandas' mean."""
    kept = [float(v) for v in values if _rate(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _or_inf(x: float) -> float:
    return math.inf if math.isnan(x) else x


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
    by_sweep: dict[str, list[dict]] = {}
    for r, sweep in zip(_records(table), table["sweep"], strict=True):
        by_sweep.setdefault(sweep, []).append(r)  # newest sweep first, each newest run first
    out: dict[str, float] = {}
    for records in by_sweep.values():  # a label's newest choice wins
        wanted = set(mine["label"]) - set(out)
        if not wanted:
            break
        out.update({label: lr for label, (lr, ids) in _final_runs(records, wanted).items() if lr and ids})
    return out
