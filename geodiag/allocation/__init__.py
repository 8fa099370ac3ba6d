"""Rank allocations: pure, torch-free rules (RaLoRA, RaLoRA-Pro, LoRA+GID, GeLoRA) and their metric rows.
Methods size their adapters with them, analyses record what they imply, figures redraw them."""

from geodiag.allocation.records import allocation_rows
from geodiag.allocation.rules import (
    ROUNDINGS,
    Allocation,
    ModuleShape,
    gelora,
    gelora_ranks,
    lora_gid,
    lora_params,
    ralora,
    ralora_blocks,
    ralora_pro,
    ralora_pro_ranks,
)

__all__ = ["ROUNDINGS", "Allocation", "ModuleShape", "allocation_rows", "gelora", "gelora_ranks", "lora_gid",
           "lora_params", "ralora", "ralora_blocks", "ralora_pro", "ralora_pro_ranks"]
