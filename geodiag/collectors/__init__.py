"""Collectors: turn a model's state into metric rows at record time (model -> collectors -> metrics -> store).

spectra (Delta W from the factors, gates, allocated ranks), activations (participation ratio on the record
batch), probes (ManifoldLoRA's probe metrics), subspace (principal angles), gradients (GID dynamics) and
rows (what a run records once: its allocation and parameter budget).
"""

from geodiag.collectors.activations import activation_rows
from geodiag.collectors.gradients import gid_rows
from geodiag.collectors.intruders import Intruders
from geodiag.collectors.probes import probe_rows
from geodiag.collectors.rows import initial_rows
from geodiag.collectors.spectra import adapter_rows, view_rows
from geodiag.collectors.subspace import base_gradients, subspace_rows

__all__ = ["Intruders", "activation_rows", "adapter_rows", "base_gradients", "gid_rows", "initial_rows", "probe_rows",
           "subspace_rows", "view_rows"]
