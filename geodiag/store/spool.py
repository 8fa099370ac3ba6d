"""Per-run spool folders: what a writer produces without ever holding the DuckDB lock.

<store>.spool/<run_id>/run.json        the run's row, replaced atomically on every change
<store>.spool/<run_id>/<seq>.parquet   metric batches, each written once, atomically (tmp + rename)

A reader sees a file completely or not at all; a SIGKILL loses at most the batch being written.
"""

from __future__ import annotations

import functools
import json
import math
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geodiag.store.schema import METRIC_COLUMNS

# A writer stamps run.json at least every HEARTBEAT_S while it runs (each append, and each step through
# Writer.beat); a run on another host silent for STALE_AFTER_S reads as stale. Ten minutes is far beyond a
# beat and a training step on the models geodiag targets, and beyond clock skew between hosts.
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0

METRICS_ARROW = pa.schema([
    ("run_id", pa.string()), ("step", pa.int64()), ("wall_time", pa.float64()), ("name", pa.string()),
    ("module", pa.string()), ("layer", pa.int32()), ("module_type", pa.string()), ("idx", pa.int32()),
    ("value", pa.float64()),
])


def spool_root(store: Path) -> Path:
    return store.with_name(store.name + ".spool")


def run_dir(store: Path, run_id: str) -> Path:
    return spool_root(store) / run_id


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_run(store: Path, record: dict) -> None:
    d = run_dir(store, record["run_id"])
    d.mkdir(parents=True, exist_ok=True)
    write_atomic(d / "run.json", json.dumps(record, default=str).encode())


def write_batch(store: Path, run_id: str, seq: int, df: pd.DataFrame, suffix: object = "") -> Path:
    table = pa.Table.from_pandas(df[list(METRIC_COLUMNS)], schema=METRICS_ARROW, preserve_index=False)
    d = run_dir(store, run_id)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{seq:020d}-{suffix}.parquet"
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomic(path, sink.getvalue().to_pybytes())
    return path


def run_records(store: Path, *, live: bool = True) -> list[dict]:
    """Every spooled run.json, with 'running' runs whose process died shown as 'interrupted' (`live`)."""
    out = []
    for f in sorted(spool_root(store).glob("*/run.json")):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now, or gone: the next read sees it
        out.append(with_liveness(rec) if live else rec)
    return out


def batch_files(store: Path, run_id: str | None = None) -> list[Path]:
    pattern = f"{run_id}/*.parquet" if run_id else "*/*.parquet"
    return sorted(spool_root(store).glob(pattern))


def with_liveness(rec: dict) -> dict:
    """How a run marked running reads: `interrupted` when its process is gone from this host (SIGKILL, crash);
    `stale` when it runs on another host (whose processes this one cannot see) and its writer has been silent
    for longer than STALE_AFTER_S; otherwise running."""
    if rec.get("status") != "running":
        return rec
    if rec.get("host") == socket.gethostname():
        if rec.get("pid") and not pid_alive(int(rec["pid"])):
            return {**rec, "status": "interrupted",
                    "message": rec.get("message") or "The process stopped without finishing the run "
                                                    "(killed or crashed); its data up to the last flush is kept."}
        return rec
    silent = seconds_since(rec.get("heartbeat"))
    if silent is not None and silent > stale_after_s():
        return {**rec, "status": "stale",
                "message": f"No write from host {rec.get('host')} for {silent / 60:.0f} min (the last at "
                           f"{str(rec['heartbeat'])[:19]} UTC): its writer may have stopped or lost the shared "
                           "store. A run on another host is never marked interrupted from here."}
    return rec


def stale_after_s() -> float:
    """How long a run on another host may be silent before it reads as stale (GEODIAG_STALE_AFTER_S)."""
    return _seconds(os.environ.get("GEODIAG_STALE_AFTER_S"))


@functools.lru_cache(maxsize=8)
def _seconds(text: str | None) -> float:
    """The variable's seconds; a value that is not a positive number is said once, in one sentence, and the
    default is used (a reader must still open the store)."""
    if text is None:
        return STALE_AFTER_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        print(f"geodiag: warning: GEODIAG_STALE_AFTER_S must be a positive number of seconds, got {text!r}; using "
              f"{STALE_AFTER_S:.0f}.", file=sys.stderr)
        return STALE_AFTER_S
    return value


def seconds_since(stamp) -> float | None:
    """Seconds from a naive UTC timestamp (as the writer stamps them) to now; None if there is none."""
    try:
        then = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return (datetime.now(timezone.utc).replace(tzinfo=None) - then).total_seconds()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not running the run any more
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
