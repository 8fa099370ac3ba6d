"""RaLoRA and RaLoRA-Pro (RaLoRA §3.3-3.4): block-diagonal LoRA whose number of blocks per module follows
the gradient intrinsic dimensionality.

Delta W = diag(B_1 A_1, ..., B_n A_n) * alpha / r, each block of rank r on a d_out/n x d_in/n slice, so a
module costs r (d_in + d_out) parameters, like LoRA, while its update can reach rank n r. n_l comes from
GID_l; RaLoRA-Pro first re-allocates r_l by importance (both the registered rules, allocation.plan).
The GIDs come from the build context: a stored `geodiag analyze gid` run, or a sweep run first.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from geodiag import allocation as alloc
from geodiag.errors import GeodiagError
from geodiag.methods.base import AdapterView, AllocationRecord
from geodiag.methods.context import BuildContext
from geodiag.methods.hooks import HookAdapted
from geodiag.methods.ralora.config import RaLoraConfig
from geodiag.models import layer_index, linear_modules, module_shapes, module_type, resolve_targets


class BlockDiagonalAdapter(nn.Module):
    """n blocks of rank r: A (n, r, d_in/n) Kaiming-uniform, B (n, d_out/n, r) zero, scaled by alpha / r."""

    def __init__(self, d_in: int, d_out: int, r: int, n: int, alpha: float):
        super().__init__()
        self.A = nn.Parameter(torch.empty(n, r, d_in // n))
        for block in self.A.data:
            nn.init.kaiming_uniform_(block, a=math.sqrt(5))  # each block like a LoRA A
        self.B = nn.Parameter(torch.zeros(n, d_out // n, r))
        self.scaling = alpha / r

    def delta(self, x: torch.Tensor) -> torch.Tensor:  # (..., d_in) -> (..., d_out)
        n = self.A.shape[0]
        xs = x.reshape(*x.shape[:-1], n, -1)  # (..., n, d_in/n)
        z = torch.einsum("...nc,nrc->...nr", xs, self.A)  # (..., n, r)
        y = torch.einsum("...nr,nor->...no", z, self.B)  # (..., n, d_out/n)
        return y.reshape(*x.shape[:-1], -1) * self.scaling


class RaLoraAdapted(HookAdapted):
    def __init__(self, model: nn.Module, cfg: RaLoraConfig, allocations: list[alloc.Allocation],
                 gids: dict[str, float] | None = None, alphas: dict[str, float] | None = None):
        super().__init__(model, cfg)
        self.method = "ralora-pro" if cfg.pro else "ralora"
        self.allocation = AllocationRecord(self.method, list(allocations), cfg.r, dict(gids or {}))
        linears = linear_modules(model)
        for a in allocations:
            lin = linears[a.module]
            alpha = alphas[a.module] if alphas else cfg.alpha
            self.attach(a.module, BlockDiagonalAdapter(lin.in_features, lin.out_features, a.rank, a.blocks, alpha))

    def adapters(self) -> list[AdapterView]:
        return [AdapterView(n, layer_index(n), module_type(n), ad.B.detach(), ad.A.detach(), None, ad.scaling)
                for n, ad in ((n, self.adapter(n)) for n in self.targets)]

    def meta(self) -> dict:
        return {"allocations": [a.__dict__ for a in self.allocation.allocations],
                "alphas": {n: self.adapter(n).scaling * self.adapter(n).A.shape[1] for n in self.targets}}


def allocate(model: nn.Module, cfg: RaLoraConfig, gids: dict[str, float],
             importance: dict[str, float] | None) -> list[alloc.Allocation]:
    targets = resolve_targets(model, cfg.target_modules)
    shapes = module_shapes(model, targets)
    missing = [n for n in targets if n not in gids]
    if missing:
        raise GeodiagError(f"The GID analysis has no value for {missing[0]} (and {len(missing) - 1} more); run "
                           "`geodiag analyze gid` with the same --target-modules, or drop --from-analysis.")
    rule = "ralora-pro" if cfg.pro else "ralora"
    settings = alloc.Settings(rule, r=cfg.r, n_max=cfg.n_max, block_rounding=cfg.block_rounding,
                              **({"rank_rounding": cfg.rank_rounding} if cfg.pro else {}))
    return list(alloc.plan(settings, alloc.Vectors(gids=gids, importance=importance or {}), shapes).allocations)


def build(model: nn.Module, cfg: RaLoraConfig, context: BuildContext) -> RaLoraAdapted:
    if context.allocation:  # a file from `geodiag allocate`: its ranks, blocks and alphas as they are
        allocations = context.allocation.allocations(module_shapes(model, resolve_targets(model, cfg.target_modules)))
        return RaLoraAdapted(model, cfg, allocations, alphas=context.allocation.alphas)
    measurements = context.require_measurements("GIDs", "gid")
    gids, importance = measurements.gids(resolve_targets(model, cfg.target_modules), cfg.from_analysis,
                                         cfg.gid_batches)
    return RaLoraAdapted(model, cfg, allocate(model, cfg, gids, importance), gids)


def restore(model: nn.Module, cfg: RaLoraConfig, meta: dict) -> RaLoraAdapted:
    return RaLoraAdapted(model, cfg, [alloc.Allocation(**a) for a in meta["allocations"]], alphas=meta.get("alphas"))
