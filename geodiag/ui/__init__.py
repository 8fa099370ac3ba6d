"""Streamlit glue shared by the pages: cached store reads (data), the shared selection (selection), one
figure section with its export controls (sections), config forms (forms), the page list (pages) and
launching runs (launch). Imports neither torch, nor models, nor methods."""

from geodiag.ui.data import (
    LIVE_TTL_S,
    load_figure_data,
    load_metrics,
    load_runs,
    load_verdicts,
    run_summary,
    runs_with,
    selected_rates,
)
from geodiag.ui.pages import PAGES, PageSpec
from geodiag.ui.sections import figure_section, runs_with_data, step_picker, stepped_figure
from geodiag.ui.selection import (
    FILTERS,
    filtered,
    labels,
    page,
    run_record,
    runs_or_stop,
    selected,
    store_path,
    through_entry,
)

__all__ = ["FILTERS", "LIVE_TTL_S", "PAGES", "PageSpec", "figure_section", "filtered", "labels", "load_figure_data",
           "load_metrics", "load_runs", "load_verdicts", "page", "run_record", "run_summary", "runs_or_stop",
           "runs_with", "runs_with_data", "selected", "selected_rates", "step_picker", "stepped_figure", "store_path",
           "through_entry"]
