"""Conventions ("presets") for the allocation rules, and the allocation lab's one entry point: a rule, a preset
and the lab's overrides give a `Plan` (rank, blocks and alpha per module, and what it costs). Pure functions of
stored vectors (GIDs, importances, an ID profile) and module shapes; torch-free.

The papers and their public code state the rules differently; each reading is a preset:
- `paper`: the rules as geodiag implements them (rules.py): RaLoRA Eq. 4 with the exponent floored and n halved
  until it tiles the matrix; RaLoRA-Pro Eq. 6-8 with sqrt(d_in + d_out) features, ranks rounded and clipped to
  [r/2, 2r]; LoRA+GID round(GID) (RaLoRA App. E.4); GeLoRA max(d_{i+1} - d_i, 0) + 1 as reported. alpha = 2 r_l
  (RaLoRA's alpha = 16 at r = 8), GeLoRA's 32 r_l.
- `official`: the public RaLoRA code's convention: importance share I_l / sum I, budget B = sum (d_in + d_out) r
  (identity features), RaLoRA-Pro r_l = clip(floor(round(B share_l) / (d_in + d_out)), 1, 9999), plain RaLoRA
  r_l = r, n_l = 2^clip(floor(log2 GID_l - log2 r_l), 0, log2 n_max), and an error, as that code raises, when
  n_l does not divide d_in and d_out. That code has no LoRA+GID or GeLoRA: those follow `paper`.
- `lycoris`: sqrt(d_in + d_out) features, r_min = r/2, r_max = 2r, n_max = 32, alpha = rank (scaling 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from geodiag.allocation import rules
from geodiag.allocation.registry import Rule, get_rule, register_rule
from geodiag.allocation.rules import ROUNDINGS, Allocation, ModuleShape
from geodiag.errors import GeodiagError


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    features: str = "sqrt"  # a module's weight in RaLoRA-Pro's budget: sqrt(d_in + d_out) or d_in + d_out
    strict_blocks: bool = False  # True: n_l that does not tile the matrix is an error; False: halve it
    n_max: int = 32
    bounds: str = "half-double"  # RaLoRA-Pro's clip: [r/2, 2r], or [1, 9999] as the public code
    alpha: str = "ratio"  # "ratio": alpha_l = 2 r_l (GeLoRA 32 r_l); "rank": alpha_l = r_l


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("paper", "the rules as geodiag implements them (RaLoRA Eq. 4, 6-8, App. E.4; GeLoRA as reported)"),
    Preset("official", "the public RaLoRA code: identity features, floor(round(B share)/(d_in+d_out)) clipped to "
                       "[1, 9999], floored exponent, an error when n_l does not tile", features="identity",
           strict_blocks=True, bounds="code"),
    Preset("lycoris", "sqrt(d_in + d_out) features, r in [r/2, 2r], n_max 32, alpha = rank", alpha="rank"),
)}


@dataclass(frozen=True)
class Settings:
    """What the lab adjusts; None takes the preset's value."""

    rule: str
    preset: str = "paper"
    r: int = 8  # r_ref: LoRA's rank the budget is compared with, and plain RaLoRA's block rank
    n_max: int | None = None
    r_min: int | None = None
    r_max: int | None = None
    rank_rounding: str = "round"
    block_rounding: str = "floor"
    budget_scale: float = 1.0
    constants: tuple[tuple[str, float], ...] = ()  # (name, value): a rule's paper constants moved; the rest stay

    def __post_init__(self) -> None:
        rule = get_rule(self.rule)  # a sentence naming the rules there are
        for name, value in self.constants:
            c = rule.constant(name)
            if isinstance(value, bool) or not (isinstance(value, int | float) and c.low <= value <= c.high):
                raise GeodiagError(f"The {self.rule} rule's {name} must be a number between {c.low:g} and "
                                   f"{c.high:g}, got {value!r}.")
        if self.preset not in PRESETS:
            raise GeodiagError(f"There is no preset '{self.preset}'; choose one of {', '.join(PRESETS)}.")
        for name in ("rank_rounding", "block_rounding"):
            if getattr(self, name) not in ROUNDINGS:
                raise GeodiagError(f"{name} must be one of {', '.join(ROUNDINGS)}, got {getattr(self, name)!r}.")
        for name in ("r_min", "r_max"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise GeodiagError(f"{name} must be a positive whole rank, got {value!r}.")
        if self.r_min is not None and self.r_max is not None and self.r_min > self.r_max:
            raise GeodiagError(f"r_min ({self.r_min}) is above r_max ({self.r_max}): no rank fits between them.")
        n_max = self.n_max if self.n_max is not None else 32
        if self.r < 1 or n_max < 1 or n_max & (n_max - 1) or self.budget_scale <= 0:
            raise GeodiagError("r must be a positive integer, n_max a power of two and the budget scale positive.")

    @property
    def spec(self) -> Preset:
        return PRESETS[self.preset]

    def constant(self, name: str) -> float:
        """The rule's constant: as moved here, else the paper's value."""
        return float(dict(self.constants).get(name, get_rule(self.rule).constant(name).value))


@dataclass(frozen=True)
class Vectors:
    """The measurements a rule reads: per-module GID and importance (a `geodiag analyze gid` run), the ID
    profile by hidden-state index (a `geodiag analyze id` run), or the pretrained weights' power-law alpha, MP
    spike count and stable rank per module (a `geodiag analyze spectra` run)."""

    gids: Mapping[str, float] = field(default_factory=dict)
    importance: Mapping[str, float] = field(default_factory=dict)
    ids: Mapping[int, float] = field(default_factory=dict)
    alpha: Mapping[str, float] = field(default_factory=dict)
    spikes: Mapping[str, float] = field(default_factory=dict)
    stable_rank: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    settings: Settings
    shapes: tuple[ModuleShape, ...]
    allocations: tuple[Allocation, ...]
    alphas: Mapping[str, float]

    @property
    def params(self) -> int:
        """What the rule trains (a block-diagonal module: n blocks of rank r on d/n slices, r (d_in + d_out))."""
        return sum(a.params for a in self.allocations)

    @property
    def peft_params(self) -> int:
        """What peft trains from rank_pattern: a dense rank-r_l LoRA per module (the per-block rank only)."""
        widths = {s.name: s.d_in + s.d_out for s in self.shapes}
        return sum(a.rank * widths[a.module] for a in self.allocations)

    @property
    def lora_params(self) -> int:
        """LoRA at the reference rank on the same modules: the budget the rule is compared with."""
        return sum(rules.lora_params(s, self.settings.r) for s in self.shapes)


def plan(settings: Settings, vectors: Vectors, shapes: Sequence[ModuleShape]) -> Plan:
    """The allocation `settings.rule` implies under `settings.preset` and the lab's overrides."""
    rule = get_rule(settings.rule)
    if not shapes:
        raise GeodiagError("There are no modules to allocate to.")
    if rule.check:
        rule.check(vectors, shapes)
    allocations = rule.allocate(settings, vectors, shapes)
    alphas = {a.module: float(a.rank if settings.spec.alpha == "rank" else rule.alpha_ratio * a.rank)
              for a in allocations}
    return Plan(settings, tuple(shapes), tuple(allocations), alphas)


def _gids_for(rule: str) -> Callable[[Vectors, Sequence[ModuleShape]], None]:
    def check(vectors: Vectors, shapes: Sequence[ModuleShape]) -> None:
        missing = [s.name for s in shapes if s.name not in vectors.gids]
        if missing:
            raise GeodiagError(f"{rule} allocates from GIDs, and the analysis has none for {missing[0]}"
                               f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}: pick a "
                               "`geodiag analyze gid` run over the same modules.")
        if rule == "ralora-pro" and any(s.name not in vectors.importance for s in shapes):
            raise GeodiagError("ralora-pro needs importances, which this analysis run did not record.")

    return check


