"""DoRA through peft (`use_dora=True`): LoRA's direction update with a trained magnitude per output row."""

from geodiag.methods.dora.config import REGISTERED, DoraConfig

__all__ = ["REGISTERED", "DoraConfig"]
