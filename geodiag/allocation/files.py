"""An allocation as a file: what `geodiag allocate` writes and `geodiag train --allocation` reads. Keys are the
modules as the store names them (model.layers.3.self_attn.q_proj), so that
`peft.LoraConfig(r=..., rank_pattern=..., alpha_pattern=..., target_modules=...)` built from the file trains
exactly `peft_params` parameters. Torch-free."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from geodiag.allocation.presets import RULES, Plan
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
        "settings": {k: v for k, v in s.__dict__.items() if k not in ("rule", "preset")},
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
    needed = ("rule", "shapes", "rank_pattern", "alpha_pattern")
    if not isinstance(data, dict) or any(k not in data for k in needed):
        raise GeodiagError(f"{p} is not an allocation file: it needs {', '.join(needed)} (`geodiag allocate` "
                           "writes them).")
    if data["rule"] not in RULES:
        raise GeodiagError(f"{p} names the rule {data['rule']!r}; allocation files hold one of {', '.join(RULES)}.")
    ranks, shapes = data["rank_pattern"], data["shapes"]
    if set(ranks) - set(shapes) or not ranks:
        raise GeodiagError(f"{p} has ranks for modules without a shape; write it again with `geodiag allocate`.")
    return AllocationFile(p, data["rule"], str(data.get("model", "another model")), int(data.get("r", 8)),
                          {m: (int(v[0]), int(v[1])) for m, v in shapes.items()},
                          {m: int(v) for m, v in ranks.items()},
                          {m: float(v) for m, v in data["alpha_pattern"].items()},
                          {m: int(v) for m, v in data.get("blocks", {}).items()})