def _profile(vectors: Vectors, shapes: Sequence[ModuleShape]) -> None:
    if not vectors.ids:
        raise GeodiagError("gelora allocates from an intrinsic-dimension profile: pick a `geodiag analyze id` run.")


def _n_max(settings: Settings) -> int:
    return settings.n_max if settings.n_max is not None else settings.spec.n_max


def _blocks(settings: Settings, gid: float, rank: int, shape: ModuleShape) -> int:
    if not settings.spec.strict_blocks:
        return rules.ralora_blocks(gid, rank, shape, n_max=_n_max(settings), rounding=settings.block_rounding)
    return strict_blocks(gid, rank, shape, n_max=_n_max(settings))


def strict_blocks(gid: float, rank: int, shape: ModuleShape, *, n_max: int) -> int:
    """The public RaLoRA code: n = 2^clip(floor(log2 GID - log2 r), 0, log2 n_max), and an error when n does not
    divide d_in and d_out (it never lowers n)."""
    e = 0 if gid <= 0 else math.floor(math.log2(gid) - math.log2(rank))
    n = 2 ** min(max(e, 0), int(math.log2(n_max)))
    if shape.d_in % n or shape.d_out % n:
        raise GeodiagError(f"{n} blocks do not divide {shape.name} ({shape.d_out}x{shape.d_in}), as the official "
                           "convention requires; lower n_max or use the paper preset, which halves n until it "
                           "tiles the matrix.")
    return n


