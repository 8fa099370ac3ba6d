"""Rebuild the shipped sample store (`make sample-runs`): real runs of the engine on the embedded SmolLM2-135M,
all on one task, so every dashboard page has content on first start.

    python sample_runs/build.py [--steps 60] [--out sample_runs/geodiag.duckdb]

It measures GID and the ID profile first, trains LoRA, DoRA, ManifoldLoRA (with subspace angles), RaLoRA,
RaLoRA-Pro, GeLoRA and AdaLoRA from them, and a short full fine-tuning run recording GID dynamics. The
store is built in a scratch folder and only the DuckDB file is copied (adapters are not shipped).
`--only lora manifold` retrains just those runs into the existing store (after a change to what they
record), reusing its analyses.
On 2 CPU cores this takes about 40 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

TASK = "basic_arithmetic"


PLANS = [  # (method, TrainConfig fields, method options); the newest run is what the dashboard opens on
    ("adalora", {}, {}),
    ("gelora", {}, {"from_analysis": "id"}),
    ("ralora-pro", {}, {"from_analysis": "gid"}),
    ("ralora", {}, {"from_analysis": "gid"}),
    ("lora", {"subspace_k": 8}, {"r": 8}),
    ("dora", {}, {"r": 8}),  # DoRA's magnitude/direction figure; every run records intruder dimensions
    ("manifold", {"subspace_k": 8}, {}),  # last: ManifoldLoRA is the run the dashboard opens on
]
ANALYSES = {"gid": "GID analysis (q,k,v,o)", "id": "ID analysis (TwoNN)"}


def build(out: Path, steps: int, eval_size: int, only: list[str] | None = None) -> None:
    """The whole store, or with `only`, those training runs retrained into a copy of the existing one (the
    analyses they start from are reused; the retrained runs become the newest)."""
    from geodiag.analysis import analyze_gid, analyze_id
    from geodiag.config import AnalyzeConfig
    from geodiag.store import Reader, Writer
    from geodiag.store.ingest import ingest
    from geodiag.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "geodiag.duckdb")
        t0 = time.monotonic()

        def log(what: str) -> None:
            print(f"[{time.monotonic() - t0:6.0f} s] {what}", flush=True)

        if only:
            shutil.copyfile(out, store)
            runs = Reader(store).runs()
            analyses = {k: runs.loc[runs["name"] == name, "run_id"].iloc[0] for k, name in ANALYSES.items()}
            for rid in runs.loc[runs["method"].isin(only) & (runs["kind"] == "train"), "run_id"]:
                Writer(store).delete_run(rid)
        else:
            log("GID analysis")
            analyses = {"gid": analyze_gid(AnalyzeConfig(task=TASK, store=store, run_name=ANALYSES["gid"]))}
            log("ID analysis")
            analyses["id"] = analyze_id(AnalyzeConfig(task=TASK, store=store, run_name=ANALYSES["id"]))
        if not only or "full" in only:
            log("full fine-tuning with GID dynamics")
            train(TrainConfig(method="full", task=TASK, steps=max(10, steps // 3), store=store, eval_size=0,
                              record_gid_every=2, record_every=max(10, steps // 3), lr=1e-5,
                              run_name="full fine-tuning (GID dynamics)"))
        common = dict(task=TASK, steps=steps, store=store, eval_size=eval_size)
        for method, extra, options in PLANS:
            if only and method not in only:
                continue
            log(f"train {method}")
            options = {k: analyses[v] if k == "from_analysis" else v for k, v in options.items()}
            train(TrainConfig(method=method, method_options=options, **common, **extra))
        ingest(Path(store), timeout_s=60)
        left = list(Path(store + ".spool").rglob("*.parquet")) if Path(store + ".spool").exists() else []
        if left:
            raise SystemExit(f"{len(left)} spool batch(es) were not folded into the store; run again.")
        runs = Reader(store).runs()
        out.parent.mkdir(parents=True, exist_ok=True)
        _compact(store, out)
        log(f"{len(runs)} runs, {out.stat().st_size / 1e6:.1f} MB -> {out}")
        print(runs[["name", "method", "status", "trainable_params"]].to_string(index=False))


def _compact(store: str, out: Path) -> None:
    """Copy the store into a fresh file: DuckDB keeps the pages of deleted rows, a new database does not."""
    import duckdb

    fresh = Path(store).with_name("compact.duckdb")
    con = duckdb.connect(str(fresh))
    try:
        con.execute(f"ATTACH '{store}' AS src (READ_ONLY)")
        con.execute("COPY FROM DATABASE src TO compact")
    finally:
        con.close()
    shutil.copyfile(fresh, out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("geodiag.duckdb"))
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--eval-size", type=int, default=32)
    ap.add_argument("--only", nargs="+", choices=["full", *(m for m, _, _ in PLANS)],
                    help="retrain just these runs into the existing --out store, reusing its analyses")
    args = ap.parse_args()
    build(args.out, args.steps, args.eval_size, args.only)
