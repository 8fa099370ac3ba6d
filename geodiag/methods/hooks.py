"""The shared base of adapters that ride on forward hooks (ManifoldLoRA, RaLoRA): the base model is frozen
and never modified; each adapted linear layer gets `output + adapter.delta(input)`; `remove()` detaches
every hook and leaves the untouched base model. Saved as safetensors plus a JSON file naming the method and
its config, which `load_adapter` re-attaches to a freshly loaded base model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from geodiag.errors import GeodiagError
from geodiag.methods.base import Adapted
from geodiag.methods.config import MethodConfig
from geodiag.methods.registry import get_method
from geodiag.models import linear_modules

WEIGHTS, META = "geodiag_adapter.safetensors", "geodiag_adapter.json"


def module_key(name: str) -> str:
    return name.replace(".", "__")  # ModuleDict keys cannot contain dots


class HookAdapted(Adapted):
    def __init__(self, model: nn.Module, config: MethodConfig):
        super().__init__(model, config)
        for p in model.parameters():
            p.requires_grad_(False)
        self.targets: list[str] = []
        self.adapters_ = nn.ModuleDict()
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self, name: str, adapter: nn.Module) -> None:
        """Put `adapter` (with a `delta(x)` method) on the linear layer `name`, on its weight's device. Its
        parameters keep their own dtype (float32) under a bfloat16 base model: the update is computed in
        float32 and added in the layer's dtype, as peft does for LoRA."""
        linear = linear_modules(self.model)[name]
        adapter = adapter.to(linear.weight.device)
        dtype = next(adapter.parameters()).dtype
        self.adapters_[module_key(name)] = adapter
        self.targets.append(name)

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            self.on_input(name, inputs[0])
            return output + adapter.delta(inputs[0].to(dtype)).to(output.dtype)

        self._handles.append(linear.register_forward_hook(hook))

    def adapter(self, name: str) -> nn.Module:
        return self.adapters_[module_key(name)]

    def on_input(self, name: str, x: torch.Tensor) -> None:
        """Called with each adapted layer's input (B, T, d_in) before its update is added."""

    def base_weight(self, name: str) -> torch.Tensor:
        return linear_modules(self.model)[name].weight.detach()  # untouched: the hooks add the update

    def parts(self) -> dict[str, nn.Module]:
        """The modules whose state is saved: the adapters, plus whatever a method adds (probes)."""
        return {"adapters": self.adapters_}

    def trainable(self) -> list[nn.Parameter]:
        return list(self.adapters_.parameters())

    def outside_modules(self) -> dict[str, nn.Module]:
        return self.parts()

    def meta(self) -> dict:
        """What besides the config re-creates this adapter's structure (e.g. RaLoRA's allocation)."""
        return {}

    def remove(self) -> None:
        """Detach the hooks: the model is the untouched base model again."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def save(self, directory: Path, *, main: bool = True) -> None:
        from safetensors.torch import save_file

        if not main:
            return  # hook adapters are never sharded (they are refused under FSDP)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {f"{part}.{k}": v.detach().contiguous().cpu() for part, module in self.parts().items()
                 for k, v in module.state_dict().items()}
        save_file(state, str(directory / WEIGHTS))
        meta = {"method": self.method, "config": self.config.to_dict(), **self.meta()}
        (directory / META).write_text(json.dumps(meta, indent=2))

    def load_state(self, directory: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(Path(directory) / WEIGHTS))
        for part, module in self.parts().items():
            own = {k.removeprefix(f"{part}."): v for k, v in state.items() if k.startswith(f"{part}.")}
            module.load_state_dict(own)


def load_adapter(model: nn.Module, directory: str | Path) -> HookAdapted:
    """Re-attach a saved hook adapter (ManifoldLoRA, RaLoRA, RaLoRA-Pro) to a freshly loaded base model."""
    path = Path(directory) / META
    if not path.exists():
        raise GeodiagError(f"{directory} holds no geodiag adapter ({META} is missing).")
    meta = json.loads(path.read_text())
    spec = get_method(meta["method"])
    adapted = spec.code().restore(model, spec.config.from_dict(meta["config"]), meta)
    adapted.load_state(Path(directory))
    return adapted
