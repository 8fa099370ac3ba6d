"""LoRA through peft: the baseline every allocation is compared with."""

from geodiag.methods.lora.config import REGISTERED, LoraConfig

__all__ = ["REGISTERED", "LoraConfig"]
