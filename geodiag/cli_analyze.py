"""`geodiag analyze gid|id`: flags generated from AnalyzeConfig, so help text lives in one place."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from geodiag.cli_train import arg_type

_GID_ONLY = {"batches", "rank", "n_max", "block_rounding", "rank_rounding"}
_ID_ONLY = {"tokens", "pooling", "gelora_scale"}


def add_analyze_parser(sub) -> None:
    from geodiag.analysis.run import AnalyzeConfig

    p = sub.add_parser("analyze", help="measure GID or intrinsic dimension and the rank allocations they imply")
    kinds = p.add_subparsers(dest="analysis", metavar="ANALYSIS")
    for kind, skip, text in (("gid", _ID_ONLY, "gradient intrinsic dimensionality per module (RaLoRA) and the "
                                              "RaLoRA, RaLoRA-Pro and LoRA+GID allocations"),
                             ("id", _GID_ONLY, "TwoNN intrinsic dimension and participation ratio per layer "
                                               "(GeLoRA) and the GeLoRA allocation")):
        q = kinds.add_parser(kind, help=text, description=text)
        for f in dataclasses.fields(AnalyzeConfig):
            if f.name in skip:
                continue
            flag = "--" + f.name.replace("_", "-")
            if f.type == "bool":
                q.add_argument(flag, dest=f.name, action="store_true", default=None, help=f.metadata["help"])
                continue
            typ = arg_type(f)
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            shown = ",".join(default) if isinstance(default, list) else default
            q.add_argument(flag, dest=f.name, type=typ, default=None, metavar=f.name.upper(),
                           choices=f.metadata.get("choices"), help=f"{f.metadata['help']} (default: {shown})")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")
        q.set_defaults(handler=run_analyze, analysis=kind)


def run_analyze(args: argparse.Namespace) -> int:
    from geodiag.analysis.run import AnalyzeConfig, analyze_gid, analyze_id

    names = {f.name for f in dataclasses.fields(AnalyzeConfig)}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    cfg = AnalyzeConfig(**given)  # validates, naming the bad option
    run = analyze_gid if args.analysis == "gid" else analyze_id
    run_id = run(cfg, progress=not args.no_progress)
    print(run_id)
    print(f"finished analysis {run_id}; `geodiag runs show {run_id} --store {cfg.store}` lists what was recorded.",
          file=sys.stderr)
    return 0
