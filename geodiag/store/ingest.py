"""Folding spooled runs and batches into the DuckDB file.

One short read-write transaction inserts the new batches, records their file names in `ingested`, and
upserts the spooled run rows; files are deleted only after the commit. A crash between commit and delete
leaves files that are already listed in `ingested`: readers skip them and the next ingest deletes them,
so no row is lost or counted twice. Ingesters serialise on DuckDB's file lock.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from geodiag.errors import StoreError
from geodiag.store import spool
from geodiag.store._db import connect
from geodiag.store.schema import RUN_COLUMNS

TERMINAL = ("finished", "failed", "interrupted", "cancelled")


def ingest(store: Path, *, timeout_s: float = 0.0) -> int | None:
    """Fold the whole spool into the store. Returns rows added, or None if the lock stayed busy for
    `timeout_s` (0 = try once): the spool keeps everything, and readers see it there meanwhile."""
    store = Path(store)
    if not spool.spool_root(store).exists():
        return 0
    try:
        with connect(store, read_only=False, timeout_s=timeout_s) as con:
            added = _fold(con, store)
    except StoreError as e:
        if "locked" in str(e):
            return None
        raise
    _clean(store)
    return added


def _fold(con, store: Path) -> int:
    files = [str(f) for f in spool.batch_files(store)]
    runs = spool.run_records(store)
    done = {r[0] for r in con.execute("SELECT file FROM ingested").fetchall()}
    new = [f for f in files if f not in done]
    con.execute("BEGIN TRANSACTION")
    try:
        added = 0
        if new:
            added = con.execute(
                "INSERT INTO metrics SELECT * FROM read_parquet(?) ORDER BY run_id, name, step", [new]
            ).fetchall()[0][0]
            con.executemany("INSERT INTO ingested VALUES (?)", [[f] for f in new])
        for rec in runs:
            _upsert_run(con, rec)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return int(added)


def _upsert_run(con, rec: dict) -> None:
    row = [rec.get(c) for c in RUN_COLUMNS]
    row[RUN_COLUMNS.index("config")] = json.dumps(rec.get("config") or {}, default=str)
    cols = ", ".join(RUN_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS if c != "run_id")
    con.execute(f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * len(row))}) "
                f"ON CONFLICT (run_id) DO UPDATE SET {updates}", row)


def _clean(store: Path) -> None:
    """Delete ingested batch files, then the folders of ended runs that have nothing left to fold.

    Runs under the DuckDB lock's protection only for the insert; deleting afterwards is safe because a
    file already listed in `ingested` is skipped by readers and by the next ingest."""
    try:
        with connect(store, read_only=False, timeout_s=0.0) as con:
            done = {r[0] for r in con.execute("SELECT file FROM ingested").fetchall()}
            for f in spool.batch_files(store):
                if str(f) in done:
                    f.unlink(missing_ok=True)
            con.execute("DELETE FROM ingested")  # every listed file is gone now
            folded = {r[0]: r[1] for r in con.execute("SELECT run_id, status FROM runs").fetchall()}
    except StoreError:
        return  # someone else holds the lock; they or the next ingest will clean up
    for rec in spool.run_records(store):
        d = spool.run_dir(store, rec["run_id"])
        if rec["status"] in TERMINAL and folded.get(rec["run_id"]) == rec["status"] \
                and not spool.batch_files(store, rec["run_id"]):
            shutil.rmtree(d, ignore_errors=True)
    with contextlib.suppress(OSError):  # rmdir only succeeds once no run is spooling
        spool.spool_root(store).rmdir()
