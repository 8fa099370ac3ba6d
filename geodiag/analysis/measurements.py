"""What allocation-driven methods are handed while they are built: GIDs and importances, or an ID profile,
read from a stored analysis run or measured on the training data first. The trainer builds one and passes it
in the method's BuildContext, so a method neither opens the store nor runs an analysis pass itself."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import torch
from torch import nn

from geodiag.allocation import Vectors
from geodiag.analysis.passes import gradient_pass, hidden_state_pass
from geodiag.analysis.spectra import module_spectrum, spectra_vectors
from geodiag.errors import GeodiagError
from geodiag.models import linear_modules
from geodiag.names import ESD_ALPHA, ESD_SPIKES, ESD_STABLE_RANK, GID, IMPORTANCE, TWONN
from geodiag.store import Reader


class StoredOrMeasured:
    def __init__(self, model: nn.Module, store: str | None, batches: Callable[[], Iterator[dict[str, torch.Tensor]]],
                 *, progress: bool = False):
        self.model = model  # the base model, before any adapter is attached
        self.store = store
        self.batches = batches  # a fresh stream of training batches on the model's device
        self.progress = progress

    def gids(self, targets: list[str], from_analysis: str | None, batches: int) -> tuple[dict[str, float],
                                                                                           dict[str, float]]:
        """GID (RaLoRA Eq. 3) and importance (RaLoRA Eq. 5) per target module."""
        if from_analysis:
            reader = self._analysis(from_analysis, "gid")
            return _by_module(reader, from_analysis, GID), _by_module(reader, from_analysis, IMPORTANCE)
        stats = gradient_pass(self.model, itertools.islice(self.batches(), batches), targets, total=batches,
                               progress=self.progress)
        return {s.module: s.erank for s in stats}, {s.module: s.importance for s in stats}

    def id_profile(self, from_analysis: str | None, tokens: int) -> list[float]:
        """TwoNN intrinsic dimension of hidden_states[0..L] (GeLoRA)."""
        if from_analysis:
            reader = self._analysis(from_analysis, "id")
            return reader.metric(from_analysis, TWONN).sort_values("layer")["value"].tolist()
        return [g.twonn for g in hidden_state_pass(self.model, self.batches(), tokens, progress=self.progress)]

    def spectra(self, targets: list[str], from_analysis: str | None) -> Vectors:
        """The pretrained spectra per target module, as `geodiag analyze spectra` records them (no data needed)."""
        if from_analysis:
            reader = self._analysis(from_analysis, "spectra")
            return Vectors(alpha=_by_module(reader, from_analysis, ESD_ALPHA),
                           spikes=_by_module(reader, from_analysis, ESD_SPIKES),
                           stable_rank=_by_module(reader, from_analysis, ESD_STABLE_RANK))
        linears = linear_modules(self.model)
        return spectra_vectors([module_spectrum(t, linears[t].weight.detach().to("cpu").double().numpy())
                                for t in targets])

    def _analysis(self, run_id: str, kind: str) -> Reader:
        if not self.store:
            raise GeodiagError("from_analysis needs the store that holds that analysis run.")
        reader = Reader(self.store)
        run = reader.run(run_id)
        if run["kind"] != "analysis" or run["method"] != kind:
            raise GeodiagError(f"Run {run_id} is a {run['kind']} run of {run['method']}, not a `geodiag analyze "
                               f"{kind}` run.")
        return reader


def _by_module(reader: Reader, run_id: str, name: str) -> dict[str, float]:
    return reader.metric(run_id, name).set_index("module")["value"].to_dict()
