"""`geodiag analyze gid|id`: run a sweep on a model and task, record it and the allocations it implies."""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from geodiag.analysis import allocation as alloc
from geodiag.analysis.sweeps import THRESHOLDS, gradient_sweep, hidden_state_sweep
from geodiag.collectors import row
from geodiag.data import DEFAULT_TASK, batch_stream, encode, load_data
from geodiag.errors import GeodiagError
from geodiag.methods.base import check_choices, option
from geodiag.models import load_model, module_shapes, resolve_targets
from geodiag.store import DEFAULT_STORE, Writer


@dataclass
class AnalyzeConfig:
    model: str = option("smollm2", "`smollm2`, `tiny`, a HF id or a local dir")
    task: str = option(DEFAULT_TASK, "reasoning-gym task")
    dataset: str | None = option(None, "local JSONL/CSV instead of a task")
    targets: list[str] = option(["q_proj", "k_proj", "v_proj", "o_proj"], "modules to measure")
    batches: int = option(16, "GID: mini-batches whose gradients are accumulated")
    batch_size: int = option(4, "examples per mini-batch")
    max_length: int = option(128, "maximum tokens per example")
    tokens: int = option(4000, "ID: points per layer (non-padding tokens, or sequences with --pooling mean)")
    pooling: str = option("tokens", "ID: 'tokens' or 'mean' (mean-pooled sequences)", choices=("tokens", "mean"))
    rank: int = option(8, "reference LoRA rank r (RaLoRA, RaLoRA-Pro r_ref)")
    n_max: int = option(32, "RaLoRA maximum number of blocks")
    block_rounding: str = option("floor", "RaLoRA exponent rounding: floor (SPEC), ceil (003 Eq. 4) or round",
                                 choices=alloc.ROUNDINGS)
    rank_rounding: str = option("round", "RaLoRA-Pro / LoRA+GID rank rounding: round (SPEC), ceil (Eq. 8), floor",
                                choices=alloc.ROUNDINGS)
    gelora_scale: float = option(1.0, "GeLoRA budget scale on r_i = max(d_{i+1} - d_i, 0) + 1")
    seed: int = option(0, "seed for the data")
    train_size: int = option(2000, "items generated for a reasoning-gym task")
    store: str = option(DEFAULT_STORE, "DuckDB store file")
    run_name: str | None = option(None, "a readable name")
    trust_remote_code: bool = option(False, "allow a model's own code to run")

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):
            self.targets = [t.strip() for t in self.targets.split(",") if t.strip()]
        for name in ("batches", "batch_size", "max_length", "tokens", "rank", "n_max"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise GeodiagError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if not self.gelora_scale > 0:
            raise GeodiagError(f"gelora_scale must be positive, got {self.gelora_scale!r}.")
        check_choices(self)


def _setup(cfg: AnalyzeConfig, kind: str):
    lm = load_model(cfg.model, trust_remote_code=cfg.trust_remote_code, seed=cfg.seed)
    data = load_data(cfg.task, cfg.dataset, n_train=cfg.train_size, n_eval=1, seed=cfg.seed)
    encoded = [encode(lm.tokenizer, ex, cfg.max_length) for ex in data.train]
    stream = batch_stream(encoded, cfg.batch_size, lm.tokenizer.pad_token_id, seed=cfg.seed)
    targets = resolve_targets(lm.model, cfg.targets)
    shapes = module_shapes(lm.model, targets)
    seq_len = float(np.mean([len(e["input_ids"]) for e in encoded]))
    config = {**cfg.__dict__, "mean_seq_len": seq_len}
    writer = Writer(cfg.store)
    run_id = writer.create_run(name=cfg.run_name or f"{kind}-{cfg.model}-{data.name}", kind="analysis", method=kind,
                               model=cfg.model, task=data.name, config=config,
                               total_params=sum(p.numel() for p in lm.model.parameters()))
    return lm, stream, targets, shapes, writer, run_id


def analyze_gid(cfg: AnalyzeConfig, *, progress: bool = True) -> str:
    lm, stream, targets, shapes, writer, run_id = _setup(cfg, "gid")
    with _recorded(writer, run_id):
        stats = gradient_sweep(lm.model, itertools.islice(stream, cfg.batches), targets, total=cfg.batches,
                               progress=progress, on_batch=_progress(writer, run_id, cfg.batches))
        rows = []
        for s in stats:
            where = {"module": s.module, "layer": s.layer, "module_type": s.module_type}
            rows.append(row(0, 0.0, "gid/erank", s.erank, **where))
            rows += [row(0, 0.0, "gid/threshold", n, idx=round(-math.log10(eps)), **where)
                     for eps, n in s.thresholds.items()]
            rows.append(row(0, 0.0, "importance", s.importance, **where))
            rows.append(row(0, 0.0, "fisher/mean", s.fisher, **where))
        gids = {s.module: s.erank for s in stats}
        importance = {s.module: s.importance for s in stats}
        rows += allocation_rows("lora", [alloc.Allocation(m.name, cfg.rank, 1, m.layer, m.module_type,
                                                          alloc.lora_params(m, cfg.rank)) for m in shapes])
        rows += allocation_rows("ralora", alloc.ralora(gids, shapes, rank=cfg.rank, n_max=cfg.n_max,
                                                       rounding=cfg.block_rounding))
        rows += allocation_rows("ralora-pro", alloc.ralora_pro(gids, importance, shapes, r_ref=cfg.rank,
                                                               n_max=cfg.n_max, rank_rounding=cfg.rank_rounding,
                                                               block_rounding=cfg.block_rounding))
        rows += allocation_rows("lora-gid", alloc.lora_gid(gids, shapes, rounding=cfg.rank_rounding))
        rows += fisher_correlation_rows(stats)
        writer.append(run_id, rows)
    return run_id


def analyze_id(cfg: AnalyzeConfig, *, progress: bool = True) -> str:
    lm, stream, targets, shapes, writer, run_id = _setup(cfg, "id")
    with _recorded(writer, run_id):
        profile = hidden_state_sweep(lm.model, stream, cfg.tokens, pooling=cfg.pooling, progress=progress,
                                     on_batch=_progress(writer, run_id, cfg.tokens))
        rows = []
        for g in profile:
            where = {"module": f"hidden_states.{g.layer}", "layer": g.layer}
            rows += [row(0, 0.0, "id/twonn", g.twonn, **where), row(0, 0.0, "id/twonn_error", g.twonn_error, **where),
                     row(0, 0.0, "id/twonn_n", g.n, **where), row(0, 0.0, "id/twonn_duplicates", g.duplicates, **where),
                     row(0, 0.0, "geometry/participation_ratio", g.participation_ratio, **where),
                     row(0, 0.0, "geometry/participation_ratio_n", g.n, **where)]
        rows += allocation_rows("gelora", alloc.gelora([g.twonn for g in profile], shapes, scale=cfg.gelora_scale))
        writer.append(run_id, rows)
    return run_id


def _progress(writer: Writer, run_id: str, total: int, every_s: float = 1.0):
    """A sweep callback that records `analysis/progress` (fraction done, step = units done: batches for GID,
    points for ID), so a dashboard following the run from the store alone can draw a progress bar. A store
    append costs ~0.1 s, so it records the first and last call and at most one in between every `every_s`."""
    start = time.monotonic()
    last = -float("inf")

    def record(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done >= total or now - last >= every_s:
            writer.append(run_id, [row(done, now - start, "analysis/progress", done / total)])
            last = now

    return record


@contextlib.contextmanager
def _recorded(writer: Writer, run_id: str):
    """Mark the analysis run finished, or failed / cancelled with the reason, whatever happens inside."""
    try:
        yield
    except BaseException as e:
        writer.set_status(run_id, "failed" if isinstance(e, Exception) else "cancelled", str(e) or type(e).__name__)
        raise
    writer.set_status(run_id, "finished")


def allocation_rows(method: str, allocations: list[alloc.Allocation]) -> list[dict]:
    """alloc/<method> = rank per block, with /blocks, /equivalent_rank and /params beside it."""
    rows = []
    for a in allocations:
        where = {"module": a.module, "layer": a.layer, "module_type": a.module_type}
        rows += [row(0, 0.0, f"alloc/{method}", a.rank, **where),
                 row(0, 0.0, f"alloc/{method}/blocks", a.blocks, **where),
                 row(0, 0.0, f"alloc/{method}/equivalent_rank", a.equivalent_rank, **where),
                 row(0, 0.0, f"alloc/{method}/params", a.params, **where)]
    return rows


def fisher_correlation_rows(stats) -> list[dict]:
    """003 Table 8: per module type, Pearson(GID, log F), Pearson(GID, 1/F) and Spearman(GID, F)."""
    from geodiag.analysis.correlation import gid_fisher_correlations

    out = []
    for mtype, corr in gid_fisher_correlations(
            [s.erank for s in stats], [s.fisher for s in stats], [s.module_type for s in stats]).items():
        out += [row(0, 0.0, f"gid/fisher_{k}", v, module_type=mtype) for k, v in corr.items()]
    return out


__all__ = ["THRESHOLDS", "AnalyzeConfig", "allocation_rows", "analyze_gid", "analyze_id"]
