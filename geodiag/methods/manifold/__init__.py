"""ManifoldLoRA: gated adaptive-rank adapters plus circuit manifold probes (ManifoldLoRA §3)."""

from geodiag.methods.manifold.config import REGISTERED, ManifoldConfig

__all__ = ["REGISTERED", "ManifoldConfig"]
