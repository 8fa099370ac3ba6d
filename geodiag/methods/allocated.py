"""Methods whose per-module ranks come from an analysis: LoRA+GID (003 App. E.4) and GeLoRA (001, as
reported), both peft LoRA with a rank_pattern / alpha_pattern; plus what they share with RaLoRA (reading
a stored analysis or measuring first, and recording the allocation used)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from torch import nn

from geodiag.analysis import allocation as alloc
from geodiag.errors import GeodiagError
from geodiag.methods.base import BuildContext, MethodConfig, option
from geodiag.methods.peft_methods import LoraAdapted
from geodiag.models import layer_index, module_shapes, module_type, resolve_targets


@dataclass
class AllocatedLoraConfig(MethodConfig):
    from_analysis: str | None = option(None, "run id of the analysis to take ranks from (`analyze gid` for "
                                       "lora-gid, `analyze id` for gelora); without it the analysis runs first")
    alpha_ratio: float = option(2.0, "alpha / r of every module (the scaling alpha / r stays constant)")
    dropout: float = option(0.0, "dropout on the adapter input")
    rank_rounding: str = option("round", "LoRA+GID: rank = rounding(GID): round (SPEC), ceil or floor",
                                choices=alloc.ROUNDINGS)
    gelora_scale: float = option(1.0, "GeLoRA: budget scale on r_i = max(d_{i+1} - d_i, 0) + 1")
    gid_batches: int = option(16, "mini-batches for the GID sweep when no analysis run is given")
    id_tokens: int = option(4000, "tokens per layer for the ID sweep when no analysis run is given")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(self.alpha_ratio > 0, "alpha_ratio", "positive")
        self._require(self.gelora_scale > 0, "gelora_scale", "positive")


@dataclass
class GeLoraConfig(AllocatedLoraConfig):
    alpha_ratio: float = option(32.0, "alpha / r of every module (GeLoRA's runs use alpha_i = 32 r_i)")


def stored_analysis(ctx: BuildContext, run_id: str, kind: str):
    from geodiag.store import Reader

    if not ctx.store:
        raise GeodiagError("from_analysis needs the store that holds that analysis run.")
    reader = Reader(ctx.store)
    run = reader.run(run_id)
    if run["kind"] != "analysis" or run["method"] != kind:
        raise GeodiagError(f"Run {run_id} is a {run['kind']} run of {run['method']}, not a `geodiag analyze {kind}` "
                           "run.")
    return reader


def gid_measurements(model: nn.Module, targets: list[str], from_analysis: str | None, ctx: BuildContext,
                     batches: int) -> tuple[dict[str, float], dict[str, float]]:
    """GID and importance per module: from a stored `analyze gid` run, or a sweep on training batches."""
    if from_analysis:
        reader = stored_analysis(ctx, from_analysis, "gid")
        gids = reader.metric(from_analysis, "gid/erank").set_index("module")["value"].to_dict()
        return gids, reader.metric(from_analysis, "importance").set_index("module")["value"].to_dict()
    if ctx.batches is None:
        raise GeodiagError("This method needs GIDs: pass from_analysis=RUN (a `geodiag analyze gid` run) or train "
                           "it with `geodiag train`, which measures them first.")
    from geodiag.analysis.sweeps import gradient_sweep

    stats = gradient_sweep(model, itertools.islice(ctx.batches(), batches), targets, total=batches,
                           progress=ctx.progress)
    return {s.module: s.erank for s in stats}, {s.module: s.importance for s in stats}


def id_profile(model: nn.Module, from_analysis: str | None, ctx: BuildContext, tokens: int) -> list[float]:
    """TwoNN ID of hidden_states[0..L]: from a stored `analyze id` run, or a sweep on training batches."""
    if from_analysis:
        reader = stored_analysis(ctx, from_analysis, "id")
        return reader.metric(from_analysis, "id/twonn").sort_values("layer")["value"].tolist()
    if ctx.batches is None:
        raise GeodiagError("GeLoRA needs an intrinsic-dimension profile: pass from_analysis=RUN (a `geodiag "
                           "analyze id` run) or train it with `geodiag train`, which measures it first.")
    from geodiag.analysis.sweeps import hidden_state_sweep

    return [g.twonn for g in hidden_state_sweep(model, ctx.batches(), tokens, progress=ctx.progress)]


def allocation_initial_rows(method: str, allocations: list[alloc.Allocation], r_ref: int,
                            gids: dict[str, float] | None = None) -> list[dict]:
    """The allocation a run used, the GIDs it came from, and LoRA's parameter count at rank r_ref."""
    from geodiag.analysis.run import allocation_rows  # late: analysis.run imports the collectors
    from geodiag.collectors import row

    rows = allocation_rows(method, allocations)
    rows += [row(0, 0.0, "gid/erank", g, module=m, layer=layer_index(m), module_type=module_type(m))
             for m, g in (gids or {}).items()]
    lora = sum(r_ref * (a.params // a.rank) for a in allocations)  # r_ref (d_in + d_out) per module
    return rows + [row(0, 0.0, "params/trainable", sum(a.params for a in allocations)),
                   row(0, 0.0, "params/lora_reference", lora)]


class AllocatedLora(LoraAdapted):
    def __init__(self, model: nn.Module, cfg: AllocatedLoraConfig, method: str, allocations: list[alloc.Allocation],
                 gids: dict[str, float] | None = None):
        super().__init__(model, cfg)
        self.method = method
        self.allocations = allocations
        self.gids = gids

    def initial_rows(self) -> list[dict]:
        return allocation_initial_rows(self.method, self.allocations, 8, self.gids)


def _peft(model: nn.Module, cfg: AllocatedLoraConfig, allocations: list[alloc.Allocation]) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    ranks = {a.module: a.rank for a in allocations}
    top = max(ranks.values())
    peft_cfg = LoraConfig(r=top, lora_alpha=cfg.alpha_ratio * top, lora_dropout=cfg.dropout,
                          target_modules=list(ranks), rank_pattern=ranks,
                          alpha_pattern={m: cfg.alpha_ratio * r for m, r in ranks.items()}, task_type="CAUSAL_LM")
    return get_peft_model(model, peft_cfg)


def build_lora_gid(model: nn.Module, cfg: AllocatedLoraConfig, total_steps: int,
                   context: BuildContext | None = None) -> AllocatedLora:
    targets = resolve_targets(model, cfg.target_modules)
    gids, _ = gid_measurements(model, targets, cfg.from_analysis, context or BuildContext(), cfg.gid_batches)
    allocations = alloc.lora_gid(gids, module_shapes(model, targets), rounding=cfg.rank_rounding)
    return AllocatedLora(_peft(model, cfg, allocations), cfg, "lora-gid", allocations, gids)


def build_gelora(model: nn.Module, cfg: GeLoraConfig, total_steps: int,
                 context: BuildContext | None = None) -> AllocatedLora:
    targets = resolve_targets(model, cfg.target_modules)
    ids = id_profile(model, cfg.from_analysis, context or BuildContext(), cfg.id_tokens)
    allocations = alloc.gelora(ids, module_shapes(model, targets), scale=cfg.gelora_scale)
    return AllocatedLora(_peft(model, cfg, allocations), cfg, "gelora", allocations)
