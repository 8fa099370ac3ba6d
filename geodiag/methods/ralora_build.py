"""Building RaLoRA / RaLoRA-Pro: GIDs (and importances) from a stored analysis or a sweep run first."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from torch import nn

from geodiag.analysis.sweeps import gradient_sweep
from geodiag.errors import GeodiagError
from geodiag.methods.base import BuildContext, option
from geodiag.methods.ralora import RaLoraAdapted, RaLoraConfig, allocate
from geodiag.models import resolve_targets


@dataclass
class RaLoraProConfig(RaLoraConfig):
    pro: bool = option(True, "RaLoRA-Pro: importance-based ranks first")


def build_ralora(model: nn.Module, cfg: RaLoraConfig, total_steps: int,
                 context: BuildContext | None = None) -> RaLoraAdapted:
    gids, importance = _measurements(model, cfg, context or BuildContext())
    return RaLoraAdapted(model, cfg, allocate(model, cfg, gids, importance), gids)


def _measurements(model: nn.Module, cfg: RaLoraConfig, ctx: BuildContext):
    if cfg.from_analysis:
        from geodiag.store import Reader

        if not ctx.store:
            raise GeodiagError("from_analysis needs the store that holds that analysis run.")
        reader = Reader(ctx.store)
        run = reader.run(cfg.from_analysis)
        if run["kind"] != "analysis" or run["method"] != "gid":
            raise GeodiagError(f"Run {cfg.from_analysis} is a {run['kind']} run of {run['method']}, not a "
                               "`geodiag analyze gid` run.")
        gids = reader.metric(cfg.from_analysis, "gid/erank").set_index("module")["value"].to_dict()
        imp = reader.metric(cfg.from_analysis, "importance").set_index("module")["value"].to_dict()
        return gids, imp
    if ctx.batches is None:
        raise GeodiagError("RaLoRA needs GIDs: pass from_analysis=RUN (a `geodiag analyze gid` run) or train it "
                           "with `geodiag train`, which measures them first.")
    targets = resolve_targets(model, cfg.target_modules)
    stats = gradient_sweep(model, itertools.islice(ctx.batches(), cfg.gid_batches), targets,
                           total=cfg.gid_batches, progress=ctx.progress)
    return {s.module: s.erank for s in stats}, {s.module: s.importance for s in stats}
