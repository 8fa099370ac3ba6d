"""`geodiag allocate RUN`: an allocation from a stored analysis, under a rule and a convention preset, as a JSON
file that `peft.LoraConfig` and `geodiag train --allocation` take. Pure arithmetic on stored vectors: no model."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from geodiag import allocation as alloc
from geodiag.errors import GeodiagError
from geodiag.lab import stored_analysis
from geodiag.store import DEFAULT_STORE, Reader


def add_parser(sub) -> None:
    p = sub.add_parser("allocate", help="turn a GID, ID or spectra analysis into per-module ranks (a peft "
                                        "rank_pattern)",
                       description="Allocate ranks from a `geodiag analyze gid|id|spectra` run under a rule and a "
                                   "convention "
                                   "preset, and write them as JSON (rank_pattern, alpha_pattern, blocks, parameter "
                                   "counts) for peft.LoraConfig or `geodiag train --allocation`.")
    p.add_argument("run_id", metavar="RUN", help="a `geodiag analyze` run: " + "; ".join(
        f"{kind} ({', '.join(alloc.rules_reading(kind))})" for kind in alloc.ANALYSES if alloc.rules_reading(kind)))
    p.add_argument("--rule", required=True, choices=alloc.RULES, help="the allocation rule")
    p.add_argument("--preset", default="paper", help=f"convention: {', '.join(alloc.PRESETS)} (default: paper)")
    p.add_argument("--r", type=int, default=8, help="reference LoRA rank r_ref (default: 8)")
    p.add_argument("--n-max", type=int, help="most blocks per module, a power of two (default: the preset's, 32)")
    p.add_argument("--r-min", type=int, help="smallest rank (default: the preset's)")
    p.add_argument("--r-max", type=int, help="largest rank (default: the preset's)")
    p.add_argument("--rank-rounding", default="round", choices=alloc.ROUNDINGS, help="rank rounding (default: round)")
    p.add_argument("--block-rounding", default="floor", choices=alloc.ROUNDINGS,
                   help="block-exponent rounding (default: floor)")
    p.add_argument("--budget-scale", type=float, default=1.0, help="scale on the rule's budget (default: 1)")
    p.add_argument("--constant", action="append", default=[], metavar="NAME=VALUE",
                   help="move one of the rule's paper constants (repeatable): " + "; ".join(
                       f"{r.name}: {', '.join(f'{c.name} (default {c.value:g})' for c in r.constants)}"
                       for r in alloc.RULES.values() if r.constants))
    p.add_argument("--out", metavar="FILE.json", help="write the allocation here (default: print it)")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"DuckDB store file (default: {DEFAULT_STORE})")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = alloc.Settings(args.rule, args.preset, r=args.r, n_max=args.n_max, r_min=args.r_min,
                              r_max=args.r_max, rank_rounding=args.rank_rounding, block_rounding=args.block_rounding,
                              budget_scale=args.budget_scale, constants=constants(args.constant))
    analysis = stored_analysis(Reader(args.store), args.run_id)
    plan = alloc.plan(settings, analysis.vectors, analysis.shapes)
    text = json.dumps(alloc.plan_json(plan, source_run=analysis.run_id, model=analysis.model), indent=2)
    if not args.out:
        print(text)
        return 0
    write_atomically(Path(args.out), text)
    print(f"{args.out}: {args.rule} ({args.preset}) on {len(plan.allocations)} modules, {plan.params:,} parameters "
          f"({plan.peft_params:,} through peft; LoRA r={args.r}: {plan.lora_params:,})")
    return 0


def constants(pairs: list[str]) -> tuple[tuple[str, float], ...]:
    """NAME=VALUE pairs as numbers; a pair that is not one is one sentence (Settings checks the names)."""
    out = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out.append((name.strip(), float(value)))
        except ValueError:
            sep = ""
        if not sep:
            raise GeodiagError(f"--constant takes NAME=VALUE with a number for VALUE, got {pair!r}.")
    return tuple(out)


def write_atomically(path: Path, text: str) -> None:
    if not path.parent.is_dir():
        raise GeodiagError(f"There is no folder {path.parent} to write {path.name} into.")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
