"""What a method may be handed while it is built, beyond the model: the run's length and, for the
allocation-driven methods, a source of measurements (GIDs, importances, intrinsic dimensions).

A method never opens the store nor runs a sweep itself: the trainer hands it a `Measurements` (in
practice `geodiag.analysis.StoredOrMeasured`, which reads a stored analysis run or measures on the training
data first). Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from geodiag.allocation import AllocationFile, Vectors
from geodiag.errors import GeodiagError


class Measurements(Protocol):
    def gids(self, targets: list[str], from_analysis: str | None, batches: int) -> tuple[dict[str, float],
                                                                                           dict[str, float]]:
        """GID (RaLoRA Eq. 3) and importance (RaLoRA Eq. 5) per target module."""

    def id_profile(self, from_analysis: str | None, tokens: int) -> list[float]:
        """TwoNN intrinsic dimension of hidden_states[0..L] (GeLoRA)."""

    def spectra(self, targets: list[str], from_analysis: str | None) -> Vectors:
        """The pretrained weights' power-law alpha, MP spike count and stable rank per target module."""


@dataclass
class BuildContext:
    total_steps: int = 1
    measurements: Measurements | None = None
    # training batches on the model's device (its own seed, so the training stream is unchanged), for a method
    # whose initialisation reads data (EVA); a progress bar while it does if `progress`
    batches: Callable[[], Iterator[dict]] | None = None
    progress: bool = False
    # `geodiag train --allocation FILE.json`: the ranks (and blocks, alphas) to train, checked against the model
    allocation: AllocationFile | None = None

    def require_batches(self, what: str) -> Callable[[], Iterator[dict]]:
        if self.batches is None:
            raise GeodiagError(f"This method needs {what}: train it with `geodiag train`, which hands it batches of "
                               "the training data.")
        return self.batches

    def require_measurements(self, what: str, analysis: str) -> Measurements:
        if self.measurements is None:
            raise GeodiagError(f"This method needs {what}: pass from_analysis=RUN (a `geodiag analyze {analysis}` "
                               "run) or train it with `geodiag train`, which measures them first.")
        return self.measurements
