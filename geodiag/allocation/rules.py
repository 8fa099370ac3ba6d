"""Rank allocations implied by GID, importance and intrinsic dimension. Pure functions, torch-free.

Every rounding the papers leave ambiguous is an explicit, documented option:
- RaLoRA (RaLoRA Eq. 4): n_l = 2^e. Eq. 4 writes ceil, the text says rounded down, Alg. 1 clips the
  exponent to [1, n_max]. Default: e = clip(floor(log2(GID_l / r)), 0, log2 n_max); `rounding` takes
  "floor" | "ceil" | "round". n_l is then halved until it divides both d_in and d_out.
- RaLoRA-Pro (RaLoRA Eq. 6-8): alpha_l = I_l / sum I; P_total = sum_l sqrt(d_in + d_out) r_ref;
  r_l = clip(round(P_total alpha_l / sqrt(d_in + d_out)), r_min, r_max). Eq. 8 writes ceil: `rounding`.
  Its ranks depend on the convention (presets.importance_ranks, written once there).
- LoRA+GID (RaLoRA App. E.4): rank_l = round(GID_l), at least 1 (`rounding` again).
- GeLoRA (as reported for GeLoRA; its full text gives no code): r_i = max(d_{i+1} - d_i, 0) + 1 for every
  matrix of block i, times an optional budget scale (rounded, at least 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ROUNDINGS = ("floor", "ceil", "round")


@dataclass(frozen=True)
class ModuleShape:
    name: str
    d_in: int
    d_out: int
    layer: int | None = None
    module_type: str | None = None


@dataclass(frozen=True)
class Allocation:
    """One module's allocation: rank per block, number of blocks, and the trainable parameters it costs."""

    module: str
    rank: int
    blocks: int = 1
    layer: int | None = None
    module_type: str | None = None
    params: int = 0

    @property
    def equivalent_rank(self) -> int:  # rank of the whole (block-diagonal) update
        return self.rank * self.blocks


def lora_params(shape: ModuleShape, rank: int) -> int:
    """r (d_in + d_out): LoRA's count, and RaLoRA's too (n blocks of rank r on d/n-wide slices)."""
    return rank * (shape.d_in + shape.d_out)


def rounded(x: float, rounding: str) -> int:
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    return {"floor": math.floor, "ceil": math.ceil, "round": round}[rounding](x)


def ralora_blocks(gid: float, rank: int, shape: ModuleShape, *, n_max: int = 32, rounding: str = "floor") -> int:
    """n_l = 2^e with e = clip(rounding(log2(GID / r)), 0, log2 n_max), lowered until it divides d_in, d_out."""
    if rank < 1 or n_max < 1 or n_max & (n_max - 1):
        raise ValueError("rank must be >= 1 and n_max a power of two")
    e_max = int(math.log2(n_max))
    e = 0 if gid <= 0 else min(max(rounded(math.log2(gid / rank), rounding), 0), e_max)
    n = 2**e
    while n > 1 and (shape.d_in % n or shape.d_out % n or rank > min(shape.d_in, shape.d_out) // n):
        n //= 2  # blocks must tile the matrix, and each d/n-wide block must hold rank r
    return n


def lora_gid(gids: dict[str, float], shapes: Sequence[ModuleShape], *, rounding: str = "round") -> list[Allocation]:
    out = []
    for s in shapes:
        r = min(max(rounded(gids[s.name], rounding), 1), min(s.d_in, s.d_out))
        out.append(Allocation(s.name, r, 1, s.layer, s.module_type, lora_params(s, r)))
    return out


def gelora_ranks(ids: Sequence[float], *, scale: float = 1.0) -> list[int]:
    """r_i = max(d_{i+1} - d_i, 0) + 1 for block i, from the L+1 intrinsic dimensions d_0..d_L of the
    hidden states entering block 0 .. leaving block L-1 (hidden_states[0..L])."""
    if len(ids) < 2:
        raise ValueError("GeLoRA needs the intrinsic dimension before and after at least one block")
    if scale <= 0:
        raise ValueError("scale must be positive")
    return [max(1, round(scale * (max(b - a, 0.0) + 1))) for a, b in zip(ids[:-1], ids[1:], strict=False)]


def gelora(ids: Sequence[float] | Mapping[int, float], shapes: Sequence[ModuleShape], *,
           scale: float = 1.0) -> list[Allocation]:
    """Each module's rank from its block's d_i and d_{i+1}: ids is hidden_states[0..L] as a sequence, or a
    mapping index -> d for a measured subset (the states entering and leaving the chosen blocks)."""
    ids = ids if isinstance(ids, Mapping) else dict(enumerate(ids))
    out = []
    for s in shapes:
        if s.layer is None or s.layer not in ids or s.layer + 1 not in ids:
            raise ValueError(f"{s.name} has no measured intrinsic dimension entering and leaving its block")
        r = min(gelora_ranks([ids[s.layer], ids[s.layer + 1]], scale=scale)[0], min(s.d_in, s.d_out))
        out.append(Allocation(s.name, r, 1, s.layer, s.module_type, lora_params(s, r)))
    return out
