"""What the methods that go through peft share: wrapping a model, peft's save format, reading the LoRA
layers' factors, and refusing ranks a module cannot hold."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from geodiag.errors import GeodiagError
from geodiag.methods.base import Adapted, whole
from geodiag.models import linear_modules

_PREFIX = "base_model.model."


def wrap(model: nn.Module, peft_config) -> nn.Module:
    """get_peft_model, without the deprecation warning peft's own call into transformers raises."""
    from peft import get_peft_model

    with warnings.catch_warnings():
        # peft reads transformers' deprecated `is_gradient_checkpointing`: nothing a geodiag user can act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, peft_config)


def check_rank(model: nn.Module, targets: list[str], r: int, field: str) -> None:
    """A rank above min(d_out, d_in) adds parameters that cannot add rank: refuse it by name."""
    linears = linear_modules(model)
    for name in targets:
        d_out, d_in = linears[name].out_features, linears[name].in_features
        if r > min(d_out, d_in):
            raise GeodiagError(f"{field}={r} is larger than {name} ({d_out}x{d_in}) allows; choose {field} <= "
                               f"{min(d_out, d_in)} or leave that module out of target_modules.")


class PeftAdapted(Adapted):
    def save(self, directory: Path, *, main: bool = True) -> None:
        """peft's format, which PeftModel.from_pretrained loads back; under FSDP the LoRA factors are gathered
        one tensor at a time (never the base weights) and handed to peft whole."""
        state = self.model.state_dict()  # shards, without communication, under FSDP
        if not any(hasattr(v, "full_tensor") for v in state.values()):
            if main:
                self.model.save_pretrained(str(directory))
            return
        whole_state = {k: whole(v) for k, v in state.items() if "lora_" in k}
        if main:
            self.model.save_pretrained(str(directory), state_dict=whole_state)

    def base_weight(self, name: str) -> torch.Tensor:
        return dict(self.lora_layers())[name].get_base_layer().weight.detach()

    def lora_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """(base module name, peft LoRA layer) of every adapted module."""
        from peft.tuners.lora import LoraLayer

        for name, m in self.model.named_modules():
            if isinstance(m, LoraLayer) and "default" in getattr(m, "lora_A", {}):
                yield name.removeprefix(_PREFIX), m
