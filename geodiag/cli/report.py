"""`geodiag report SWEEP --out DIR`: a paper's appendix in one folder, from the store."""

from __future__ import annotations

import argparse

from geodiag.cli.runs import store_arg


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="a sweep's appendix: every figure, a LaTeX table, the CSVs, appendix.pdf",
                       description="Write one self-contained folder for a paper's appendix: every Results figure, "
                                   "each method's per-layer allocation and ΔW spectrum (its representative seed), "
                                   "the sweep's GID heatmap, results.tex (booktabs) and results.csv, the CSV behind "
                                   "every figure, README.md (a caption per file) and appendix.pdf (every figure on "
                                   "its own page, captioned). Figures at one- or two-column width, vector by default. "
                                   "Needs Chromium (Debian `chromium`).")
    p.add_argument("sweep", metavar="SWEEP", help="a sweep id, or the id of one of its runs")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write (created; nothing is written "
                                                               "outside it)")
    p.add_argument("--format", default="pdf", choices=("pdf", "svg", "png"), help="the figures' format (default: pdf)")
    p.add_argument("--width", default="double", choices=("single", "double"),
                   help="3.25 in (single column) or 6.75 in (double, the default)")
    p.add_argument("--reference", default="lora", help="the label every other is compared with (default: lora)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    store_arg(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from geodiag.report import build_report  # plotly: only when reporting
    from geodiag.store import Reader

    report = build_report(Reader(args.store), args.sweep, args.out, fmt=args.format, width=args.width,
                          reference=args.reference, progress=not args.no_progress)
    print(f"{report.folder}: {len(report.files)} files (README.md says what each is)")
    for line in report.left_out:
        print(f"  left out: {line}")
    return 0
