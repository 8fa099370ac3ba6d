"""Rank-allocation analyses: how much rank does each layer need? GID sweeps (RaLoRA), intrinsic-dimension
profiles (GeLoRA), the allocations they imply, and what methods are handed while they are built."""

from geodiag.analysis.correlation import gid_fisher_correlations
from geodiag.analysis.measurements import StoredOrMeasured
from geodiag.analysis.run import analyze_gid, analyze_id
from geodiag.analysis.sweeps import GradientStats, LayerGeometry, gradient_sweep, hidden_state_sweep

__all__ = ["GradientStats", "LayerGeometry", "StoredOrMeasured", "analyze_gid", "analyze_id",
           "gid_fisher_correlations", "gradient_sweep", "hidden_state_sweep"]
