"""The narrow write interface: create a run, append metric batches, change its status.

Nothing here waits on the DuckDB lock while a run trains: every call writes an atomic file into the
run's spool folder, then *tries* to fold the spool into the DuckDB file (see ingest.py). Only the final
status change waits for the lock, and even if that wait fails the spool keeps everything and readers
see it.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import geodiag
from geodiag.errors import GeodiagError
from geodiag.store import spool
from geodiag.store._db import LOCK_TIMEOUT_S
from geodiag.store.ingest import TERMINAL, ingest
from geodiag.store.schema import METRIC_COLUMNS, RUN_COLUMNS, RUN_STATUSES


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class Writer:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._runs: dict[str, dict] = {}

    def create_run(self, *, name: str, kind: str, method: str | None = None, model: str | None = None,
                   task: str | None = None, config: Mapping | None = None, run_id: str | None = None,
                   trainable_params: int | None = None, total_params: int | None = None) -> str:
        _check_store_path(self.path)
        run_id = run_id or new_run_id()
        record = dict.fromkeys(RUN_COLUMNS)
        record.update(run_id=run_id, name=name, kind=kind, method=method, model=model, task=task,
                      status="running", config=dict(config or {}), started_at=_now(),
                      trainable_params=trainable_params, total_params=total_params,
                      host=socket.gethostname(), pid=os.getpid(), geodiag_version=geodiag.__version__,
                      heartbeat=_now())
        self._runs[run_id] = record
        spool.write_run(self.path, record)
        ingest(self.path)
        return run_id

    def append(self, run_id: str, records: Iterable[Mapping] | pd.DataFrame) -> int:
        """Append metric rows (dicts or a DataFrame with the metric columns; run_id is filled in)."""
        df = pd.DataFrame(records) if not isinstance(records, pd.DataFrame) else records.copy()
        if df.empty:
            return 0
        for col in METRIC_COLUMNS:
            if col not in df:
                df[col] = None
        if bool((df["name"].isna() | df["step"].isna()).any()):
            raise ValueError("every metric row needs a name and a step")
        df["run_id"] = run_id
        self._record(run_id)  # unknown runs fail here, before anything is written
        # time + pid names keep batches unique and ordered even if a run's writer is recreated
        spool.write_batch(self.path, run_id, time.time_ns(), df, suffix=os.getpid())
        self.beat(run_id)
        ingest(self.path)
        return len(df)

    def beat(self, run_id: str, every_s: float = spool.HEARTBEAT_S) -> None:
        """Stamp the run as alive (run.json's heartbeat), at most once every `every_s`: readers on other
        hosts, who cannot see this process, tell a silent run from a live one by it."""
        record = self._record(run_id)
        silent = spool.seconds_since(record.get("heartbeat"))
        if record.get("status") == "running" and (silent is None or silent >= every_s):
            self._runs[run_id] = {**record, "heartbeat": _now()}
            spool.write_run(self.path, self._runs[run_id])

    def update_run(self, run_id: str, **fields) -> None:
        """Change run columns other than status (e.g. parameter counts once the model is built)."""
        bad = set(fields) - set(RUN_COLUMNS) - {"status"}
        if bad:
            raise ValueError(f"unknown run field(s): {', '.join(sorted(bad))}")
        record = {**self._record(run_id), **fields}
        self._runs[run_id] = record
        spool.write_run(self.path, record)

    def set_status(self, run_id: str, status: str, message: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        ended = _now() if status in TERMINAL else None
        self.update_run(run_id, status=status, ended_at=ended, message=message)
        ingest(self.path, timeout_s=LOCK_TIMEOUT_S if status in TERMINAL else 0.0)

    @contextlib.contextmanager
    def finishing(self, run_id: str, *, keep: Callable[[], None] | None = None,
                  ending: Callable[[], tuple[str, str | None]] | None = None) -> Iterator[None]:
        """The run ends finished when the block does (or as `ending()` says: status and message), and failed (an
        error), or cancelled (Ctrl-C, SIGTERM, or an error whose `run_status` says so) with the reason when it
        raises, after `keep()` has saved what was recorded so far: every kind of run keeps its status the same
        way."""
        try:
            yield
        except BaseException as e:
            status = getattr(e, "run_status", "failed" if isinstance(e, Exception) else "cancelled")
            plain = isinstance(e, GeodiagError) or not isinstance(e, Exception)  # already a sentence, or a signal
            try:
                if keep:
                    keep()
            finally:
                self.set_status(run_id, status, (str(e) if plain else f"{type(e).__name__}: {e}") or type(e).__name__)
            raise
        self.set_status(run_id, *(ending() if ending else ("finished", None)))

    def rename_run(self, run_id: str, name: str) -> None:
        if not name.strip():
            from geodiag.errors import StoreError

            raise StoreError("A run name cannot be empty.")
        self.update_run(run_id, name=name.strip())
        ingest(self.path, timeout_s=LOCK_TIMEOUT_S)

    def delete_run(self, run_id: str) -> None:
        """Remove a run and its metrics from the table and the spool. A live run is refused: cancel it first."""
        import shutil

        from geodiag.errors import StoreError
        from geodiag.store._db import connect
        from geodiag.store.reader import Reader

        run = Reader(self.path).run(run_id)  # unknown ids: one sentence
        if run["status"] == "running":
            raise StoreError(f"Run {run_id} is still running (pid {run['pid']}); cancel it first, then delete it.")
        ingest(self.path, timeout_s=LOCK_TIMEOUT_S)  # fold its spool so that nothing reappears afterwards
        shutil.rmtree(spool.run_dir(self.path, run_id), ignore_errors=True)
        if self.path.exists():
            with connect(self.path, read_only=False) as con:
                con.execute("BEGIN TRANSACTION")
                con.execute("DELETE FROM metrics WHERE run_id = ?", [run_id])
                con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
                con.execute("COMMIT")
        self._runs.pop(run_id, None)

    def _record(self, run_id: str) -> dict:
        if run_id not in self._runs:
            from geodiag.store.reader import Reader

            record = Reader(self.path).run(run_id)  # StoreError with a clear sentence if unknown
            self._runs[run_id] = {c: _plain(record.get(c)) for c in RUN_COLUMNS}
        return self._runs[run_id]


def _check_store_path(path: Path) -> None:
    """Refuse a foreign or corrupt file before the first spool write, not at the first ingest."""
    if path.exists():
        from geodiag.errors import StoreError
        from geodiag.store._db import connect

        try:
            with connect(path, read_only=True, timeout_s=0.0):
                pass
        except StoreError as e:
            if "locked" not in str(e):  # locked means another geodiag process is using a valid store
                raise


def _plain(value):
    """A value read back through pandas as run.json holds it: no NaT/NaN, timestamps as text, Python numbers."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    return value.item() if hasattr(value, "item") and not isinstance(value, dict | list | str) else value


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
