"""`geodiag analyze gid|id`: run a sweep on a model and task, record it and the allocations it implies."""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator

import numpy as np

from geodiag import allocation as alloc
from geodiag.analysis.correlation import gid_fisher_correlations
from geodiag.analysis.sweeps import GradientStats, LayerGeometry, gradient_sweep, hidden_state_sweep
from geodiag.config import AnalyzeConfig
from geodiag.data import load_data
from geodiag.data.tokenise import batch_stream, encode
from geodiag.models import load_model, module_shapes, resolve_targets
from geodiag.names import (
    ANALYSIS_PROGRESS,
    FISHER,
    GID,
    GID_FISHER,
    GID_THRESHOLD,
    IMPORTANCE,
    PARTICIPATION_RATIO,
    PARTICIPATION_RATIO_N,
    TWONN,
    TWONN_DUPLICATES,
    TWONN_ERROR,
    TWONN_N,
)
from geodiag.records import row
from geodiag.store import Writer


def analyze_gid(cfg: AnalyzeConfig, *, progress: bool = True) -> str:
    """RaLoRA's GID sweep (RaLoRA §3.2, Alg. 1 lines 1-9), then the RaLoRA, RaLoRA-Pro and LoRA+GID allocations."""
    with _analysis(cfg, "gid") as (lm, stream, shapes, writer, run_id):
        stats = gradient_sweep(lm.model, itertools.islice(stream, cfg.gid_batches), [s.name for s in shapes],
                               total=cfg.gid_batches, progress=progress,
                               on_batch=_progress(writer, run_id, cfg.gid_batches))
        writer.append(run_id, gid_rows(stats) + gid_allocation_rows(cfg, stats, shapes)
                      + fisher_correlation_rows(stats))
    return run_id


def analyze_id(cfg: AnalyzeConfig, *, progress: bool = True) -> str:
    """GeLoRA's intrinsic-dimension profile of hidden_states[0..L], then the GeLoRA allocation."""
    with _analysis(cfg, "id") as (lm, stream, shapes, writer, run_id):
        profile = hidden_state_sweep(lm.model, stream, cfg.id_tokens, pooling=cfg.pooling, progress=progress,
                                     on_batch=_progress(writer, run_id, cfg.id_tokens))
        gelora = alloc.gelora([g.twonn for g in profile], shapes, scale=cfg.gelora_scale)
        writer.append(run_id, id_rows(profile) + alloc.allocation_rows("gelora", gelora))
    return run_id


def gid_rows(stats: list[GradientStats]) -> list[dict]:
    """gid/erank, gid/threshold (idx k for eps = 1e-k), importance and fisher/mean per module."""
    rows = []
    for s in stats:
        where = {"module": s.module, "layer": s.layer, "module_type": s.module_type}
        rows.append(row(0, 0.0, GID, s.erank, **where))
        rows += [row(0, 0.0, GID_THRESHOLD, n, idx=round(-math.log10(eps)), **where) for eps, n in s.thresholds.items()]
        rows += [row(0, 0.0, IMPORTANCE, s.importance, **where), row(0, 0.0, FISHER, s.fisher, **where)]
    return rows


def gid_allocation_rows(cfg: AnalyzeConfig, stats: list[GradientStats], shapes: list[alloc.ModuleShape]) -> list[dict]:
    """The allocations the measured GIDs (and importances) imply, LoRA's at rank r beside them."""
    gids = {s.module: s.erank for s in stats}
    importance = {s.module: s.importance for s in stats}
    lora = [alloc.Allocation(m.name, cfg.r, 1, m.layer, m.module_type, alloc.lora_params(m, cfg.r)) for m in shapes]
    planned = {
        "lora": lora,
        "ralora": alloc.ralora(gids, shapes, rank=cfg.r, n_max=cfg.n_max, rounding=cfg.block_rounding),
        "ralora-pro": alloc.ralora_pro(gids, importance, shapes, r_ref=cfg.r, n_max=cfg.n_max,
                                       rank_rounding=cfg.rank_rounding, block_rounding=cfg.block_rounding),
        "lora-gid": alloc.lora_gid(gids, shapes, rounding=cfg.rank_rounding),
    }
    return [r for method, allocations in planned.items() for r in alloc.allocation_rows(method, allocations)]


def fisher_correlation_rows(stats: list[GradientStats]) -> list[dict]:
    """RaLoRA Table 8: per module type, Pearson(GID, log F), Pearson(GID, 1/F) and Spearman(GID, F)."""
    table = gid_fisher_correlations([s.erank for s in stats], [s.fisher for s in stats],
                                    [s.module_type for s in stats])
    return [row(0, 0.0, GID_FISHER[k], v, module_type=mtype) for mtype, corr in table.items()
            for k, v in corr.items() if k in GID_FISHER]


def id_rows(profile: list[LayerGeometry]) -> list[dict]:
    rows = []
    for g in profile:
        where = {"module": f"hidden_states.{g.layer}", "layer": g.layer}
        rows += [row(0, 0.0, TWONN, g.twonn, **where), row(0, 0.0, TWONN_ERROR, g.twonn_error, **where),
                 row(0, 0.0, TWONN_N, g.n, **where), row(0, 0.0, TWONN_DUPLICATES, g.duplicates, **where),
                 row(0, 0.0, PARTICIPATION_RATIO, g.participation_ratio, **where),
                 row(0, 0.0, PARTICIPATION_RATIO_N, g.n, **where)]
    return rows


@contextlib.contextmanager
def _analysis(cfg: AnalyzeConfig, kind: str) -> Iterator[tuple]:
    """Load the model and data, create the analysis run, and mark it finished, or failed / cancelled with
    the reason, whatever happens inside."""
    lm = load_model(cfg.model, trust_remote_code=cfg.trust_remote_code, seed=cfg.seed)
    data = load_data(cfg.task, cfg.dataset, n_train=cfg.train_size, n_eval=1, seed=cfg.seed)
    encoded = [encode(lm.tokenizer, ex, cfg.max_length) for ex in data.train]
    stream = batch_stream(encoded, cfg.batch_size, lm.tokenizer.pad_token_id, seed=cfg.seed)
    shapes = module_shapes(lm.model, resolve_targets(lm.model, cfg.target_modules))
    config = {**cfg.to_dict(), "mean_seq_len": float(np.mean([len(e["input_ids"]) for e in encoded]))}
    writer = Writer(cfg.store)
    run_id = writer.create_run(name=cfg.run_name or f"{kind}-{cfg.model}-{data.name}", kind="analysis", method=kind,
                               model=cfg.model, task=data.name, config=config,
                               total_params=sum(p.numel() for p in lm.model.parameters()))
    try:
        yield lm, stream, shapes, writer, run_id
    except BaseException as e:
        writer.set_status(run_id, "failed" if isinstance(e, Exception) else "cancelled", str(e) or type(e).__name__)
        raise
    writer.set_status(run_id, "finished")


def _progress(writer: Writer, run_id: str, total: int, every_s: float = 1.0) -> Callable[[int], None]:
    """A sweep callback that records `analysis/progress` (fraction done, step = units done: batches for GID,
    points for ID), so a dashboard following the run from the store alone can draw a progress bar. A store
    append costs ~0.1 s, so it records the first and last call and at most one in between every `every_s`."""
    start = time.monotonic()
    last = -float("inf")

    def record(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done >= total or now - last >= every_s:
            writer.append(run_id, [row(done, now - start, ANALYSIS_PROGRESS, done / total)])
            last = now

    return record
