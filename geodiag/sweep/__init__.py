"""`geodiag sweep`: methods x seeds at an equal parameter budget. The spec (torch-free), its plan (shapes, the
shared analyses, each method sized), the runner (one process per cell, resumable through the store) and the
Slurm emitter."""

from geodiag.sweep.plan import Resolved, resolve
from geodiag.sweep.runner import Outcome, run_cells, sweep_runs
from geodiag.sweep.slurm import emit
from geodiag.sweep.spec import ALIASES, FINAL, PER_CELL, SELECT, Cell, SweepSpec, Variant, from_mapping, read_spec

__all__ = ["ALIASES", "FINAL", "PER_CELL", "SELECT", "Cell", "Outcome", "Resolved", "SweepSpec", "Variant", "emit",
           "from_mapping", "read_spec", "resolve", "run_cells", "sweep_runs"]
