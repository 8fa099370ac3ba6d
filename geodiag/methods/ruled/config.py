"""Methods made from rules: every registered allocation rule that reads the pretrained spectra and that no method
folder trains gets `lora-<rule>`, peft LoRA with the rule's ranks, sized to a budget through the rule's own budget
scale. A new spectral rule is therefore trainable, sweepable and budget-matched with no method code. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from geodiag.allocation import ROUNDINGS, RULES, Settings, plan
from geodiag.allocation.budget import Geometry, Sized, by_scale
from geodiag.errors import GeodiagError
from geodiag.methods.lora.config import AllocatedLoraConfig
from geodiag.methods.registry import METHODS, MethodSpec, register
from geodiag.options import option


@dataclass
class RuledLoraConfig(AllocatedLoraConfig):
    KIND: ClassVar[str] = "a rule's LoRA method"
    RULE: ClassVar[str] = ""  # set on each rule's own subclass

    rule_scale: float = option(1.0, "scale on the rule's budget (a budgeted sweep sets it)")
    rank_rounding: str = option("round", "rank rounding: round, ceil or floor", choices=ROUNDINGS, group="advanced")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.require(self.rule_scale > 0, "rule_scale", "positive")


def sizer(rule: str):
    """The budget scale whose allocation under the rule comes nearest the target."""

    def size(target: int, geo: Geometry) -> Sized | None:
        def count(scale: float) -> int:
            return plan(Settings(rule, budget_scale=scale), geo.vectors, geo.shapes).params

        try:
            count(1.0)
        except GeodiagError:  # the geometry has no spectra for these modules
            return None
        return by_scale(target, count, 1.0, "rule_scale")

    return size


def register_rule_methods() -> list[str]:
    """Register lora-<rule> for every spectral rule no method trains yet; the names registered."""
    trained = {spec.rule for spec in METHODS.values() if spec.rule}
    added = []
    for rule in (r for r in RULES.values() if r.analysis == "spectra" and r.name not in trained):
        config = dataclass(type(f"Lora_{rule.name.replace('-', '_')}_Config", (RuledLoraConfig,),
                                {"KIND": f"the lora-{rule.name} method", "RULE": rule.name,
                                 "__annotations__": {"KIND": ClassVar[str], "RULE": ClassVar[str]}}))
        register(MethodSpec(f"lora-{rule.name}", config, "geodiag.methods.ruled.model",
                            f"LoRA with the {rule.name} rule's ranks ({rule.summary})", sizer(rule.name),
                            rule=rule.name, fsdp=True))
        added.append(f"lora-{rule.name}")
    return added


REGISTERED = register_rule_methods()
