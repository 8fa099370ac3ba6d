"""`geodiag import-peft DIR`: the Delta W spectra of an existing PEFT adapter, read from its files; or, when
DIR holds `checkpoint-*` folders as `transformers.Trainer` writes them, the whole series as one run.

Reads adapter_config.json and adapter_model.safetensors (or .bin) directly: no dense Delta W is formed.
LoRA (with rank_pattern / alpha_pattern and rsLoRA scaling), AdaLoRA (Delta W = B diag(E) A * alpha / r_kept),
DoRA (the direction update s B A; with the base model also the magnitude/direction change) and PiSSA / OLoRA
(Delta W = s (B A - B0 A0), B0 A0 from geodiag's initial_factors.safetensors or recomputed by peft from the
base model). With the base model (`--base`), the intruder dimensions are recorded too.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import torch

from geodiag.collectors import Intruders, adapter_rows
from geodiag.errors import GeodiagError
from geodiag.methods.base import AdapterView, FactorViews, minus_initial
from geodiag.models import layer_index, module_type
from geodiag.store import DEFAULT_STORE, Writer

_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<part>A|B|E|magnitude_vector)(?:\.weight)?$")
_FROM_W = ("pissa", "olora")  # inits that take B0 A0 out of W (peft's names; "pissa_niter_16" too)
INITIAL_FACTORS = "initial_factors.safetensors"  # written by geodiag's LoRA save after PiSSA / OLoRA


def read_config(d: Path) -> dict:
    cfg_path = d / "adapter_config.json"
    if not cfg_path.exists():
        raise GeodiagError(f"{d} is not a PEFT adapter directory (no adapter_config.json); point at the folder "
                           "that save_pretrained() wrote, or at a Trainer output folder with checkpoint-* in it.")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise GeodiagError(f"{cfg_path} cannot be read as a PEFT adapter config ({e}).") from None
    if not isinstance(cfg, dict):
        raise GeodiagError(f"{cfg_path} is not a PEFT adapter config (it holds no JSON object).")
    peft_type = str(cfg.get("peft_type", "")).upper()
    if peft_type not in ("LORA", "ADALORA"):
        raise GeodiagError(f"{d} holds a {peft_type or 'unknown'} adapter; import-peft reads LoRA and AdaLoRA.")
    return cfg


def read_peft_adapter(directory: str | Path, base: torch.nn.Module | None = None) -> tuple[dict, FactorViews]:
    """The adapter's config and its factor views; with the base model, its weights for W-dependent metrics."""
    d = Path(directory)
    cfg = read_config(d)
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in _load_tensors(d).items():
        m = _KEY.match(key)
        if m:
            parts.setdefault(m["module"], {})[m["part"]] = t.detach().to(torch.float64)
    parts = {name: p for name, p in sorted(parts.items()) if "A" in p and "B" in p}
    if not parts:
        raise GeodiagError(f"No LoRA factors found in {d}; the weights file has no lora_A/lora_B tensors.")
    magnitude = _dora_magnitudes(d, cfg, parts)
    initial = _initial_factors(d, cfg, parts, base)
    views = [_view(name, p, cfg, initial.get(name)) for name, p in parts.items()]
    weights = None if base is None else _base_weights(base, list(parts))
    method = "adalora" if str(cfg["peft_type"]).upper() == "ADALORA" else "dora" if cfg.get("use_dora") else "lora"
    params = sum(t.numel() for p in parts.values() for t in p.values())
    return cfg, FactorViews(method, views, base=weights, magnitude=magnitude, params=params)


def _dora_magnitudes(d: Path, cfg: dict, parts: dict) -> dict[str, torch.Tensor]:
    if not cfg.get("use_dora"):
        return {}
    missing = [name for name, p in parts.items() if "magnitude_vector" not in p]
    if missing:
        raise GeodiagError(f"{d} is a DoRA adapter (use_dora) but has no magnitude vector for {missing[0]}"
                           f"{f' and {len(missing) - 1} more modules' if len(missing) > 1 else ''}; save it again "
                           "with peft's save_pretrained, which writes lora_magnitude_vector.")
    return {name: p["magnitude_vector"].reshape(-1) for name, p in parts.items()}


def _initial_factors(d: Path, cfg: dict, parts: dict, base: torch.nn.Module | None) -> dict[str, tuple]:
    """PiSSA / OLoRA: module -> (B0, A0), from geodiag's file, or recomputed by peft from the base model."""
    init = str(cfg.get("init_lora_weights", ""))
    if not init.startswith(_FROM_W):
        return {}
    if (d / INITIAL_FACTORS).exists():
        saved = load_weights(d / INITIAL_FACTORS)
        return {name: (saved[f"{name}.B0"].double(), saved[f"{name}.A0"].double()) for name in parts}
    if base is None:
        raise GeodiagError(f"{d} was initialised with {init}, so its update is s(BA - B0A0) and B0 A0 come from the "
                           "base weights; pass the base model with --base MODEL.")
    from peft import LoraConfig, get_peft_model

    # peft redoes its own initialisation on a copy: PiSSA rewrites W in place, the caller's base stays the original
    fresh = get_peft_model(copy.deepcopy(base), LoraConfig.from_pretrained(str(d)))
    return {name.removeprefix("base_model.model."): (m.lora_B["default"].weight.detach().double(),
                                                    m.lora_A["default"].weight.detach().double())
            for name, m in fresh.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A}


