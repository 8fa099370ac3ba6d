"""An allocation as metric rows: alloc/<method> (rank per block) with its blocks, equivalent rank and
parameter count per module, so an analysis's planned allocation and a run's used one compare in the store."""

from __future__ import annotations

from collections.abc import Sequence

from geodiag.allocation.rules import Allocation
from geodiag.names import allocation
from geodiag.records import row


def allocation_rows(method: str, allocations: Sequence[Allocation]) -> list[dict]:
    rows = []
    for a in allocations:
        where = {"module": a.module, "layer": a.layer, "module_type": a.module_type}
        rows += [row(0, 0.0, allocation(method), a.rank, **where),
                 row(0, 0.0, allocation(method, "blocks"), a.blocks, **where),
                 row(0, 0.0, allocation(method, "equivalent_rank"), a.equivalent_rank, **where),
                 row(0, 0.0, allocation(method, "params"), a.params, **where)]
    return rows
