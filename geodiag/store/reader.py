"""The narrow read interface every consumer uses (pages, CLI, exports): tidy DataFrames sorted by step.

A read sees the DuckDB tables plus the spool batches not folded in yet, so a live run's points show up
as soon as its writer flushes, whoever holds the lock. Each call opens and closes its own read-only
connection, so a reader never blocks a writer for longer than one query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from geodiag.errors import StoreError
from geodiag.store import spool
from geodiag.store._db import connect
from geodiag.store.schema import RUN_COLUMNS, SWEEP_KIND

METRIC_FIELDS = "step, module, layer, module_type, idx, value, wall_time"
ENDS_COLUMNS = ["run_id", "name", "module", "idx", "first", "last", "step", "n_last", "at_end", "steps", "last_step"]


def _ends_sql(by_index: tuple[str, ...]) -> str:
    """Reader.ends over the metric rows r (run_id, name, module, idx, step, value): bounds per run and metric, the
    last step per module (and per index for the metrics in `by_index`, given as SQL literals: our own names)."""
    kept = ", ".join("'" + x.replace("'", "''") + "'" for x in by_index) or "NULL"
    return f""", e AS (SELECT run_id, name, module, CASE WHEN name IN ({kept}) THEN idx END AS idx, step, value
              FROM r),
     b AS (SELECT run_id, name, min(step) AS f, max(step) AS l, count(DISTINCT step) AS steps FROM e
           GROUP BY run_id, name),
     k AS (SELECT run_id, name, module, idx, max(step) AS ml FROM e GROUP BY run_id, name, module, idx)
SELECT e.run_id, e.name, e.module, e.idx,
       avg(e.value) FILTER (WHERE e.step = b.f) AS first,
       avg(e.value) FILTER (WHERE e.step = k.ml) AS last, any_value(k.ml) AS step,
       count(*) FILTER (WHERE e.step = k.ml) AS n_last,
       any_value(k.ml = b.l) AS at_end, any_value(b.steps) AS steps, any_value(b.l) AS last_step
FROM e JOIN b ON e.run_id = b.run_id AND e.name = b.name
       JOIN k ON e.run_id = k.run_id AND e.name = k.name AND e.module = k.module AND e.idx IS NOT DISTINCT FROM k.idx
GROUP BY e.run_id, e.name, e.module, e.idx"""


_RETRIES = 5  # a spool file can be folded and deleted between listing and reading it
_RECORDS: dict[str, tuple[tuple, pd.DataFrame]] = {}  # store -> (its version, its run records)
_RECORDS_KEPT = 8


def forget_records() -> None:
    """Drop every store's cached run records (the next read of each store reads them again)."""
    _RECORDS.clear()