def _base_weights(base: torch.nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    from geodiag.models import linear_modules

    linears = linear_modules(base)
    unknown = [n for n in names if n not in linears]
    if unknown:
        raise GeodiagError(f"The adapter adapts {unknown[0]}, which the base model does not have; pass the base "
                           "model the adapter was trained on (--base).")
    return {n: linears[n].weight.detach() for n in names}


def _load_tensors(d: Path) -> dict[str, torch.Tensor]:
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        if (d / name).exists():
            return load_weights(d / name)
    raise GeodiagError(f"{d} has no adapter_model.safetensors or adapter_model.bin.")


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors (or, for .bin, a weights-only torch pickle) file's tensors; a truncated or corrupt file is one
    sentence, not the library's traceback."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # SafetensorError, UnpicklingError, EOFError, RuntimeError: all mean "not readable"
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise GeodiagError(f"{path} is not a readable weights file ({reason}); it may be truncated or "
                           "corrupt.") from None


def _view(name: str, p: dict[str, torch.Tensor], cfg: dict, initial: tuple | None) -> AdapterView:
    A, B = p["A"], p["B"]  # (r, d_in), (d_out, r)
    r = A.shape[0]
    alpha = _pattern(cfg.get("alpha_pattern") or {}, name, cfg.get("lora_alpha", r))
    if str(cfg.get("peft_type")).upper() == "ADALORA":
        E = p["E"].reshape(-1)
        # peft saves AdaLoRA factors already cut to the kept rank and rebuilds ranknum = r from them on
        # load, so a saved adapter means scaling = alpha / (r + 1e-5), as SVDLinear computes it
        scaling = alpha / (r + 1e-5)
        return AdapterView(name, layer_index(name), module_type(name), B, A, E, scaling, rank=int((E != 0).sum()))
    scaling = alpha / (r**0.5 if cfg.get("use_rslora") else r)
    if initial is not None:  # PiSSA / OLoRA: s (B A - B0 A0) = s [B, -B0] [A; A0]
        B, A = minus_initial(B, A, *initial)
    return AdapterView(name, layer_index(name), module_type(name), B, A, None, scaling)


def _pattern(pattern: dict, name: str, default):
    for key, value in pattern.items():  # peft matches pattern keys as module-name suffixes
        if name == key or name.endswith("." + key) or re.fullmatch(key, name):
            return value
    return default


def import_peft(directory: str | Path, *, base: str | None = None, store: str = DEFAULT_STORE,
                run_name: str | None = None, progress: bool = True) -> str:
    """One run of kind `import`: one adapter at step 0, or a Trainer's checkpoint series at its steps."""
    from geodiag.integrations.checkpoints import checkpoint_series, checkpoints_without_adapter, import_series

    series = checkpoint_series(Path(directory))
    model = _load_base(base)
    if series:
        return import_series(Path(directory), series, base=base, model=model, store=store, run_name=run_name,
                             progress=progress)
    empty = [c.name for c in checkpoints_without_adapter(Path(directory))]
    if empty:
        raise GeodiagError(f"{directory} has {', '.join(empty[:3])}{' ...' if len(empty) > 3 else ''}, but no "
                           "checkpoint holds an adapter (adapter_config.json): the Trainer's model was not a peft "
                           "model, or its checkpoints were saved without it.")
    cfg, adapter = read_peft_adapter(directory, model)
    rows = adapter_rows(adapter, 0, 0.0) + intruder_rows(adapter, 0)
    writer = Writer(store)
    run_id = writer.create_run(name=run_name or f"import-{Path(directory).name}", kind="import", method=adapter.method,
                               model=base or cfg.get("base_model_name_or_path"),
                               config={"adapter": str(directory), "peft_config": cfg},
                               trainable_params=adapter.params)
    with writer.finishing(run_id):
        writer.append(run_id, rows)
    return run_id


def _load_base(base: str | None) -> torch.nn.Module | None:
    if base is None:
        return None
    from geodiag.models import load_model

    return load_model(base).model


def intruder_rows(adapter: FactorViews, step: int) -> list[dict]:
    """Intruder dimensions of an imported adapter against its base model's weights (none without them)."""
    if adapter.base is None:
        return []
    collector = Intruders()
    collector.start(adapter)  # W's singular vectors: the base model as loaded is the pre-trained weight
    return collector.rows(adapter, step, 0.0)

