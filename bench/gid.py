"""GID pass (post-accumulate hooks, one float32 accumulator per target weight) vs the plain way of
holding every parameter's gradient at once (requires_grad everywhere, .grad accumulated over the batches),
and the sweep's peak RSS above the interpreter and its imports against the README's formula
(model + float32 accumulators + one gradient; one batch's activations are the difference).

Each mode runs in its own fresh process so that its peak RSS is its own; the two alternate round by round.
`python -m bench.gid --mode sweep|all` runs one mode and prints its JSON (used by `python -m bench`).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(mode: str, model_name: str, batches: int) -> dict:
    before_load_mb = _current_rss_mb()  # the interpreter, torch and geodiag imported: not in the formula
    from geodiag.analysis.memory import gid_memory
    from geodiag.analysis.passes import gradient_pass
    from geodiag.data import load_task
    from geodiag.data.tokenise import batch_stream, encode
    from geodiag.metrics import effective_rank
    from geodiag.models import linear_modules, load_model, module_shapes, resolve_targets

    lm = load_model(model_name)
    data = load_task("basic_arithmetic", n_train=4 * batches, n_eval=1, seed=0)
    stream = batch_stream([encode(lm.tokenizer, ex, 128) for ex in data.train], 4, lm.tokenizer.pad_token_id)
    items = [next(stream) for _ in range(batches)]
    targets = resolve_targets(lm.model, TARGETS)
    base_mb = _rss_mb()
    t0 = time.perf_counter()
    if mode == "sweep":
        gids = {s.module: s.erank for s in gradient_pass(lm.model, items, targets, progress=False)}
    elif mode == "activations":  # the same backward passes, each gradient dropped as it comes: no accumulators
        linears = linear_modules(lm.model.eval())
        for p in lm.model.parameters():
            p.requires_grad_(False)
        for n in targets:
            linears[n].weight.requires_grad_(True)
            linears[n].weight.register_post_accumulate_grad_hook(lambda p: setattr(p, "grad", None))
        for batch in items:
            lm.model(**batch).loss.backward()
        gids = {n: 1.0 for n in targets}
    else:
        model = lm.model.eval()
        for p in model.parameters():
            p.requires_grad_(True)
        for batch in items:
            model(**batch).loss.backward()  # every parameter's .grad lives until the end
        linears = linear_modules(model)
        gids = {n: effective_rank(linears[n].weight.grad) for n in targets}
    seconds = time.perf_counter() - t0
    formula = gid_memory(sum(p.numel() for p in lm.model.parameters()), lm.model.dtype.itemsize,
                         module_shapes(lm.model, targets))
    return {"mode": mode, "seconds": seconds, "peak_rss_mb": _rss_mb(), "after_load_rss_mb": base_mb,
            "before_load_rss_mb": before_load_mb, "formula_mb": formula.total / 2**20,
            "formula_model_mb": formula.model / 2**20, "formula_accumulators_mb": formula.accumulators / 2**20,
            "modules": len(gids), "mean_gid": statistics.fmean(gids.values())}


def bench_gid(model_name: str = "smollm2", batches: int = 16, rounds: int = 1) -> dict:
    runs: dict[str, list[dict]] = {"sweep": [], "all": [], "activations": []}
    for _ in range(rounds):
        for mode in runs:
            out = subprocess.run([sys.executable, "-m", "bench.gid", "--mode", mode, "--model", model_name,
                                  "--batches", str(batches)], capture_output=True, text=True, check=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    sweep = min(runs["sweep"], key=lambda r: r["seconds"])
    full = min(runs["all"], key=lambda r: r["seconds"])
    acts = min(runs["activations"], key=lambda r: r["peak_rss_mb"])
    activations_mb = acts["peak_rss_mb"] - acts["after_load_rss_mb"]  # one batch's backward, no accumulators
    return {"model": model_name, "batches": batches, "sweep": sweep, "all_gradients": full,
            "time_ratio": full["seconds"] / sweep["seconds"],
            "peak_rss_ratio": full["peak_rss_mb"] / sweep["peak_rss_mb"],
            "extra_rss_ratio": (full["peak_rss_mb"] - full["after_load_rss_mb"])
            / max(1.0, sweep["peak_rss_mb"] - sweep["after_load_rss_mb"]),
            "same_gid": abs(full["mean_gid"] - sweep["mean_gid"]) < 1e-3 * sweep["mean_gid"],
            # the formula (+ the activations it leaves out, measured by the same backward passes without
            # accumulators) against what the sweep process held beyond the interpreter and its imports
            "formula_mb": sweep["formula_mb"], "activations_mb": activations_mb,
            "measured_above_imports_mb": sweep["peak_rss_mb"] - sweep["before_load_rss_mb"],
            "measured_over_formula_plus_activations": (sweep["peak_rss_mb"] - sweep["before_load_rss_mb"])
            / (sweep["formula_mb"] + activations_mb)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("sweep", "all", "activations"), required=True)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--batches", type=int, default=16)
    a = ap.parse_args()
    print(json.dumps(measure(a.mode, a.model, a.batches)))
