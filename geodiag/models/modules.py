"""Finding what to adapt: the linear modules by qualified name, their layer and type, the decoder blocks."""

from __future__ import annotations

import re

from torch import nn

from geodiag.allocation import ModuleShape
from geodiag.errors import GeodiagError

_LAYER = re.compile(r"\.(?:layers|h|blocks|layer)\.(\d+)\.")
MODULE_TYPES = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate",
                "up_proj": "up", "down_proj": "down", "query": "q", "key": "k", "value": "v", "dense": "o",
                "c_attn": "qkv", "c_proj": "o", "c_fc": "up", "fc1": "up", "fc2": "down", "out_proj": "o"}


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


def module_shapes(model: nn.Module, targets: list[str]) -> list[ModuleShape]:
    """(name, d_in, d_out, layer, type) of each target module, as the allocation rules take them."""
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


def frozen_weight(model: nn.Module, name: str) -> nn.Parameter:
    """The weight of the base module `name`, also when peft wrapped it (`.base_layer`)."""
    for qual, m in model.named_modules():
        if qual == name or qual.endswith("." + name):
            return getattr(m, "base_layer", m).weight
    raise KeyError(name)
