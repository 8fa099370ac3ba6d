"""Figure builders: pure DataFrame -> plotly Figure functions, one per paper figure, shared by the dashboard
pages and `geodiag export`. The registry says which metrics each figure reads, how much of the store it
spans (one run, or every run of the run's model for the atlas) and which command produces its data.
No torch here: pages import this module.
"""

from geodiag.figures.export import (
    FORMATS,
    ExportError,
    captioned,
    export_figure,
    export_figures,
    render_bytes,
    render_pdfs,
    safe_name,
)
from geodiag.figures.registry import (
    FIGURES,
    FigureSpec,
    build_figure,
    figure_data,
    figure_options,
    get_figure,
    run_labels,
    scope_runs,
)
from geodiag.figures.style import PaperStyle, paper_style

__all__ = ["FIGURES", "FORMATS", "ExportError", "FigureSpec", "PaperStyle", "build_figure", "captioned",
           "export_figure", "export_figures", "render_pdfs",
           "figure_data", "figure_options", "get_figure", "paper_style", "render_bytes", "run_labels", "safe_name",
           "scope_runs"]
