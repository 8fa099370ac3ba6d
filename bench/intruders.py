"""Intruder dimensions per record on SmolLM2's q and v (60 modules, LoRA r=8 with trained-looking factors):
geodiag's count (W's singular vectors cached once; W + ΔW's top-10 by Lanczos on the operator) vs a dense SVD
of W + ΔW at every record (the cached base side is the same for both). Same counts required."""

from __future__ import annotations

import time

import torch


def bench_intruders(model_name: str = "smollm2", rounds: int = 2) -> dict:
    from geodiag import methods
    from geodiag.collectors import Intruders
    from geodiag.metrics import intruder_count
    from geodiag.models import load_model

    torch.manual_seed(0)
    adapted = methods.build("lora", load_model(model_name).model, {"r": 8})
    collector = Intruders()
    t0 = time.perf_counter()
    collector.start(adapted)  # once per run
    start_s = time.perf_counter() - t0
    with torch.no_grad():  # factors the size a few hundred steps leave them
        for p in adapted.trainable():
            p.copy_(0.05 * torch.randn_like(p))
    ours, dense, same = [], [], True
    for _ in range(rounds):
        t0 = time.perf_counter()
        rows = collector.rows(adapted, 1, 0.0)
        ours.append(time.perf_counter() - t0)
        counts = {r["module"]: r["value"] for r in rows if r["name"] == "intruders/count"}
        t0 = time.perf_counter()
        for v in adapted.adapters():
            merged = adapted.base_weight(v.module).double() + v.scaling * v.B.double() @ v.A.double()
            U = torch.linalg.svd(merged, full_matrices=False).U[:, :10].numpy()  # the dense way, every record
            n, _ = intruder_count(collector.bases[v.module], U)
            same &= n == counts[v.module]
        dense.append(time.perf_counter() - t0)
    return {"model": model_name, "modules": len(collector.bases), "start_s": start_s, "record_s": min(ours),
            "dense_record_s": min(dense), "ratio": min(dense) / min(ours), "same_counts": same,
            **one_large_module()}


def one_large_module(d: int = 4096, r: int = 8) -> dict:
    """One 4096 x 4096 module (a 7-8B model's q_proj) with a rank-8 update: the operator vs a dense SVD."""
    from geodiag.metrics import top_singular_vectors

    g = torch.Generator().manual_seed(0)
    W = torch.randn(d, d, generator=g) / d**0.5
    B, A = 0.05 * torch.randn(d, r, generator=g), 0.05 * torch.randn(r, d, generator=g)
    t0 = time.perf_counter()
    U, _ = top_singular_vectors(W, B, A)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    U_dense = torch.linalg.svd(W.double() + B.double() @ A.double(), full_matrices=False).U[:, :10]
    dense = time.perf_counter() - t0
    agree = float((torch.tensor(U).T @ U_dense).abs().diagonal().min())
    return {"large_d": d, "large_record_s": ours, "large_dense_s": dense, "large_ratio": dense / ours,
            "large_vectors_agree": agree}
