"""The narrow read interface every consumer uses (pages, CLI, exports): tidy DataFrames sorted by step."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from geodiag.errors import StoreError
from geodiag.store._db import connect
from geodiag.store.schema import RUN_COLUMNS


class Reader:
    """Read-only view of a store. Each call opens and closes its own connection, so a reader never
    blocks a writer for longer than one query."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def runs(self) -> pd.DataFrame:
        """One row per run, newest first. An empty store gives an empty frame with the run columns."""
        with connect(self.path, read_only=True) as con:
            if not _has_runs_table(con):
                return pd.DataFrame(columns=list(RUN_COLUMNS))
            return con.execute("SELECT * FROM runs ORDER BY started_at DESC NULLS LAST").df()

    def run(self, run_id: str) -> dict:
        """One run's row as a dict with its config parsed; an unknown id is a StoreError."""
        with connect(self.path, read_only=True) as con:
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).df() if _has_runs_table(con) else None
        if row is None or row.empty:
            raise StoreError(f"There is no run '{run_id}' in {self.path}; `geodiag runs list --store {self.path}` "
                             "shows the run ids.")
        out = row.iloc[0].to_dict()
        out["config"] = json.loads(out["config"]) if out.get("config") else {}
        return out

    def metric(self, run_id: str, name: str) -> pd.DataFrame:
        """Every recorded value of one metric for one run: step, module, layer, module_type, idx, value,
        wall_time, sorted by step then module then idx."""
        self.run(run_id)  # unknown ids fail loudly rather than returning an empty frame
        with connect(self.path, read_only=True) as con:
            return con.execute(
                """SELECT step, module, layer, module_type, idx, value, wall_time FROM metrics
                   WHERE run_id = ? AND name = ? ORDER BY step, module NULLS FIRST, idx NULLS FIRST""",
                [run_id, name],
            ).df()

    def metric_names(self, run_id: str) -> list[str]:
        with connect(self.path, read_only=True) as con:
            rows = con.execute("SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name", [run_id])
            return [r[0] for r in rows.fetchall()]


def _has_runs_table(con) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'").fetchall()[0][0])
