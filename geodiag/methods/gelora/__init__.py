"""GeLoRA: peft LoRA whose rank per block follows the rise of the hidden states' intrinsic dimension."""

from geodiag.methods.gelora.config import REGISTERED, GeLoraConfig

__all__ = ["REGISTERED", "GeLoraConfig"]
