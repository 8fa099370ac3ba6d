"""`geodiag results SWEEP`: per label the numbers the Results page shows, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import math

from geodiag.cli.runs import store_arg
from geodiag.lab import METHOD, edge_sentence, power_sentence, verdicts
from geodiag.store import Reader


def add_parser(sub) -> None:
    p = sub.add_parser("results", help="a sweep's verdicts: each label against a reference, paired on seeds and items",
                       description="Per label: the chosen learning rate, seeds, test accuracy (mean and standard "
                                   "error over seeds and items), the paired difference to the reference label over "
                                   "the seeds and test items both have with its 95% interval, the minimum "
                                   "detectable effect at 80% power, a Holm-adjusted p-value across labels, a "
                                   "verdict (better, worse, indistinguishable) and forgetting.")
    p.add_argument("sweep", metavar="SWEEP", help="a sweep id, or the id of one of its runs")
    p.add_argument("--reference", default="lora", help="the label every other is compared with (default: lora)")
    p.add_argument("--json", action="store_true", help="a JSON list of objects, one per label")
    store_arg(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    table = verdicts(Reader(args.store), args.sweep, args.reference)
    if args.json:
        records = [{k: _plain(v) for k, v in row.items()} for row in table.to_dict("records")]
        print(json.dumps(records, indent=2))
        return 0
    print(f"{'label':<12} {'lr':>8} {'seeds':>5} {'items':>5} {'accuracy':>15} {'delta vs ' + args.reference:>27} "
          f"{'MDE':>6} {'p (Holm)':>8}  {'verdict':<17} {'forgetting':>10}")
    for r in table.itertuples():
        acc = f"{r.accuracy:.3f} ± {r.accuracy_se:.3f}" if math.isfinite(r.accuracy_se) else f"{r.accuracy:.3f}"
        delta = "" if not math.isfinite(r.delta) else f"{r.delta:+.3f}" + (
            f" [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" if math.isfinite(r.ci_low) else " (one pair: no interval)")
        lr = f"{r.lr:g}" if r.lr is not None and math.isfinite(r.lr) else "mixed"
        print(f"{r.label:<12} {lr:>8} {len(r.seeds):>5} {r.n_items:>5} {acc:>15} {delta:>27} {_num(r.mde, '.3f'):>6} "
              f"{_num(r.p_holm, '.3f'):>8}  {r.verdict:<17} {_num(r.forgetting, '+.3f'):>10}")
    print(f"\n{power_sentence(table)} Intervals: {METHOD}.")
    if edge := edge_sentence(table):
        print(edge)
    return 0


def _num(x, fmt: str) -> str:
    return "" if x is None or not math.isfinite(x) else format(x, fmt)


def _plain(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return v.item()
    return v
