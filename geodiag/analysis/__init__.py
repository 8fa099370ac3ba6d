"""Rank-allocation analyses: how much rank does each layer need? GID passes (RaLoRA), intrinsic-dimension
profiles (GeLoRA), the pretrained weights' spectra (WeightWatcher's alpha, stable rank, MP spikes), the allocations
they imply, and what methods are handed while they are built."""

from geodiag.analysis.correlation import gid_fisher_correlations
from geodiag.analysis.measurements import StoredOrMeasured
from geodiag.analysis.passes import GradientStats, LayerGeometry, gradient_pass, hidden_state_pass
from geodiag.analysis.run import analyze_gid, analyze_id
from geodiag.analysis.spectra import ModuleSpectrum, analyze_spectra, module_spectrum

__all__ = ["GradientStats", "LayerGeometry", "ModuleSpectrum", "StoredOrMeasured", "analyze_gid", "analyze_id",
           "analyze_spectra", "gid_fisher_correlations", "gradient_pass", "hidden_state_pass", "module_spectrum"]
