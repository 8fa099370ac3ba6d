"""From diagnostics to decisions, torch-free: the vectors a stored analysis hands the allocation lab, the outcome
of each run (accuracy, parameters, geometry summaries) and the statistics that compare methods over seeds."""

from geodiag.lab.analyses import StoredAnalysis, analysis_runs, compare_plans, plan_frame, stored_analysis
from geodiag.lab.outcomes import SUMMARIES, outcomes, sweep_run_ids
from geodiag.lab.stats import paired_differences, pareto_front, per_method, spearman, t_interval

__all__ = ["SUMMARIES", "StoredAnalysis", "analysis_runs", "compare_plans", "outcomes", "paired_differences",
           "pareto_front", "per_method", "plan_frame", "spearman", "stored_analysis", "sweep_run_ids", "t_interval"]