def _ralora(settings: Settings, vectors: Vectors, shapes: Sequence[ModuleShape]) -> list[Allocation]:
    rank = max(1, round(settings.r * settings.budget_scale))
    return [Allocation(s.name, rank, _blocks(settings, vectors.gids[s.name], rank, s), s.layer, s.module_type,
                       rules.lora_params(s, rank)) for s in shapes]


def _ralora_pro(settings: Settings, vectors: Vectors, shapes: Sequence[ModuleShape]) -> list[Allocation]:
    ranks = importance_ranks(settings, vectors.importance, shapes)
    return [Allocation(s.name, ranks[s.name], _blocks(settings, vectors.gids[s.name], ranks[s.name], s), s.layer,
                       s.module_type, rules.lora_params(s, ranks[s.name])) for s in shapes]


def importance_ranks(settings: Settings, importance: Mapping[str, float], shapes: Sequence[ModuleShape]
                     ) -> dict[str, int]:
    """RaLoRA-Pro's ranks: each module's importance share of LoRA's budget at r_ref (RaLoRA Eq. 6-8), under the
    preset's features, rounding and clip."""
    spec, r = settings.spec, settings.r
    total = sum(importance[s.name] for s in shapes)
    if total <= 0:
        raise GeodiagError("The importances sum to zero: there is nothing to allocate by.")
    lo, hi = (1, 9999) if spec.bounds == "code" else (max(1, r // 2), 2 * r)
    lo = settings.r_min if settings.r_min is not None else lo
    hi = settings.r_max if settings.r_max is not None else hi

    def width(s: ModuleShape) -> float:
        return math.sqrt(s.d_in + s.d_out) if spec.features == "sqrt" else float(s.d_in + s.d_out)

    budget = settings.budget_scale * sum(width(s) * r for s in shapes)
    out = {}
    for s in shapes:
        share = importance[s.name] / total
        if spec.bounds == "code":  # the public code rounds the module's parameter share, then floors the rank
            rank = math.floor(round(budget * share) / (s.d_in + s.d_out))
        else:
            rank = rules.rounded(budget * share / width(s), settings.rank_rounding)
        out[s.name] = min(max(rank, lo), hi)
    return out


def _lora_gid(settings: Settings, vectors: Vectors, shapes: Sequence[ModuleShape]) -> list[Allocation]:
    scaled = {m: settings.budget_scale * g for m, g in vectors.gids.items()}
    return _bounded(settings, rules.lora_gid(scaled, shapes, rounding=settings.rank_rounding), shapes)


def _gelora(settings: Settings, vectors: Vectors, shapes: Sequence[ModuleShape]) -> list[Allocation]:
    try:
        allocations = rules.gelora(dict(vectors.ids), shapes, scale=settings.budget_scale)
    except ValueError as e:
        raise GeodiagError(f"{e}; pick an ID analysis of the same layers.") from None
    return _bounded(settings, allocations, shapes)


def _bounded(settings: Settings, allocations: list[Allocation], shapes: Sequence[ModuleShape]) -> list[Allocation]:
    """The lab's r_min / r_max on a rule that has no clip of its own (LoRA+GID, GeLoRA)."""
    if settings.r_min is None and settings.r_max is None:
        return allocations
    by_name = {s.name: s for s in shapes}
    out = []
    for a in allocations:
        rank = max(a.rank, settings.r_min or 1)
        rank = min(rank, settings.r_max) if settings.r_max is not None else rank
        out.append(replace(a, rank=rank, params=rules.lora_params(by_name[a.module], rank)))
    return out


for _rule in (Rule("ralora", "gid", _ralora, "RaLoRA §3.3, Eq. 4: n_l = 2^e blocks of rank r from GID_l / r",
                   _gids_for("ralora")),
              Rule("ralora-pro", "gid", _ralora_pro, "RaLoRA §3.4, Eq. 6-8: ranks by importance share of LoRA's "
                   "budget, then GID-sized blocks", _gids_for("ralora-pro")),
              Rule("lora-gid", "gid", _lora_gid, "RaLoRA App. E.4: rank_l = round(GID_l)", _gids_for("lora-gid")),
              Rule("gelora", "id", _gelora, "GeLoRA: r_i = max(d_{i+1} - d_i, 0) + 1 from the TwoNN profile",
                   _profile, alpha_ratio=32.0)):
    register_rule(_rule)
