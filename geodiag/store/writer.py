"""The narrow write interface: create a run, append metric batches, set its status. Each call is one
short transaction, so readers and other writers get the file between calls."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import geodiag
from geodiag.errors import StoreError
from geodiag.store._db import connect
from geodiag.store.schema import METRIC_COLUMNS, RUN_STATUSES


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class Writer:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def create_run(self, *, name: str, kind: str, method: str | None = None, model: str | None = None,
                   task: str | None = None, config: Mapping | None = None, run_id: str | None = None,
                   trainable_params: int | None = None, total_params: int | None = None) -> str:
        run_id = run_id or new_run_id()
        with connect(self.path, read_only=False) as con:
            con.execute(
                """INSERT INTO runs (run_id, name, kind, method, model, task, status, config, started_at,
                   trainable_params, total_params, host, pid, geodiag_version)
                   VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)""",
                [run_id, name, kind, method, model, task, json.dumps(dict(config or {}), default=str),
                 _now(), trainable_params, total_params, socket.gethostname(), os.getpid(),
                 geodiag.__version__],
            )
        return run_id

    def append(self, run_id: str, records: Iterable[Mapping] | pd.DataFrame) -> int:
        """Append metric rows (dicts or a DataFrame with the metric columns, run_id optional)."""
        df = pd.DataFrame(records) if not isinstance(records, pd.DataFrame) else records.copy()
        if df.empty:
            return 0
        df["run_id"] = run_id
        for col in METRIC_COLUMNS:
            if col not in df:
                df[col] = None
        missing = df["name"].isna() | df["step"].isna()
        if bool(missing.any()):
            raise ValueError("every metric row needs a name and a step")
        with connect(self.path, read_only=False) as con:
            con.register("batch", df[list(METRIC_COLUMNS)])
            con.execute("INSERT INTO metrics SELECT * FROM batch")
        return len(df)

    def set_status(self, run_id: str, status: str, message: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}, got {status!r}")
        ended = None if status == "running" else _now()
        with connect(self.path, read_only=False) as con:
            found = con.execute(
                "UPDATE runs SET status = ?, ended_at = ?, message = ? WHERE run_id = ? RETURNING run_id",
                [status, ended, message, run_id]).fetchall()
        if not found:
            raise StoreError(f"There is no run '{run_id}' in {self.path}.")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
