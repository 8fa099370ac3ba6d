"""RaLoRA and RaLoRA-Pro: block-diagonal LoRA whose blocks per module follow the gradient intrinsic
dimensionality (RaLoRA §3.3-3.4)."""

from geodiag.methods.ralora.config import REGISTERED, RaLoraConfig, RaLoraProConfig

__all__ = ["REGISTERED", "RaLoraConfig", "RaLoraProConfig"]
