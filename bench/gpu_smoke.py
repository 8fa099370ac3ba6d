"""`make gpu-smoke`: 20 steps of every method on SmolLM2 in bfloat16 on a CUDA GPU, then both analyses,
each with its steps (or batches) per second and peak GPU memory.

    python -m bench.gpu_smoke [--model smollm2] [--device cuda] [--dtype bfloat16] [--steps 20]

The same script runs on the CPU (`--device cpu --model tiny`), which is how the test suite checks it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from geodiag.config import AnalyzeConfig, TrainConfig
from geodiag.methods.registry import METHODS
from geodiag.store import Reader


def _peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else float("nan")


def _reset(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# the tiny test model's layers are 64 wide: EVA's SVD of 2r = 16 components there does not converge at r = 8
TINY_OPTIONS = {"eva": {"r": 4}}


def smoke_train(method: str, args, store: Path) -> str:
    from geodiag.train import train

    _reset(args.device)
    cfg = TrainConfig(model=args.model, method=method, dtype=args.dtype, device=args.device, steps=args.steps,
                      batch_size=4, grad_accum=1, record_every=10, eval_size=8, store=str(store),
                      method_options=TINY_OPTIONS.get(method, {}) if args.model == "tiny" else {})
    rid = train(cfg, progress=False)
    wall = Reader(store).metric(rid, "loss/lm").set_index("step")["wall_time"]
    per_s = (args.steps - 1) / max(wall[args.steps] - wall[1], 1e-9)
    return f"{method:<11} {per_s:7.2f} steps/s   peak GPU memory {_peak_gb(args.device):6.2f} GB"


def smoke_analysis(kind: str, args, store: Path) -> str:
    from geodiag.analysis import analyze_gid, analyze_id

    _reset(args.device)
    cfg = AnalyzeConfig(model=args.model, dtype=args.dtype, device=args.device, store=str(store),
                        gid_batches=8, id_tokens=2000 if args.model != "tiny" else 200)
    t0 = time.perf_counter()
    (analyze_gid if kind == "gid" else analyze_id)(cfg, progress=False)
    seconds = time.perf_counter() - t0
    units = f"{cfg.gid_batches / seconds:7.2f} batches/s" if kind == "gid" else f"{seconds:7.1f} s        "
    return f"analyze {kind:<3} {units}   peak GPU memory {_peak_gb(args.device):6.2f} GB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-smoke needs a CUDA GPU and a CUDA build of torch; none is visible here "
              "(torch.cuda.is_available() is False).", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"gpu-smoke: {args.model} in {args.dtype} on {name}, {args.steps} steps per method")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "smoke.duckdb"
        for method in METHODS:
            print(smoke_train(method, args, store), flush=True)
        for kind in ("gid", "id"):
            print(smoke_analysis(kind, args, store), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
