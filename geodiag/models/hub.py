"""Any Hugging Face causal LM, by hub id or local directory; a model's own code runs only when asked."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from geodiag.errors import GeodiagError


def load_hf(spec: str, trust_remote_code: bool, dtype: torch.dtype) -> tuple[nn.Module, object, str]:
    """(model, tokenizer, source); every failure is one sentence saying what to do."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec.startswith((".", "/", "~")) and not Path(spec).expanduser().exists():
        raise GeodiagError(f"There is no model directory at {spec}; give an existing path, a Hugging Face "
                           "model id, `smollm2` or `tiny`.")
    try:
        tok = AutoTokenizer.from_pretrained(spec, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(spec, dtype=dtype, trust_remote_code=trust_remote_code)
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise GeodiagError(f"The model {spec} needs its own code; rerun with --trust-remote-code if you "
                               "trust its source.") from None
        raise GeodiagError(f"Could not load the model {spec}: {str(e).splitlines()[0]}") from None
    except OSError as e:
        raise GeodiagError(f"Could not load the model {spec} ({str(e).splitlines()[0]}); check the id or "
                           "path, or use `smollm2` offline.") from None
    return model, tok, spec
