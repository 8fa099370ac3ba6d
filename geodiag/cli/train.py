"""`geodiag train`: flags for the run config (TrainConfig) and, per method, that method's options, all
rendered from the configs' schema."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from geodiag.cli.flags import add_options, describe, given, section
from geodiag.config import TrainConfig
from geodiag.errors import GeodiagError
from geodiag.methods import METHODS, get_method
from geodiag.options import listed, schema


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train an adapter and record its geometry into the store",
                       description="Train an adapter and record its geometry. Prints the run id, then a progress\n"
                                   "bar. Options come from flags, a --config file, or both (flags win).",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE.yaml", help="read options from a YAML/JSON file; flags override it")
    specs = schema(TrainConfig)
    extra = {"method": f": {listed(list(METHODS))}"}
    for group, title in (("basic", "run options"), ("advanced", "advanced run options")):
        add_options(p.add_argument_group(title), [s for s in specs if s.group == group],
                    help_for=lambda s: describe(s, extra.get(s.name, "")))
    more = p.add_argument_group("other")
    more.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                      help="reasoning-gym task option, e.g. max_digits=3 (repeatable)")
    more.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_options(p, method_specs().values(), dest_prefix="m_", help_for=lambda s: argparse.SUPPRESS)
    p.epilog = "\n\n".join(section(f"--method {m.name}: {m.summary}", _own(m), p) for m in METHODS.values())
    p.set_defaults(handler=run)


def _own(method) -> list:
    """A method's options, less target_modules (the run's --target-modules sets it)."""
    return [s for s in schema(method.config) if s.name != "target_modules"]


def method_specs() -> dict:
    """Every method option once, by name: methods share names (r, alpha, init_lora_weights) and one flag serves
    them all. Where their choices differ the flag checks none itself: the chosen method's config validates the
    value against its own choices (one sentence naming them), and each keeps its own default (a flag left out
    is not passed)."""
    merged: dict = {}
    for spec in (s for m in METHODS.values() for s in _own(m)):
        seen = merged.setdefault(spec.name, spec)
        if seen.choices != spec.choices:
            merged[spec.name] = replace(seen, choices=None)
    return merged


def run(args: argparse.Namespace) -> int:
    from geodiag.train import train  # torch: only once a run starts, so `geodiag --help` stays instant

    main = given(args, schema(TrainConfig))
    if main.get("allocation") and "method" not in main and not args.config:
        from geodiag.allocation import read_allocation

        main["method"] = read_allocation(main["allocation"]).rule  # train the file as its rule does
    cfg = TrainConfig.from_file(args.config, **main) if args.config else TrainConfig.from_dict(main)
    spec = get_method(cfg.method)
    method_opts = given(args, method_specs().values(), dest_prefix="m_")
    stray = sorted(set(method_opts) - {s.name for s in _own(spec)})
    if stray:
        flags = ", ".join("--" + s.replace("_", "-") for s in stray)
        raise GeodiagError(f"{flags} {'is not an option' if len(stray) == 1 else 'are not options'} of the "
                           f"{cfg.method} method; `geodiag train --help` lists each method's options.")
    cfg.method_options = {**cfg.method_options, **method_opts}
    cfg.task_options = {**cfg.task_options, **key_values(args.task_option)}
    run_id = train(cfg, progress=not args.no_progress)
    print(run_id)
    print(f"finished run {run_id}; `geodiag runs show {run_id} --store {cfg.store}` lists what was recorded.",
          file=sys.stderr)
    return 0


def key_values(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise GeodiagError(f"--task-option takes KEY=VALUE, got {item!r}.")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
