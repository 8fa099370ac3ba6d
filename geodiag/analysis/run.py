"""`geodiag analyze gid|id`: one pass of the model over the task's batches, recorded with the allocations it implies.
(A "pass" here; a "sweep" in geodiag is `geodiag sweep`'s methods x seeds.)"""

from __future__ import annotations

import contextlib
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from geodiag import allocation as alloc
from geodiag.analysis.correlation import gid_fisher_correlations
from geodiag.analysis.memory import gid_memory
from geodiag.analysis.passes import (
    GradientStats,
    LayerGeometry,
    accumulate_gradients,
    collect_hidden_states,
    gradient_stats,
    layer_geometries,
)
from geodiag.config import AnalyzeConfig
from geodiag.data import load_data
from geodiag.data.tokenise import batch_stream, encode
from geodiag.errors import GeodiagError
from geodiag.models import layer_index, load_model, module_shapes, resolve_targets
from geodiag.models.placement import pick_dtype, start_accelerator
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
    """RaLoRA's GID pass (RaLoRA §3.2, Alg. 1 lines 1-9), then the RaLoRA, RaLoRA-Pro and LoRA+GID allocations.
    Data-parallel under torchrun / accelerate launch: each rank accumulates its share of the batches, the
    accumulators are added over the ranks once at the end, and rank 0 measures and writes."""
    with _analysis(cfg, "gid", progress) as a:
        mine = len(range(a.rank, cfg.gid_batches, a.world))  # batch i of the global stream goes to rank i % world
        acc = accumulate_gradients(a.model, itertools.islice(a.stream, mine), [s.name for s in a.shapes],
                                   total=mine, progress=progress and a.main, on_batch=a.progress(mine))
        acc.summed_over_ranks()
        if a.main:
            stats = gradient_stats(a.model, acc)
            a.writer.append(a.run_id, gid_rows(stats) + gid_allocation_rows(cfg, stats, a.shapes)
                            + fisher_correlation_rows(stats))
    return a.run_id


def analyze_id(cfg: AnalyzeConfig, *, progress: bool = True) -> str:
    """GeLoRA's intrinsic-dimension profile of hidden_states[0..L] (or of the states entering and leaving
    --layers), then the GeLoRA allocation. Data-parallel: each rank collects its share of the points and rank 0
    gathers them, in rank order, and measures."""
    layers = cfg.layer_indices()
    states = None if layers is None else sorted({i for layer in layers for i in (layer, layer + 1)})
    with _analysis(cfg, "id", progress) as a:
        share = math.ceil(cfg.id_tokens / a.world)
        points = collect_hidden_states(a.model, a.stream, share, pooling=cfg.pooling, states=states,
                                       progress=progress and a.main, on_batch=a.progress(share))
        points = gathered_points(points, cfg.id_tokens)
        if a.main:
            profile = layer_geometries(points)
            vectors = alloc.Vectors(ids={g.layer: g.twonn for g in profile})
            a.writer.append(a.run_id, id_rows(profile) + rule_rows(cfg, "id", vectors, a.shapes))
    return a.run_id


def gathered_points(points: dict[int, torch.Tensor], tokens: int) -> dict[int, torch.Tensor] | None:
    """Every rank's points of each hidden state on rank 0, in rank order, cut to `tokens`; None elsewhere."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return points
    every = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(points, every, dst=0)
    if every is None:
        return None
    return {i: torch.cat([p[i] for p in every])[:tokens] for i in points}


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
    """The allocations the measured GIDs (and importances) imply under every rule that reads them, LoRA's at
    rank r beside them."""
    vectors = alloc.Vectors(gids={s.module: s.erank for s in stats}, importance={s.module: s.importance for s in stats})
    lora = [alloc.Allocation(m.name, cfg.r, 1, m.layer, m.module_type, alloc.lora_params(m, cfg.r)) for m in shapes]
    return alloc.allocation_rows("lora", lora) + rule_rows(cfg, "gid", vectors, shapes)


def rule_rows(cfg: AnalyzeConfig, analysis: str, vectors: alloc.Vectors, shapes: list[alloc.ModuleShape]
              ) -> list[dict]:
    """alloc/<rule> rows of every registered rule that reads this analysis, under the analysis's options."""
    rows = []
    for rule in alloc.rules_reading(analysis):
        settings = alloc.Settings(rule, r=cfg.r, n_max=cfg.n_max, rank_rounding=cfg.rank_rounding,
                                  block_rounding=cfg.block_rounding,
                                  budget_scale=cfg.gelora_scale if analysis == "id" else 1.0)
        rows += alloc.allocation_rows(rule, list(alloc.plan(settings, vectors, shapes).allocations))
    return rows


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


