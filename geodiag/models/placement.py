"""Where a model runs: the accelerate `Accelerator` for `--device` (it joins the process group under torchrun
or `accelerate launch`: nccl on CUDA, gloo on the CPU) and the dtype for `--dtype`."""

from __future__ import annotations

import torch

from geodiag.errors import GeodiagError


def start_accelerator(device: str, *, compile: bool = False):
    """An `accelerate.Accelerator` on `device` (auto, cpu or cuda), compiling what it prepares with inductor if
    asked; a sentence when CUDA is asked for and absent."""
    from accelerate import Accelerator

    if device == "cuda" and not torch.cuda.is_available():
        raise GeodiagError("device=cuda was asked for but no CUDA GPU is available; use --device cpu.")
    return Accelerator(cpu=device == "cpu" or not torch.cuda.is_available(),
                       dynamo_backend="inductor" if compile else None)


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """auto: bfloat16 on a GPU that supports it, float32 otherwise."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)
