"""From diagnostics to decisions, torch-free: the vectors a stored analysis hands the allocation lab, the outcome
of each run (accuracy, parameters, geometry summaries) and the statistics that compare methods over seeds."""

from geodiag.lab.analyses import StoredAnalysis, analysis_runs, compare_plans, plan_frame, stored_analysis
from geodiag.lab.compare import METHOD, Estimate, holm, two_way, verdict
from geodiag.lab.outcomes import SUMMARIES, SweepRows, outcomes, sweep_of, sweep_rows, sweep_run_ids
from geodiag.lab.results import KEYS, edge_sentence, power_sentence, verdicts
from geodiag.lab.selection import Choice, choose, final_runs, selected_rates, sweep_table
from geodiag.lab.stats import paired_differences, pareto_front, per_method, spearman, t_interval

__all__ = ["KEYS", "METHOD", "SUMMARIES", "Choice", "Estimate", "StoredAnalysis", "SweepRows", "analysis_runs",
           "choose", "compare_plans", "edge_sentence", "final_runs", "holm", "outcomes", "paired_differences",
           "pareto_front", "per_method", "plan_frame", "power_sentence", "selected_rates", "spearman",
           "stored_analysis", "sweep_of", "sweep_rows", "sweep_run_ids", "sweep_table", "t_interval", "two_way",
           "verdict", "verdicts"]
