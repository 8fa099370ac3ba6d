"""Rank allocations: pure, torch-free rules (RaLoRA, RaLoRA-Pro, LoRA+GID, GeLoRA; the spectral alpha, alpha-share
and stable-rank), each registered as one `Rule` object, and their metric rows. Methods size their adapters with
them, analyses record what they imply, figures redraw them. A new rule is a module that registers a `Rule`,
imported below (or, outside the package, named in GEODIAG_PLUGINS)."""

from geodiag.allocation import spectral  # noqa: F401 - registers the spectral rules
from geodiag.allocation.files import AllocationFile, plan_json, read_allocation
from geodiag.allocation.presets import PRESETS, Plan, Preset, Settings, Vectors, plan
from geodiag.allocation.records import allocation_rows
from geodiag.allocation.registry import ANALYSES, RULES, Constant, Rule, get_rule, register_rule, rules_reading
from geodiag.allocation.rules import (
    ROUNDINGS,
    Allocation,
    ModuleShape,
    gelora,
    gelora_ranks,
    lora_gid,
    lora_params,
    ralora_blocks,
)

# isort: split
from geodiag.allocation import plugins  # noqa: F401, E402 - last: GEODIAG_PLUGINS rules, after the built-in ones

__all__ = ["ANALYSES", "PRESETS", "ROUNDINGS", "RULES", "Allocation", "AllocationFile", "Constant", "ModuleShape",
           "Plan", "Preset", "Rule", "Settings", "Vectors", "allocation_rows", "gelora", "gelora_ranks", "get_rule",
           "lora_gid", "lora_params", "plan", "plan_json", "ralora_blocks", "read_allocation",
           "register_rule", "rules_reading"]
