"""RaLoRA and RaLoRA-Pro (paper 003 §3.3-3.4, SPEC §2): block-diagonal LoRA whose number of blocks per
module follows the gradient intrinsic dimensionality.

Delta W = diag(B_1 A_1, ..., B_n A_n) * alpha / r, each block of rank r on a d_out/n x d_in/n slice, so a
module costs r (d_in + d_out) parameters, like LoRA, while its update can reach rank n r. n_l comes from
GID_l (allocation.ralora_blocks); RaLoRA-Pro first re-allocates r_l by importance (allocation.ralora_pro).
The GIDs come from a stored `geodiag analyze gid` run (`from_analysis`) or from a sweep run first.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from geodiag.analysis import allocation as alloc
from geodiag.errors import GeodiagError
from geodiag.methods.base import Adapted, AdapterView, MethodConfig, option
from geodiag.models import layer_index, linear_modules, module_shapes, module_type, resolve_targets


@dataclass
class RaLoraConfig(MethodConfig):
    r: int = option(8, "rank of every block (RaLoRA) or reference rank r_ref (RaLoRA-Pro)")
    alpha: float = option(16.0, "scaling numerator: each block is scaled by alpha / r")
    n_max: int = option(32, "maximum number of blocks (a power of two)")
    block_rounding: str = option("floor", "exponent rounding: floor (SPEC), ceil (003 Eq. 4) or round",
                                 choices=alloc.ROUNDINGS)
    rank_rounding: str = option("round", "RaLoRA-Pro rank rounding: round (SPEC), ceil (003 Eq. 8) or floor",
                                choices=alloc.ROUNDINGS)
    pro: bool = option(False, "RaLoRA-Pro: importance-based ranks first (set by --method ralora-pro)")
    from_analysis: str | None = option(None, "run id of a `geodiag analyze gid` run to take GIDs from")
    gid_batches: int = option(16, "mini-batches for the GID sweep when no analysis run is given")

    def __post_init__(self) -> None:
        super().__post_init__()
        self._require(self.r >= 1, "r", "a positive integer")
        self._require(self.alpha > 0, "alpha", "positive")
        self._require(self.n_max >= 1 and not self.n_max & (self.n_max - 1), "n_max", "a power of two")
        self._require(self.gid_batches >= 1, "gid_batches", "a positive integer")


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


class RaLoraAdapted(Adapted):
    method = "ralora"

    def __init__(self, model: nn.Module, cfg: RaLoraConfig, allocations: list[alloc.Allocation],
                 gids: dict[str, float] | None = None):
        super().__init__(model, cfg)
        self.gids = gids or {}
        self.method = "ralora-pro" if cfg.pro else "ralora"
        for p in model.parameters():
            p.requires_grad_(False)
        linears = linear_modules(model)
        self.allocations = {a.module: a for a in allocations}
        self.adapters_ = nn.ModuleDict()
        self._handles = []
        for a in allocations:
            lin = linears[a.module]
            ad = BlockDiagonalAdapter(lin.in_features, lin.out_features, a.rank, a.blocks, cfg.alpha)
            self.adapters_[a.module.replace(".", "__")] = ad.to(lin.weight.device, lin.weight.dtype)
            self._handles.append(lin.register_forward_hook(lambda m, i, o, ad=ad: o + ad.delta(i[0])))

    def trainable(self) -> list[nn.Parameter]:
        return list(self.adapters_.parameters())

    def adapters(self) -> list[AdapterView]:
        out = []
        for name in self.allocations:
            ad = self.adapters_[name.replace(".", "__")]
            out.append(AdapterView(name, layer_index(name), module_type(name), ad.B.detach(), ad.A.detach(), None,
                                   ad.scaling))
        return out

    def initial_rows(self) -> list[dict]:
        from geodiag.methods.allocated import allocation_initial_rows

        return allocation_initial_rows(self.method, list(self.allocations.values()), self.config.r, self.gids)

    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.adapters_.state_dict().items()},
                  str(directory / "ralora_adapter.safetensors"))
        meta = {"method": self.method, "config": self.config.to_dict(),
                "allocations": [a.__dict__ for a in self.allocations.values()]}
        (directory / "ralora_config.json").write_text(json.dumps(meta, indent=2))


def load_ralora(model: nn.Module, directory: str | Path) -> RaLoraAdapted:
    from safetensors.torch import load_file

    meta = json.loads((Path(directory) / "ralora_config.json").read_text())
    adapted = RaLoraAdapted(model, RaLoraConfig.from_dict(meta["config"]),
                            [alloc.Allocation(**a) for a in meta["allocations"]])
    adapted.adapters_.load_state_dict(load_file(str(Path(directory) / "ralora_adapter.safetensors")))
    return adapted


def allocate(model: nn.Module, cfg: RaLoraConfig, gids: dict[str, float],
             importance: dict[str, float] | None) -> list[alloc.Allocation]:
    targets = resolve_targets(model, cfg.target_modules)
    shapes = module_shapes(model, targets)
    missing = [n for n in targets if n not in gids]
    if missing:
        raise GeodiagError(f"The GID analysis has no value for {missing[0]} (and {len(missing) - 1} more); run "
                           "`geodiag analyze gid` with the same --targets, or drop --from-analysis.")
    if cfg.pro:
        if not importance:
            raise GeodiagError("RaLoRA-Pro needs importances, which this analysis run did not record.")
        return alloc.ralora_pro(gids, importance, shapes, r_ref=cfg.r, n_max=cfg.n_max,
                                rank_rounding=cfg.rank_rounding, block_rounding=cfg.block_rounding)
    return alloc.ralora(gids, shapes, rank=cfg.r, n_max=cfg.n_max, rounding=cfg.block_rounding)
