"""Adaptation methods, one folder each (as peft lays out its tuners): `<method>/config.py` (torch-free
options and the `MethodSpec` that registers it: what the rest of the code asks about the method, such as its
allocation rule, FSDP support and how it is sized to a budget) and
`<method>/model.py` (the adapter). Adding a method is a new folder plus one import line below. This package
imports no torch, so the dashboard lists every method's options in-process; `build` imports a method's adapter
code when it is first built."""

from geodiag.methods import (  # noqa: F401 - each registers
    adalora,
    dora,
    eva,
    full,
    gelora,
    lora,
    lora_gid,
    manifold,
    ralora,
    ruled,  # noqa: F401 - last: LoRA for each spectral rule no method above trains
)
from geodiag.methods.config import MethodConfig
from geodiag.methods.context import BuildContext, Measurements
from geodiag.methods.registry import (
    METHODS,
    MethodSpec,
    analysis_of,
    build,
    get_method,
    register,
)

__all__ = ["METHODS", "BuildContext", "Measurements", "MethodConfig", "MethodSpec", "analysis_of", "build",
           "get_method", "register"]