class Reader:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def runs(self) -> pd.DataFrame:
        """One row per run (trainings, analyses, imports), newest first; an empty store gives an empty frame with
        the run columns."""
        every = self._records()
        return every[every["kind"] != SWEEP_KIND].reset_index(drop=True)

    def sweeps(self) -> pd.DataFrame:
        """The sweeps that recorded themselves (`geodiag sweep` runs as one record of kind `sweep`: its process,
        status and plan in `config`), newest first; their cells are runs."""
        every = self._records()
        return every[every["kind"] == SWEEP_KIND].reset_index(drop=True)

    def _records(self) -> pd.DataFrame:
        """Every run record, read once per store version (the DuckDB file, its WAL and the spooled run records
        unchanged: the same rows), with liveness judged now: a process that died changes nothing in the store."""
        key, version = str(self.path.resolve()), self._version()
        hit = _RECORDS.get(key)
        if hit is None or hit[0] != version:
            hit = _RECORDS[key] = (version, self._read_records())
            while len(_RECORDS) > _RECORDS_KEPT:
                _RECORDS.pop(next(iter(_RECORDS)))
        df = hit[1].copy()
        for i in df.index[df["status"] == "running"]:
            rec = spool.with_liveness(_plain({c: df.at[i, c] for c in ("status", "host", "pid", "message",
                                                                      "heartbeat")}))
            df.loc[i, ["status", "message"]] = rec["status"], rec.get("message")
        return df.drop(columns="heartbeat")

    def _read_records(self) -> pd.DataFrame:
        with self._open() as (con, has_db):
            rows = {}
            if has_db and _has_table(con, "runs"):  # plain tuples: a DataFrame's to_dict costs twice the query
                cur = con.execute("SELECT * FROM runs")
                names = [d[0] for d in cur.description]
                rows = {rec["run_id"]: rec for rec in (dict(zip(names, r, strict=True)) for r in cur.fetchall())}
        for rec in spool.run_records(self.path, live=False):  # the spool is newer than the table
            rows[rec["run_id"]] = rec
        columns = [*RUN_COLUMNS, "heartbeat"]
        if not rows:
            return with_cell_columns(pd.DataFrame(columns=columns))
        df = pd.DataFrame([_plain(r) for r in rows.values()], columns=columns)
        for col in ("started_at", "ended_at"):
            df[col] = pd.to_datetime(df[col], errors="coerce")
        df = with_cell_columns(df)
        return df.sort_values("started_at", ascending=False, na_position="last", ignore_index=True)

    def _version(self) -> tuple:
        """What changes whenever a run record does: the DuckDB file and its WAL, and each spooled run record."""
        stamps = []
        for f in (self.path, self.path.with_name(self.path.name + ".wal"),
                  *sorted(spool.spool_root(self.path).glob("*/run.json"))):
            try:
                st = f.stat()
                stamps.append((f.name if f.name != "run.json" else f.parent.name, st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((f.name, None))
        return tuple(stamps)

    def run(self, run_id: str) -> dict:
        """One run as a dict with its config parsed; an unknown id is a StoreError."""
        runs = self.runs()
        match = runs[runs["run_id"] == run_id]
        if match.empty:
            raise StoreError(f"There is no run '{run_id}' in {self.path}; `geodiag runs list --store "
                             f"{self.path}` shows the run ids.")
        out = match.iloc[0].to_dict()
        cfg = out.get("config")
        out["config"] = parsed_config(cfg)
        return out

    def metric(self, run_id: str, name: str) -> pd.DataFrame:
        """Every value of one metric of one run: step, module, layer, module_type, idx, value, wall_time,
        sorted by step, module, idx."""
        self.run(run_id)  # unknown ids fail loudly rather than returning an empty frame
        return self._select(run_id, "name = ?", [name], METRIC_FIELDS,
                            "ORDER BY step, module NULLS FIRST, idx NULLS FIRST")

    def metrics(self, run_ids: list[str], names: list[str] | tuple[str, ...] = (), *,
                scalars: bool = False, prefix: str | None = None) -> pd.DataFrame:
        """Several metrics of several runs in one tidy frame: run_id, name, then the metric() columns.
        `scalars=True` adds every run-level scalar (no module, no index), whatever its name; `prefix` every metric
        whose name starts with it (e.g. each method's alloc/...), in the same scan."""
        self._known(run_ids)
        clauses, params = [], []
        if names:
            clauses.append(f"name IN ({', '.join('?' * len(names))})")
            params += list(names)
        if scalars:
            clauses.append("(module IS NULL AND idx IS NULL)")
        if prefix:
            clauses.append("starts_with(name, ?)")
            params.append(prefix)
        where = f"({' OR '.join(clauses)})" if clauses else "FALSE"
        cols = ["run_id", "name", *[c.strip() for c in METRIC_FIELDS.split(",")]]
        if not run_ids:
            return pd.DataFrame(columns=cols)
        # one query (one connection, one scan) for every run: the atlas reads a model's whole store
        df = self._select(list(run_ids), where, params, "run_id, name, " + METRIC_FIELDS,
                          "ORDER BY name, step, module NULLS FIRST, idx NULLS FIRST")
        order = {rid: i for i, rid in enumerate(run_ids)}  # the caller's run order, then the metric order
        df = df.sort_values("run_id", key=lambda c: c.map(order), kind="stable", ignore_index=True)
        return df[cols]

    def ends(self, run_ids: list[str], names: list[str] | tuple[str, ...], *, prefix: str | None = None,
             by_index: tuple[str, ...] = ()) -> pd.DataFrame:
        """Where each metric of each run starts and ends, aggregated in DuckDB so that a run's thousands of rows
        never leave the query (what a sweep's outcome table reads): one row per run, metric and module (`module`
        '' for a run-level scalar) with ENDS_COLUMNS:
        `first` the mean value at the step the run first recorded the metric (NaN for a module absent there),
        `last` the mean value at the module's own last step (`step`) and `n_last` how many values that mean took,
        `at_end` whether that step is the metric's last step in the run (`last_step`), `steps` at how many steps
        the run recorded the metric. `prefix` adds every metric whose name starts with it, as in metrics().
        The metrics in `by_index` (per-item scores) keep a row per index (`idx`; NaN for the others)."""
        clauses, params = [f"name IN ({', '.join('?' * len(names))})"] if names else [], list(names)
        if prefix:
            clauses.append("starts_with(name, ?)")
            params.append(prefix)
        if not run_ids or not clauses:
            return pd.DataFrame(columns=ENDS_COLUMNS)
        self._known(run_ids)
        return self._select(list(run_ids), f"({' OR '.join(clauses)})", params,
                            "run_id, name, coalesce(module, '') AS module, idx, step, value", "",
                            around=_ends_sql(tuple(by_index)),
                            columns=ENDS_COLUMNS)

    def _known(self, run_ids: list[str]) -> None:
        """The StoreError sentence for the first unknown id (checked against the cached records: no query)."""
        unknown = set(run_ids) - set(self._records()["run_id"])
        if unknown:
            self.run(sorted(unknown)[0])

    def metric_names(self, run_id: str) -> list[str]:
        df = self._select(run_id, "TRUE", [], "DISTINCT name", "ORDER BY name")
        return df["name"].tolist()

    def names_starting(self, run_ids: list[str], prefix: str) -> list[str]:
        """The metric names these runs recorded that start with `prefix` (e.g. every alloc/<method>/...), sorted:
        what a figure reads when the names depend on which methods ran."""
        if not run_ids:
            return []
        return self._select(list(run_ids), "starts_with(name, ?)", [prefix], "DISTINCT name", "ORDER BY name")[
            "name"].tolist()

    def names_by_run(self, run_ids: list[str], names: list[str] | tuple[str, ...], *, prefix: str | None = None
                     ) -> pd.DataFrame:
        """Which of these metrics (and, with `prefix`, of those whose names start with it) each run recorded
        (run_id, name; one row per pair), aggregated in one query."""
        clauses, params = [f"name IN ({', '.join('?' * len(names))})"] if names else [], list(names)
        if prefix:
            clauses.append("starts_with(name, ?)")
            params.append(prefix)
        if not run_ids or not clauses:
            return pd.DataFrame(columns=["run_id", "name"])
        df = self._select(list(run_ids), f"({' OR '.join(clauses)})", params, "DISTINCT run_id, name", "")
        return df.drop_duplicates(ignore_index=True)

    def runs_with(self, names: list[str] | tuple[str, ...]) -> set[str]:
        """Ids of the runs that recorded any of these metrics, in one query."""
        ids = list(self.runs()["run_id"])
        if not ids or not names:
            return set()
        df = self._select(ids, f"name IN ({', '.join('?' * len(names))})", list(names), "DISTINCT run_id", "")
        return set(df["run_id"])

    def _select(self, run_id: str | list[str], where: str, params: list, fields: str, tail: str, *,
                around: str | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        """The metric rows of these runs matching `where` (the table's and the spool's not folded yet), ordered
        by `tail`; or, with `around`, that query run over them as the common table `r`."""
        ids = [run_id] if isinstance(run_id, str) else list(run_id)
        runs_sql = f"run_id IN ({', '.join('?' * len(ids))})"
        for attempt in range(_RETRIES):
            try:
                with self._open() as (con, has_db):
                    parts, args, done = [], [], set()
                    if has_db and _has_table(con, "metrics"):
                        parts.append(f"SELECT {fields} FROM metrics WHERE {runs_sql} AND {where}")
                        args += [*ids, *params]
                        done = {r[0] for r in con.execute("SELECT file FROM ingested").fetchall()}
                    wanted = set(ids)  # one listing of the spool, not one per run (a model's whole store)
                    files = [str(f) for f in spool.batch_files(self.path) if f.parent.name in wanted
                             and str(f) not in done]
                    if files:
                        parts.append(f"SELECT {fields} FROM read_parquet(?) WHERE {where}")
                        args += [files, *params]
                    if not parts:
                        return pd.DataFrame(columns=columns or [f.strip() for f in fields.replace(
                            "DISTINCT", "").split(",")])
                    rows = " UNION ALL ".join(parts)
                    sql = f"WITH r AS ({rows}) {around}" if around else f"SELECT * FROM ({rows}) {tail}"
                    return con.execute(sql, args).df()
            except duckdb.IOException:
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def _open(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, bool]]:
        if self.path.exists():
            with connect(self.path, read_only=True) as con:
                yield con, True
        elif spool.spool_root(self.path).exists():
            con = duckdb.connect(":memory:")  # nothing folded yet: the spool is the whole store
            try:
                yield con, False
            finally:
                con.close()
        else:
            raise StoreError(f"There is no store at {self.path}; start a run with `geodiag train --store "
                             f"{self.path}` or choose another store path.")


def with_cell_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """`sweep`, `seed`, `label` (what the Results page groups by: the sweep's label, else the method) and `lr`
    read out of each run's config, beside the run columns."""
    configs = [parsed_config(c) for c in runs["config"]]
    runs["sweep"] = [c.get("sweep") for c in configs]
    runs["seed"] = pd.array([c.get("seed") if isinstance(c.get("seed"), int) else None for c in configs], dtype="Int64")
    runs["label"] = [c.get("label") or m for c, m in zip(configs, runs["method"], strict=True)]
    runs["lr"] = [float(c["lr"]) if isinstance(c.get("lr"), int | float) else None for c in configs]
    return runs


def parsed_config(config) -> dict:
    """A run's config as a dict, whether the table's JSON text or the spool's mapping ({} when unreadable)."""
    if isinstance(config, str) and config:
        try:
            return json.loads(config)
        except json.JSONDecodeError:
            return {}
    return config if isinstance(config, dict) else {}


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [name]).fetchall()[0][0])


def _plain(rec: dict) -> dict:
    return {k: (None if (isinstance(v, float) and pd.isna(v)) or v is pd.NaT else v) for k, v in rec.items()}
