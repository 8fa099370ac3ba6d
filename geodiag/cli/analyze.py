"""`geodiag analyze gid|id|spectra`: flags rendered from AnalyzeConfig, each analysis with the options in its scope."""

from __future__ import annotations

import argparse
import sys

from geodiag.cli.flags import add_options, given
from geodiag.config import AnalyzeConfig
from geodiag.options import schema

ANALYSES = {"gid": "gradient intrinsic dimensionality per module (RaLoRA) and the RaLoRA, RaLoRA-Pro and "
                   "LoRA+GID allocations",
            "id": "TwoNN intrinsic dimension and participation ratio per layer (GeLoRA) and the GeLoRA allocation",
            "spectra": "the pretrained weights' spectra per module (eigenvalues of W^T W, power-law alpha, stable "
                       "rank, spikes above the Marchenko-Pastur bulk), as WeightWatcher measures them"}


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="measure GID or intrinsic dimension and the rank allocations they imply")
    kinds = p.add_subparsers(dest="analysis", metavar="ANALYSIS")
    for kind, text in ANALYSES.items():
        q = kinds.add_parser(kind, help=text, description=text)
        specs = [s for s in schema(AnalyzeConfig) if s.applies_to(kind)]
        for group, title in (("basic", f"{kind} options"), ("advanced", f"advanced {kind} options")):
            add_options(q.add_argument_group(title), [s for s in specs if s.group == group])
        q.add_argument_group("other").add_argument("--no-progress", action="store_true", help="no progress bar")
        q.set_defaults(handler=run, analysis=kind)


def run(args: argparse.Namespace) -> int:
    from geodiag.analysis import analyze_gid, analyze_id, analyze_spectra  # torch: only once an analysis starts

    cfg = AnalyzeConfig.from_dict(given(args, schema(AnalyzeConfig)))  # validates, naming the bad option
    analyze = {"gid": analyze_gid, "id": analyze_id, "spectra": analyze_spectra}[args.analysis]
    run_id = analyze(cfg, progress=not args.no_progress)
    print(run_id)
    print(f"finished analysis {run_id}; `geodiag runs show {run_id} --store {cfg.store}` lists what was recorded.",
          file=sys.stderr)
    return 0
