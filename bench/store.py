"""Store benchmarks: spool -> DuckDB ingest rate, and a figure-style query on a 10M-row store.

Goals (issue 3): ingest >= 1M rows/s; a figure query (one metric of one run, by step and module) <= 200 ms.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from geodiag.store import Reader, Writer
from geodiag.store import spool as spool_mod
from geodiag.store.ingest import ingest

NAMES = ["spectrum/singular_value", "gate/value", "gate/effective_rank", "geometry/participation_ratio",
         "loss/lm", "probe/alignment", "spectrum/stable_rank", "lr"]


def _batch(run_id: str, start_step: int, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": run_id,
        "step": start_step + np.arange(rows) // 600,
        "wall_time": rng.random(rows),
        "name": np.array(NAMES)[rng.integers(0, len(NAMES), rows)],
        "module": np.array([f"model.layers.{i % 30}.self_attn.{'qv'[i % 2]}_proj" for i in range(60)])[
            rng.integers(0, 60, rows)],
        "layer": rng.integers(0, 30, rows).astype(np.int32),
        "module_type": np.array(["q", "v"])[rng.integers(0, 2, rows)],
        "idx": rng.integers(0, 36, rows).astype(np.int32),
        "value": rng.random(rows),
    })


def bench_store(total_rows: int = 10_000_000, runs: int = 10, batch_rows: int = 100_000) -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "s.duckdb"
        writer = Writer(store)
        run_ids = [writer.create_run(name=f"r{i}", kind="train", method="manifold") for i in range(runs)]
        per_run = total_rows // runs
        for rid in run_ids:  # spool everything first (what writers do while training)...
            for k in range(per_run // batch_rows):
                spool_mod.write_batch(store, rid, k, _batch(rid, k * batch_rows // 600, batch_rows, rng))
        t0 = time.perf_counter()
        added = ingest(store, timeout_s=10)  # ...then time one fold of the whole spool into DuckDB
        t_ingest = time.perf_counter() - t0
        reader = Reader(store)
        reader.metric(run_ids[3], "gate/effective_rank")  # warm the file cache once
        times = []
        for rid in run_ids[:5]:
            t0 = time.perf_counter()
            df = reader.metric(rid, "spectrum/singular_value")
            times.append(time.perf_counter() - t0)
        return {"rows": int(added), "runs": runs, "ingest_s": t_ingest, "rows_per_s": added / t_ingest,
                "query": "Reader.metric(run, 'spectrum/singular_value')", "query_rows": len(df),
                "query_ms_median": 1e3 * float(np.median(times)), "query_ms_max": 1e3 * max(times),
                "store_mb": store.stat().st_size / 2**20, "goal_rows_per_s": 1e6, "goal_query_ms": 200}
