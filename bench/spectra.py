"""The pretrained weights' spectra: `geodiag analyze spectra`'s measurement (geodiag.analysis.module_spectrum) vs
WeightWatcher 0.7.7's `analyze(mp_fit=True)` on the same model, side by side, and how often they agree (alpha
within 0.02, stable rank within 1%, spike count within one) on the attention and MLP projections.

WeightWatcher also measures the embedding (and the head when it is not tied): it is timed as a whole, as a user
runs it, and its time per module is reported beside ours for the same modules."""

from __future__ import annotations

import logging
import time
import warnings

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def bench_spectra(model_name: str = "smollm2") -> dict:
    from geodiag.analysis import module_spectrum
    from geodiag.models import linear_modules, load_model, resolve_targets

    model = load_model(model_name, seed=0).model
    linears = linear_modules(model)
    names = resolve_targets(model, PROJECTIONS)
    t0 = time.perf_counter()
    ours = {n: module_spectrum(n, linears[n].weight.detach().double().numpy()) for n in names}
    ours_s = time.perf_counter() - t0
    try:
        import weightwatcher
    except ImportError:
        return {"model": model_name, "modules": len(names), "ours_s": ours_s, "weightwatcher": None}
    logging.disable(logging.WARNING)  # WeightWatcher logs every layer at INFO and warns on small ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        details = weightwatcher.WeightWatcher(model=model).analyze(mp_fit=True).set_index("longname")
        ww_s = time.perf_counter() - t0
    logging.disable(logging.NOTSET)
    return {"model": model_name, "modules": len(names), "ours_s": ours_s, "weightwatcher": weightwatcher.__version__,
            "ww_s": ww_s, "ww_modules": len(details), "ratio": ww_s / ours_s,
            "ratio_per_module": (ww_s / len(details)) / (ours_s / len(names)), **agreement(ours, details)}


def agreement(ours: dict, details) -> dict:
    """Share of modules where each quantity agrees within the issue's tolerance, and the largest gaps."""
    gaps = {"alpha": [], "stable_rank": [], "spikes": []}
    for name, s in ours.items():
        ref = details.loc[name]
        gaps["alpha"].append(abs(s.tail.alpha - float(ref["alpha"])))
        gaps["stable_rank"].append(abs(s.stable_rank / float(ref["stable_rank"]) - 1))
        gaps["spikes"].append(abs(s.bulk.spikes - int(ref["num_spikes"])))
    tolerance = {"alpha": 0.02, "stable_rank": 0.01, "spikes": 1}
    return {**{f"{k}_agree": sum(g <= tolerance[k] for g in v) / len(v) for k, v in gaps.items()},
            **{f"{k}_max_gap": max(v) for k, v in gaps.items()}}
