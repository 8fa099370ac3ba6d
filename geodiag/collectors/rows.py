"""What a run records once, before training: the allocation an allocation-driven method was built with,
the GIDs behind it, and its trainable-parameter count beside LoRA's at the reference rank."""

from __future__ import annotations

from geodiag.allocation import allocation_rows
from geodiag.methods.base import Adapted
from geodiag.models import layer_index, module_type
from geodiag.names import GID, PARAMS_LORA_REFERENCE, PARAMS_TRAINABLE
from geodiag.records import row


def initial_rows(adapted: Adapted) -> list[dict]:
    record = adapted.allocation
    if record is None:
        return []
    rows = allocation_rows(record.method, record.allocations)
    rows += [row(0, 0.0, GID, g, module=m, layer=layer_index(m), module_type=module_type(m))
             for m, g in record.gids.items()]
    lora = sum(record.r_ref * (a.params // a.rank) for a in record.allocations)  # r_ref (d_in + d_out) per module
    return rows + [row(0, 0.0, PARAMS_TRAINABLE, sum(a.params for a in record.allocations)),
                   row(0, 0.0, PARAMS_LORA_REFERENCE, lora)]
