"""AdaLoRA through peft: SVD-shaped adapters whose ranks are pruned by importance during training."""

from geodiag.methods.adalora.config import REGISTERED, AdaLoraConfig

__all__ = ["REGISTERED", "AdaLoraConfig"]
