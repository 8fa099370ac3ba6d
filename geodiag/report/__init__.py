"""`geodiag report`: a sweep's appendix (figures, LaTeX and CSV tables, an index, appendix.pdf) in one folder."""

from geodiag.report.build import Report, build_report, report_zip
from geodiag.report.latex import results_tex

__all__ = ["Report", "build_report", "report_zip", "results_tex"]
