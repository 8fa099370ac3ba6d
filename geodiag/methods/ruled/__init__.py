"""LoRA whose ranks come from a registered allocation rule that has no method of its own (the spectral rules:
lora-alpha, lora-alpha-share, lora-stable-rank): peft LoRA with the rule's rank_pattern."""

from geodiag.methods.ruled.config import RuledLoraConfig, register_rule_methods

__all__ = ["RuledLoraConfig", "register_rule_methods"]
