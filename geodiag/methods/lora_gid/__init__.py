"""LoRA+GID: peft LoRA whose rank per module is its rounded gradient intrinsic dimensionality."""

from geodiag.methods.lora_gid.config import REGISTERED, LoraGidConfig

__all__ = ["REGISTERED", "LoraGidConfig"]
