"""`load_model(spec)`: the embedded SmolLM2 (`smollm2`), the tiny test model (`tiny`), or any Hugging Face
causal LM by id or directory, with its tokenizer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from geodiag.models.embedded import EMBEDDED, load_embedded, load_tokenizer_embedded
from geodiag.models.hub import load_hf
from geodiag.models.tiny import TINY, tiny_model


@dataclass
class LoadedModel:
    model: nn.Module
    tokenizer: object
    name: str  # what the user asked for (smollm2, tiny, an id or a path)
    source: str  # where the weights came from


def load_model(spec: str = EMBEDDED, *, trust_remote_code: bool = False, dtype: torch.dtype = torch.float32,
               seed: int = 0) -> LoadedModel:
    """Load a causal LM and its tokenizer; every failure is a GeodiagError saying what to do."""
    if spec == EMBEDDED:
        model, tok, src = load_embedded(dtype)
    elif spec == TINY:
        tok = load_tokenizer_embedded()
        model, src = tiny_model(len(tok), seed=seed).to(dtype), "random init (tiny Llama config)"
    else:
        model, tok, src = load_hf(spec, trust_remote_code, dtype)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.use_cache = False
    return LoadedModel(model, tok, spec, src)
