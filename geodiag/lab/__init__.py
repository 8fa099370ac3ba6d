"""From diagnostics to decisions, torch-free: the vectors a stored analysis hands the allocation lab, the outcome
of each run (accuracy, parameters, geometry summaries) and the statistics that compare methods over seeds."""

from geodiag.lab.analyses import StoredAnalysis, analysis_runs, stored_analysis

__all__ = ["StoredAnalysis", "analysis_runs", "stored_analysis"]
