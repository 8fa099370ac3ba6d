"""`geodiag export`: the dashboard's figures as PDF/SVG/PNG plus the CSV behind each, from the same builders."""

from __future__ import annotations

import argparse

from geodiag.errors import GeodiagError
from geodiag.lab import sweep_run_ids
from geodiag.options import split_list
from geodiag.store import DEFAULT_STORE, Reader


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a dashboard figure as PDF/SVG/PNG plus the CSV behind it",
                       description="Export a figure for a paper: vector PDF/SVG or high-DPI PNG in a publication "
                                   "style, plus the CSV of the exact data plotted. Needs Chromium (Debian "
                                   "`chromium`) for PDF/SVG/PNG.")
    p.add_argument("run_id", metavar="RUN", nargs="?", help="the run to plot (see `geodiag runs list`); for the "
                                                            "results and outcome figures a sweep id, or a run of it")
    p.add_argument("--figure", help="figure name (see --list)")
    p.add_argument("--format", default="pdf", help="pdf, svg, png or a comma-separated list (default: pdf)")
    p.add_argument("--out", default="exports", help="folder to write into; nothing is written outside it")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"DuckDB store file (default: {DEFAULT_STORE})")
    p.add_argument("--compare", default="", help="comma-separated run ids to overlay (figures that overlay runs)")
    p.add_argument("--step", type=int, help="the step to show (default: the last recorded)")
    p.add_argument("--column", choices=("double", "single"), default="double", help="two- or one-column width")
    p.add_argument("--font", default="serif", help="serif, sans or a font family (default: serif)")
    p.add_argument("--font-size", type=int, default=8, help="points, 8 to 24 (default: 8)")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution (default: 300)")
    p.add_argument("--smoothing", type=float, default=0.0, help="EMA weight in [0, 1) for curves (default: 0)")
    p.add_argument("--list", action="store_true", help="name the figures and exit")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from geodiag import figures  # plotly: only when exporting, so every other command starts quicker

    if args.list:
        for spec in figures.FIGURES.values():
            print(f"{spec.name:<10} {spec.title}  [data: {spec.hint}]")
        return 0
    if not args.run_id or not args.figure:
        raise GeodiagError("Name a run and a figure, e.g. `geodiag export RUN --figure gates`; "
                           "`geodiag export --list` names the figures.")
    if not 0 <= args.smoothing < 1:
        raise GeodiagError(f"--smoothing must be in [0, 1), got {args.smoothing}.")
    spec = figures.get_figure(args.figure)
    reader = Reader(args.store)
    run = reader.run(sweep_run_ids(reader, args.run_id)[0] if spec.scope == "sweep" else args.run_id)
    data = figures.figure_data(reader, spec.name, [args.run_id, *split_list(args.compare)])
    fig = None
    if not data.empty:
        fig = figures.build_figure(spec.name, data, step=args.step, smoothing=args.smoothing,
                                   labels=figures.run_labels(reader.runs()), **figures.figure_options(spec.name, run))
    if fig is None or not fig.data:
        raise GeodiagError(f"Run {args.run_id} has no data for the {spec.name} figure; record it with `{spec.hint}`.")
    style = figures.PaperStyle(column=args.column, font=args.font, font_size=args.font_size)
    paths = figures.export_figure(fig, data, args.out, f"{spec.name}-{args.run_id}",
                                  formats=tuple(f.lower() for f in split_list(args.format)), style=style,
                                  dpi=args.dpi)
    for path in paths:
        print(path)
    return 0
