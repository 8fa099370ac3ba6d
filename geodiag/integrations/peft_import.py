"""`geodiag import-peft DIR`: the Delta W spectra of an existing PEFT adapter, read from its files.

Reads adapter_config.json and adapter_model.safetensors (or .bin) directly: no base model is loaded and
no dense Delta W is formed. LoRA (with rank_pattern / alpha_pattern and rsLoRA scaling) and AdaLoRA
(Delta W = B diag(E) A * alpha / r_kept) are understood.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from geodiag.collectors import adapter_rows
from geodiag.errors import GeodiagError
from geodiag.methods.base import AdapterView, FactorViews
from geodiag.models import layer_index, module_type
from geodiag.store import DEFAULT_STORE, Writer

_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>A|B|E)(?:\.weight)?$")


def read_peft_adapter(directory: str | Path) -> tuple[dict, FactorViews]:
    d = Path(directory)
    cfg_path = d / "adapter_config.json"
    if not cfg_path.exists():
        raise GeodiagError(f"{d} is not a PEFT adapter directory (no adapter_config.json); point at the folder "
                           "that save_pretrained() wrote.")
    cfg = json.loads(cfg_path.read_text())
    peft_type = str(cfg.get("peft_type", "")).upper()
    if peft_type not in ("LORA", "ADALORA"):
        raise GeodiagError(f"{d} holds a {peft_type or 'unknown'} adapter; import-peft reads LoRA and AdaLoRA.")
    tensors = _load_tensors(d)
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        m = _KEY.match(key)
        if m:
            parts.setdefault(m["module"], {})[m["part"]] = t.detach().to(torch.float64)
    if not parts:
        raise GeodiagError(f"No LoRA factors found in {d}; the weights file has no lora_A/lora_B tensors.")
    views = [_view(name, p, cfg, peft_type) for name, p in sorted(parts.items()) if "A" in p and "B" in p]
    return cfg, FactorViews("adalora" if peft_type == "ADALORA" else "lora", views)


def _load_tensors(d: Path) -> dict[str, torch.Tensor]:
    st = d / "adapter_model.safetensors"
    if st.exists():
        from safetensors.torch import load_file

        return load_file(str(st))
    binf = d / "adapter_model.bin"
    if binf.exists():
        return torch.load(binf, map_location="cpu", weights_only=True)
    raise GeodiagError(f"{d} has no adapter_model.safetensors or adapter_model.bin.")


def _view(name: str, p: dict[str, torch.Tensor], cfg: dict, peft_type: str) -> AdapterView:
    A, B = p["A"], p["B"]  # (r, d_in), (d_out, r)
    r = A.shape[0]
    alpha = _pattern(cfg.get("alpha_pattern") or {}, name, cfg.get("lora_alpha", r))
    if peft_type == "ADALORA":
        E = p["E"].reshape(-1)
        # peft saves AdaLoRA factors already cut to the kept rank and rebuilds ranknum = r from them on
        # load, so a saved adapter means scaling = alpha / (r + 1e-5), as SVDLinear computes it
        scaling = alpha / (r + 1e-5)
        return AdapterView(name, layer_index(name), module_type(name), B, A, E, scaling, rank=int((E != 0).sum()))
    scaling = alpha / (r**0.5 if cfg.get("use_rslora") else r)
    return AdapterView(name, layer_index(name), module_type(name), B, A, None, scaling)


def _pattern(pattern: dict, name: str, default):
    for key, value in pattern.items():  # peft matches pattern keys as module-name suffixes
        if name == key or name.endswith("." + key) or re.fullmatch(key, name):
            return value
    return default


def import_peft(directory: str | Path, *, base: str | None = None, store: str = DEFAULT_STORE,
                run_name: str | None = None) -> str:
    cfg, adapter = read_peft_adapter(directory)
    rows = adapter_rows(adapter, 0, 0.0)
    writer = Writer(store)
    params = sum(v.A.numel() + v.B.numel() + (0 if v.gates is None else v.gates.numel()) for v in adapter.adapters())
    run_id = writer.create_run(name=run_name or f"import-{Path(directory).name}", kind="import", method=adapter.method,
                               model=base or cfg.get("base_model_name_or_path"), config={"adapter": str(directory),
                                                                                        "peft_config": cfg},
                               trainable_params=params)
    writer.append(run_id, rows)
    writer.set_status(run_id, "finished")
    return run_id
