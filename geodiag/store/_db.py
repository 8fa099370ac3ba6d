"""Opening the DuckDB file: short-lived connections, retried while another process holds the lock, and
one clear sentence for a foreign, corrupt or persistently locked file. Never creates over a foreign file."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from geodiag.errors import StoreError
from geodiag.store.schema import DDL, SCHEMA_VERSION

LOCK_TIMEOUT_S = 10.0


@contextmanager
def connect(path: Path, *, read_only: bool, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a geodiag store, closed on exit. Writers create the schema in a new file."""
    if read_only and not path.exists():
        raise StoreError(f"There is no store at {path}; start a run with `geodiag train --store {path}` "
                         "or choose another store path.")
    con = _open(path, read_only, timeout_s)
    try:
        _check_or_create_schema(con, path, read_only)
        yield con
    finally:
        con.close()


def _open(path: Path, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as e:
            msg = str(e)
            if "lock" not in msg.lower():
                raise StoreError(_unreadable(path, msg)) from None
            if time.monotonic() >= deadline:
                holder = re.search(r"PID (\d+)", msg)
                who = f"process {holder.group(1)}" if holder else "another process"
                raise StoreError(f"The store {path} is locked by {who} for more than {timeout_s:.0f} s; "
                                 "wait for it to finish or stop it, then try again.") from None
            time.sleep(delay)
            delay = min(0.2, delay * 2)
        except duckdb.Error as e:
            raise StoreError(_unreadable(path, str(e))) from None


def _unreadable(path: Path, detail: str) -> str:
    reason = "is not a DuckDB database" if "not a valid DuckDB" in detail else "is damaged or unreadable"
    return (f"The file at {path} {reason}, so geodiag will not touch it; choose another --store path "
            "or move the file away.")


def _check_or_create_schema(con: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "geodiag_meta" in tables:
        version = next(iter(con.execute(
            "SELECT value FROM geodiag_meta WHERE key = 'schema_version'").fetchall()), None)
        if version and int(version[0]) > SCHEMA_VERSION:
            raise StoreError(f"The store {path} was written by a newer geodiag (schema {version[0]}); "
                             "upgrade geodiag to read it.")
        return
    if tables:
        raise StoreError(f"{path} is a DuckDB database but not a geodiag store (it has other tables); "
                         "choose another --store path.")
    if read_only:
        return  # an empty database: nothing to read yet
    for stmt in DDL:
        con.execute(stmt)
    con.execute("INSERT INTO geodiag_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
