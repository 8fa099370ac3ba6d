"""Rank allocations: pure, torch-free rules (RaLoRA, RaLoRA-Pro, LoRA+GID, GeLoRA) and their metric rows.
Methods size their adapters with them, analyses record what they imply, figures redraw them."""

from geodiag.allocation.files import AllocationFile, plan_json, read_allocation
from geodiag.allocation.presets import ANALYSIS_OF, PRESETS, RULES, Plan, Preset, Settings, Vectors, plan
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

__all__ = ["ANALYSIS_OF", "PRESETS", "ROUNDINGS", "RULES", "Allocation", "AllocationFile", "ModuleShape", "Plan",
           "Preset", "Settings", "Vectors", "allocation_rows", "gelora", "gelora_ranks", "lora_gid", "lora_params",
           "plan", "plan_json", "ralora", "ralora_blocks", "ralora_pro", "ralora_pro_ranks", "read_allocation"]
