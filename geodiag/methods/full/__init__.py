"""Full fine-tuning of the target weights: the reference RaLoRA's GID dynamics are measured on."""

from geodiag.methods.full.config import REGISTERED, FullConfig

__all__ = ["REGISTERED", "FullConfig"]