@dataclass
class Analysis:
    """What an analysis works with; `writer` only on rank 0, which creates and ends the run."""

    model: nn.Module
    stream: Iterator[dict[str, torch.Tensor]]  # this rank's batches, on the model's device
    shapes: list[alloc.ModuleShape]
    rank: int
    world: int
    writer: Writer | None
    run_id: str = ""

    @property
    def main(self) -> bool:
        return self.writer is not None

    def progress(self, total: int) -> Callable[[int], None] | None:
        return progress_recorder(self.writer, self.run_id, total) if self.writer else None


@contextlib.contextmanager
def _analysis(cfg: AnalyzeConfig, kind: str, progress: bool) -> Iterator[Analysis]:
    """Load the model (on the accelerator's device, in --dtype) and data, create the analysis run on rank 0,
    and mark it finished, or failed / cancelled with the reason, whatever happens inside."""
    accelerator = start_accelerator(cfg.device)
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    lm = load_model(cfg.model, trust_remote_code=cfg.trust_remote_code, seed=cfg.seed,
                    dtype=pick_dtype(cfg.dtype, device))
    model = lm.model.to(device)
    data = load_data(cfg.task, cfg.dataset, n_train=cfg.train_size, n_eval=1, seed=cfg.seed)
    encoded = [encode(lm.tokenizer, ex, cfg.max_length) for ex in data.train]
    stream = ({k: v.to(device) for k, v in b.items()}
              for b in batch_stream(encoded, cfg.batch_size, lm.tokenizer.pad_token_id, seed=cfg.seed, rank=rank,
                                    world=world))
    shapes = module_shapes(model, layer_subset(resolve_targets(model, cfg.target_modules), cfg.layer_indices()))
    a = Analysis(model, stream, shapes, rank, world, Writer(cfg.store) if rank == 0 else None)
    if a.main:
        memory = gid_memory(sum(p.numel() for p in model.parameters()), model.dtype.itemsize, shapes)
        config = {**cfg.to_dict(), "mean_seq_len": float(np.mean([len(e["input_ids"]) for e in encoded])),
                  "world_size": world, "device": str(device), "model_dtype": str(model.dtype).removeprefix("torch."),
                  "modules": [[m.name, m.d_out, m.d_in, m.layer, m.module_type] for m in shapes],
                  **({"memory_estimate_gb": round(memory.total / 1e9, 3)} if kind == "gid" else {})}
        a.run_id = a.writer.create_run(name=cfg.run_name or f"{kind}-{cfg.model}-{data.name}", kind="analysis",
                                       method=kind, model=cfg.model, task=data.name, config=config,
                                       total_params=sum(p.numel() for p in model.parameters()))
        if kind == "gid" and progress:
            tqdm.write(f"{memory.sentence()} (world size {world})", file=sys.stderr)
    try:
        with a.writer.finishing(a.run_id) if a.main else contextlib.nullcontext():
            yield a
    finally:
        accelerator.end_training()


def layer_subset(targets: list[str], layers: list[int] | None) -> list[str]:
    """The targets in the chosen decoder layers; a sentence when a layer index does not exist."""
    if layers is None:
        return targets
    present = {layer_index(t) for t in targets}
    missing = [x for x in layers if x not in present]
    if missing:
        raise GeodiagError(f"layers {', '.join(map(str, missing))} do not exist in this model (it has layers "
                           f"0-{max(i for i in present if i is not None)}).")
    return [t for t in targets if layer_index(t) in layers]


def progress_recorder(writer: Writer, run_id: str, total: int, every_s: float = 1.0) -> Callable[[int], None]:
    """A pass callback that records `analysis/progress` (fraction done, step = units done: batches for GID,
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
