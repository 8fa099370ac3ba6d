"""Rebuild the shipped sample store (`make sample-runs`): real runs of the engine on the embedded SmolLM2-135M,
all on one task, so every dashboard page has content on first start.

    python sample_runs/build.py [--steps 60] [--out sample_runs/geodiag.duckdb]

It measures GID and the ID profile first, trains LoRA, ManifoldLoRA (with subspace angles), RaLoRA,
RaLoRA-Pro, GeLoRA and AdaLoRA from them, and a short full fine-tuning run recording GID dynamics. The
store is built in a scratch folder and only the DuckDB file is copied (adapters are not shipped).
On 2 CPU cores this takes about 40 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

TASK = "basic_arithmetic"


def build(out: Path, steps: int, eval_size: int) -> None:
    from geodiag.analysis.run import AnalyzeConfig, analyze_gid, analyze_id
    from geodiag.store import Reader
    from geodiag.store.ingest import ingest
    from geodiag.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "geodiag.duckdb")
        t0 = time.monotonic()

        def log(what: str) -> None:
            print(f"[{time.monotonic() - t0:6.0f} s] {what}", flush=True)

        log("GID analysis")
        gid = analyze_gid(AnalyzeConfig(task=TASK, store=store, run_name="GID analysis (q,k,v,o)"))
        log("ID analysis")
        idr = analyze_id(AnalyzeConfig(task=TASK, store=store, run_name="ID analysis (TwoNN)"))
        common = dict(task=TASK, steps=steps, store=store, eval_size=eval_size)
        log("full fine-tuning with GID dynamics")
        train(TrainConfig(method="full", task=TASK, steps=max(10, steps // 3), store=store, eval_size=0,
                          record_gid_every=2, record_every=max(10, steps // 3), lr=1e-5,
                          run_name="full fine-tuning (GID dynamics)"))
        plans = [  # the newest run is what the dashboard opens on: ManifoldLoRA comes last
            ("adalora", {}, {}),
            ("gelora", {}, {"from_analysis": idr}),
            ("ralora-pro", {}, {"from_analysis": gid}),
            ("ralora", {}, {"from_analysis": gid}),
            ("lora", {"subspace_k": 8}, {"r": 8}),
            ("manifold", {"subspace_k": 8}, {}),
        ]
        for method, extra, options in plans:
            log(f"train {method}")
            train(TrainConfig(method=method, method_options=options, **common, **extra))
        ingest(Path(store), timeout_s=60)
        left = list(Path(store + ".spool").rglob("*.parquet")) if Path(store + ".spool").exists() else []
        if left:
            raise SystemExit(f"{len(left)} spool batch(es) were not folded into the store; run again.")
        runs = Reader(store).runs()
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store, out)
        log(f"{len(runs)} runs, {out.stat().st_size / 1e6:.1f} MB -> {out}")
        print(runs[["name", "method", "status", "trainable_params"]].to_string(index=False))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("geodiag.duckdb"))
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--eval-size", type=int, default=32)
    args = ap.parse_args()
    build(args.out, args.steps, args.eval_size)
