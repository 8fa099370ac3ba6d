"""EVA through peft: LoRA whose ranks and initial A come from an SVD of each layer's input activations."""

from geodiag.methods.eva.config import REGISTERED, EvaConfig

__all__ = ["REGISTERED", "EvaConfig"]
