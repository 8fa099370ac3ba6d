"""Adaptation methods, one folder each (as peft lays out its tuners): `<method>/config.py` (torch-free
options) and `<method>/model.py` (the adapter). Importing a method's package registers it; adding a method is
a new folder plus one line below. This package imports no torch, so the dashboard lists every method's
options in-process; `build` imports a method's adapter code when it is first built."""

from geodiag.methods import adalora, dora, eva, full, gelora, lora, lora_gid, manifold, ralora  # noqa: F401 - each registers
from geodiag.methods.config import MethodConfig
from geodiag.methods.context import BuildContext, Measurements
from geodiag.methods.registry import METHODS, MethodSpec, build, get_method, register

__all__ = ["METHODS", "BuildContext", "Measurements", "MethodConfig", "MethodSpec", "build", "get_method", "register"]
