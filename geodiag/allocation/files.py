"""An allocation as a file: what `geodiag allocate` writes and `geodiag train --allocation` reads. Keys are the
modules as the store names them (model.layers.3.self_attn.q_proj), so that
`peft.LoraConfig(r=..., rank_pattern=..., alpha_pattern=..., target_modules=...)` built from the file trains
exactly `peft_params` parameters. Torch-free."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from geodiag.allocation.presets import Plan
from geodiag.allocation.registry import RULES, get_rule
from geodiag.allocation.rules import Allocation, ModuleShape, lora_params
from geodiag.errors import GeodiagError

BLOCK_NOTE = ("params is what the block-diagonal rule trains (n_l blocks of rank r_l on d/n_l slices); peft receives "
              "the per-block ranks only (rank_pattern), a dense rank-r_l LoRA per module: peft_params.")


def plan_json(plan: Plan, *, source_run: str, model: str) -> dict:
    s = plan.settings
    out = {
        "rule": s.rule, "preset": s.preset, "source_run": source_run, "model": model, "r": s.r,
        "target_modules": [a.module for a in plan.allocations],
        "shapes": {sh.name: [sh.d_out, sh.d_in] for sh in plan.shapes},
        "rank_pattern": {a.module: a.rank for a in plan.allocations},
        "alpha_pattern": {a.module: plan.alphas[a.module] for a in plan.allocations},
        "blocks": {a.module: a.blocks for a in plan.allocations},
        "params": plan.params, "peft_params": plan.peft_params,
        "settings": {k: v for k, v in s.__dict__.items() if k not in ("rule", "preset", "constants")},
        "constants": {c.name: s.constant(c.name) for c in get_rule(s.rule).constants},
    }
    if any(a.blocks > 1 for a in plan.allocations):
        out["note"] = BLOCK_NOTE
    return out


@dataclass(frozen=True)
class AllocationFile:
    path: Path
    rule: str
    model: str
    r: int
    shapes: dict[str, tuple[int, int]]  # module -> (d_out, d_in)
    ranks: dict[str, int]
    alphas: dict[str, float]
    blocks: dict[str, int]

    def allocations(self, shapes: list[ModuleShape]) -> list[Allocation]:
        """The file's allocation on the model's modules (`shapes`: their layer and type; check() first)."""
        by_name = {s.name: s for s in shapes}
        return [Allocation(m, rank, self.blocks.get(m, 1), by_name[m].layer, by_name[m].module_type,
                           lora_params(by_name[m], rank)) for m, rank in self.ranks.items()]

    def check(self, shapes: list[ModuleShape], model: str) -> None:
        """One sentence when the model's modules are not the ones the file was made for."""
        have = {s.name: (s.d_out, s.d_in) for s in shapes}
        for m, shape in self.shapes.items():
            if m not in have:
                raise GeodiagError(f"{self.path} allocates to {m}, which {model} does not have: it was made for "
                                   f"{self.model}.")
            if tuple(have[m]) != tuple(shape):
                raise GeodiagError(f"{self.path} was made for {self.model}, where {m} is {shape[0]}x{shape[1]}; in "
                                   f"{model} it is {have[m][0]}x{have[m][1]}.")


def read_allocation(path: str | Path) -> AllocationFile:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise GeodiagError(f"There is no allocation file at {p}; `geodiag allocate RUN --out {p}` writes "
                           "one.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GeodiagError(f"{p} is not an allocation file (not JSON: {e}).") from None
    except OSError as e:
        raise GeodiagError(f"{p} cannot be read as an allocation file ({e.strerror or e}).") from None
    needed = ("rule", "shapes", "rank_pattern", "alpha_pattern")
    if not isinstance(data, dict) or any(k not in data for k in needed):
        raise GeodiagError(f"{p} is not an allocation file: it needs {', '.join(needed)} (`geodiag allocate` "
                           "writes them).")
    if data["rule"] not in RULES:
        raise GeodiagError(f"{p} names the rule {data['rule']!r}; allocation files hold one of {', '.join(RULES)}.")
    shapes = {m: _shape(p, m, v) for m, v in _mapping(p, "shapes", data["shapes"]).items()}
    ranks = {m: _whole(p, f"rank of {m}", v) for m, v in _mapping(p, "rank_pattern", data["rank_pattern"]).items()}
    if set(ranks) - set(shapes) or not ranks:
        raise GeodiagError(f"{p} has ranks for modules without a shape; write it again with `geodiag allocate`.")
    alphas = {m: _positive(p, f"alpha of {m}", v)
              for m, v in _mapping(p, "alpha_pattern", data["alpha_pattern"]).items()}
    blocks = {m: _whole(p, f"blocks of {m}", v) for m, v in _mapping(p, "blocks", data.get("blocks", {})).items()}
    for m, n in blocks.items():
        if m in shapes and (shapes[m][0] % n or shapes[m][1] % n):
            raise GeodiagError(f"{p} splits {m} ({shapes[m][0]}x{shapes[m][1]}) into {n} blocks, which do not tile "
                               "it.")
    return AllocationFile(p, data["rule"], str(data.get("model", "another model")), _whole(p, "r", data.get("r", 8)),
                          shapes, ranks, alphas, blocks)


def _mapping(p: Path, key: str, value) -> dict:
    if not isinstance(value, dict):
        raise GeodiagError(f"{p} is not an allocation file: {key} must map module names to values.")
    return value


def _shape(p: Path, module: str, value) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise GeodiagError(f"{p} gives {module} the shape {value!r}; a shape is [d_out, d_in].")
    return _whole(p, f"shape of {module}", value[0]), _whole(p, f"shape of {module}", value[1])


def _whole(p: Path, what: str, value) -> int:
    """A positive whole number (JSON 8 or 8.0), or one sentence naming the bad value."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value != int(value) or value < 1:
        raise GeodiagError(f"{p} gives the {what} as {value!r}; it must be a positive whole number.")
    return int(value)


def _positive(p: Path, what: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise GeodiagError(f"{p} gives the {what} as {value!r}; it must be a positive number.")
    return float(value)
