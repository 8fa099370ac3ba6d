"""Rebuild the shipped sample store (`make sample-runs`) with the engine itself, on the embedded SmolLM2-135M and
the default task:

    python sample_runs/build.py [--out sample_runs/geodiag.duckdb] [--work sample_runs/build]

1. a full fine-tuning run of q,k,v,o recording GID every 5 steps (RaLoRA Fig. 3c);
2. `geodiag sweep sample_runs/sweep.yaml`: its shared GID and ID analyses, then every method at LoRA r=8's
   parameter count, over seeds (two cells at a time, one thread each).

Everything is written to the work folder's store first, and resumable: run it again after an interruption and the
sweep skips finished cells (the full run too). A work folder without a store starts from the shipped one, so a
build also resumes on another machine from whatever cells were shipped. The store is then copied into a fresh
DuckDB file at --out (adapters and spool are not shipped). On 2 CPU cores the whole build takes several hours;
`--snapshot` ships the finished runs of a build still in progress, and the next build resumes from them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = dict(method="full", steps=100, lr=2e-5, record_gid_every=5, record_every=10, eval_size=64,
            label="full", run_name="full fine-tuning (GID dynamics)")


def build(out: Path, work: Path) -> None:
    from geodiag.store import Reader
    from geodiag.store.ingest import ingest

    work.mkdir(parents=True, exist_ok=True)
    store = work / "geodiag.duckdb"
    if not store.exists() and out.exists():  # resume from what was shipped: its finished cells are skipped
        shutil.copyfile(out, store)
    t0 = time.monotonic()
    if not _finished(store, FULL["run_name"]):
        print("full fine-tuning with GID dynamics", flush=True)
        _geodiag("train", "--model", "smollm2", "--store", str(store),
                 *(f"--{k.replace('_', '-')}={v}" for k, v in FULL.items()))
    print("the sweep", flush=True)
    _geodiag("sweep", str(HERE / "sweep.yaml"), "--store", str(store))
    ingest(store, timeout_s=60)
    runs = Reader(store).runs()
    _compact(store, out)
    print(f"{len(runs)} runs in {(time.monotonic() - t0) / 60:.0f} min, {out.stat().st_size / 1e6:.1f} MB -> {out}")


def snapshot(out: Path, work: Path) -> None:
    """Ship what a build in progress has finished: the work store's finished runs, compacted into --out (a run
    still training is left out: the next build, here or on another machine, runs it again)."""
    import duckdb

    from geodiag.store.ingest import ingest

    store = work / "geodiag.duckdb"
    ingest(store, timeout_s=60)  # every finished run's rows into the file
    copy = work / "snapshot.duckdb"
    shutil.copyfile(store, copy)
    con = duckdb.connect(str(copy))  # a private copy: its running runs' processes write elsewhere
    try:
        unfinished = [r for (r,) in con.execute("SELECT run_id FROM runs WHERE status <> 'finished'").fetchall()]
        for table in ("metrics", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id IN (SELECT run_id FROM runs WHERE status <> 'finished')")
        kept = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        con.close()
    _compact(copy, out)
    copy.unlink()
    print(f"{kept} finished runs ({len(unfinished)} left out), {out.stat().st_size / 1e6:.1f} MB -> {out}")


def _finished(store: Path, name: str) -> bool:
    from geodiag.store import Reader

    if not store.exists():
        return False
    runs = Reader(store).runs()
    return bool(((runs["name"] == name) & (runs["status"] == "finished")).any())


def _geodiag(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "geodiag", *args])
    if done.returncode != 0:
        raise SystemExit(f"`geodiag {args[0]}` failed (exit {done.returncode}); run the build again to resume.")


def _compact(store: Path, out: Path) -> None:
    """Copy the store into a fresh file: DuckDB keeps the pages of deleted rows, a new database does not."""
    import duckdb

    fresh = store.with_name("compact.duckdb")
    fresh.unlink(missing_ok=True)
    con = duckdb.connect(str(fresh))
    try:
        con.execute(f"ATTACH '{store}' AS src (READ_ONLY)")
        con.execute("COPY FROM DATABASE src TO compact")
    finally:
        con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fresh, out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "geodiag.duckdb")
    ap.add_argument("--work", type=Path, default=HERE / "build", help="where the store is built (resumable)")
    ap.add_argument("--snapshot", action="store_true", help="copy the finished runs of a build in progress to --out "
                                                            "and stop (the build itself keeps running)")
    args = ap.parse_args()
    if args.snapshot:
        snapshot(args.out, args.work)
    else:
        build(args.out, args.work)
