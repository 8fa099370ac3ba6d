"""`geodiag analyze spectra`: the pretrained weights' empirical spectral densities, per target module, as
WeightWatcher measures them (power-law alpha of the tail, stable rank, spikes above the Marchenko-Pastur bulk), for
the spectral allocation rules (AlphaLoRA, Adaptive-Rank-LoRA, stable-rank shares). No data and no forward pass:
only the weights, read in float64."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from geodiag.allocation import Vectors
from geodiag.analysis.run import layer_subset, progress_recorder, rule_rows
from geodiag.config import AnalyzeConfig
from geodiag.errors import GeodiagError
from geodiag.metrics.esd import MPBulk, PowerLawTail, esd, mp_bulk, powerlaw_tail
from geodiag.models import layer_index, linear_modules, load_model, module_shapes, module_type, resolve_targets
from geodiag.names import (
    ESD_ALPHA,
    ESD_ALPHA_SIGMA,
    ESD_BULK_MAX,
    ESD_D_IN,
    ESD_D_OUT,
    ESD_EIGENVALUE,
    ESD_KS,
    ESD_MP_SIGMA,
    ESD_SPIKES,
    ESD_STABLE_RANK,
    ESD_TAIL_N,
    ESD_XMIN,
)
from geodiag.records import row
from geodiag.store import Writer

FLUSH_EVERY = 16  # modules measured between two store appends


@dataclass(frozen=True)
class ModuleSpectrum:
    """One weight matrix's ESD and what WeightWatcher reads from it."""

    module: str
    d_out: int
    d_in: int
    evals: np.ndarray  # eigenvalues of W^T W, ascending
    tail: PowerLawTail
    bulk: MPBulk | None  # None for a zero matrix
    stable_rank: float


def module_spectrum(name: str, W: np.ndarray) -> ModuleSpectrum:
    """Every spectral quantity of one (d_out, d_in) weight matrix."""
    evals = esd(W)
    top = float(evals[-1]) if evals.size else 0.0
    bulk = mp_bulk(evals, *W.shape) if top > 0 else None
    return ModuleSpectrum(name, W.shape[0], W.shape[1], evals, powerlaw_tail(evals), bulk,
                          float(evals.sum()) / top if top > 0 else math.nan)


def spectrum_rows(s: ModuleSpectrum) -> list[dict]:
    """The metrics rows of one module: its eigenvalues (idx 0 the largest), the tail fit, the bulk, the shape."""
    where = {"module": s.module, "layer": layer_index(s.module), "module_type": module_type(s.module)}
    values = {ESD_ALPHA: s.tail.alpha, ESD_XMIN: s.tail.xmin, ESD_KS: s.tail.ks_distance,
              ESD_ALPHA_SIGMA: s.tail.sigma, ESD_TAIL_N: s.tail.n_tail, ESD_STABLE_RANK: s.stable_rank,
              ESD_D_OUT: s.d_out, ESD_D_IN: s.d_in}
    if s.bulk is not None:
        values |= {ESD_SPIKES: s.bulk.spikes, ESD_MP_SIGMA: s.bulk.sigma, ESD_BULK_MAX: s.bulk.bulk_max}
    rows = [row(0, 0.0, name, float(v), **where) for name, v in values.items()]
    return rows + [row(0, 0.0, ESD_EIGENVALUE, float(v), idx=k, **where) for k, v in enumerate(s.evals[::-1])]


def spectra_vectors(measured: list[ModuleSpectrum]) -> Vectors:
    """What the spectral rules read from measured spectra: alpha, spike count (NaN for a zero matrix) and stable
    rank per module."""
    return Vectors(alpha={s.module: s.tail.alpha for s in measured},
                   spikes={s.module: float(s.bulk.spikes) if s.bulk else math.nan for s in measured},
                   stable_rank={s.module: s.stable_rank for s in measured})


def allocation_rows(cfg: AnalyzeConfig, measured: list[ModuleSpectrum], shapes) -> list[dict]:
    """What every spectral rule allocates from these spectra (the atlas draws them beside the GID and ID rules);
    none when a module has no usable alpha (a matrix too small for the tail fit)."""
    try:
        return rule_rows(cfg, "spectra", spectra_vectors(measured), shapes)
    except GeodiagError:
        return []


def analyze_spectra(cfg: AnalyzeConfig, *, progress: bool = True) -> str:
    """Load the model on the CPU, then each target module's spectrum into one analysis run (written module by
    module, so a cancelled analysis keeps what it measured)."""
    lm = load_model(cfg.model, trust_remote_code=cfg.trust_remote_code, seed=cfg.seed)
    linears = linear_modules(lm.model)
    names = layer_subset(resolve_targets(lm.model, cfg.target_modules), cfg.layer_indices())
    writer = Writer(cfg.store)
    config = {**cfg.to_dict(), "modules": [[n, linears[n].out_features, linears[n].in_features, layer_index(n),
                                            module_type(n)] for n in names]}
    run_id = writer.create_run(name=cfg.run_name or f"spectra-{cfg.model}", kind="analysis", method="spectra",
                               model=cfg.model, config=config,
                               total_params=sum(p.numel() for p in lm.model.parameters()))
    record, rows, measured = progress_recorder(writer, run_id, len(names)), [], []
    with writer.finishing(run_id):
        for done, name in enumerate(tqdm(names, desc="spectra", unit="module", disable=not progress), start=1):
            W = linears[name].weight.detach().to("cpu").double().numpy()  # (d_out, d_in)
            measured.append(module_spectrum(name, W))
            rows += spectrum_rows(measured[-1])
            if done % FLUSH_EVERY == 0 or done == len(names):  # an append costs ~0.1 s: not one per module
                writer.append(run_id, rows)
                rows = []
            record(done)
        writer.append(run_id, allocation_rows(cfg, measured, module_shapes(lm.model, names)))
    if progress:
        tqdm.write(f"{len(names)} modules of {cfg.model}", file=sys.stderr)
    return run_id
