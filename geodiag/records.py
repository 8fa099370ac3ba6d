"""The shape of one metric row, as every recorder (collectors, analyses, the trainer) builds it and the store's
`Writer.append` takes it: the store's one long-format metrics table has these columns, plus run_id. A
torch-free leaf."""

from __future__ import annotations


def row(step: int, wall: float, name: str, value: float, *, module: str | None = None, layer: int | None = None,
        module_type: str | None = None, idx: int | None = None) -> dict:
    return {"step": step, "wall_time": wall, "name": name, "module": module, "layer": layer,
            "module_type": module_type, "idx": idx, "value": float(value)}
