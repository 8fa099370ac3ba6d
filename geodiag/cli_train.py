"""`geodiag train`: flags for the run config, plus one flag per option of every registered method."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from geodiag.errors import GeodiagError

_MAIN = {  # TrainConfig field -> flag shown first in --help
    "model": "--model", "method": "--method", "task": "--task", "dataset": "--dataset", "steps": "--steps",
    "store": "--store", "run_name": "--run-name", "target_modules": "--target-modules",
    "record_every": "--record-every", "record_gid_every": "--record-gid-every", "subspace_k": "--subspace-k",
    "eval_every": "--eval-every", "eval_size": "--eval-size",
    "batch_size": "--batch-size", "grad_accum": "--grad-accum", "max_length": "--max-length", "lr": "--lr",
    "weight_decay": "--weight-decay", "clip": "--clip", "warmup": "--warmup", "seed": "--seed",
    "train_size": "--train-size", "record_batch": "--record-batch", "output_dir": "--output-dir",
    "dtype": "--dtype", "device": "--device",
}


def add_train_parser(sub) -> None:
    from geodiag.methods import METHODS
    from geodiag.train.config import TrainConfig

    p = sub.add_parser("train", help="train an adapter and record its geometry into the store",
                       description="Train an adapter and record its geometry. Prints the run id, then a "
                                   "progress bar.")
    p.add_argument("--config", metavar="FILE.yaml", help="read options from a YAML/JSON file; flags override it")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name, flag in _MAIN.items():
        f = fields[name]
        default = "" if f.default is dataclasses.MISSING else f" (default: {f.default})"
        p.add_argument(flag, dest=name, type=arg_type(f), default=None, metavar=name.upper(),
                       choices=f.metadata.get("choices"), help=f"{f.metadata['help']}{default}")
    p.add_argument("--trust-remote-code", dest="trust_remote_code", action="store_true", default=None,
                   help="allow the model's own code to run (off unless you trust its source)")
    p.add_argument("--gradient-checkpointing", dest="gradient_checkpointing", action="store_true", default=None)
    p.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                   help="reasoning-gym task option, e.g. max_digits=3 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = p.add_argument_group("method options (each applies to the methods that list it)")
    owners: dict[str, list[str]] = {}
    for spec in METHODS.values():
        for f in dataclasses.fields(spec.config):
            if f.name != "target_modules":
                owners.setdefault(f.name, []).append(spec.name)
    for spec in METHODS.values():
        for f in dataclasses.fields(spec.config):
            flag = "--" + f.name.replace("_", "-")
            if f.name == "target_modules" or any(a.option_strings == [flag] for a in group._group_actions):
                continue
            text = f"[{', '.join(owners[f.name])}] {f.metadata.get('help', '')} (default: {f.default})"
            group.add_argument(flag, dest=f"m_{f.name}", type=arg_type(f), default=None, metavar=f.name.upper(),
                               choices=f.metadata.get("choices"), help=text)
    p.set_defaults(handler=run_train)


def arg_type(f):
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
    if "list" in t:
        return str
    return {"int": int, "float": float, "bool": _bool}.get(t.split("|")[0].strip(), str)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def run_train(args: argparse.Namespace) -> int:
    from geodiag.methods import get_method
    from geodiag.train import TrainConfig, train

    given = {k: v for k, v in vars(args).items() if k in _MAIN or k in ("trust_remote_code", "gradient_checkpointing")}
    given = {k: v for k, v in given.items() if v is not None}
    cfg = TrainConfig.from_file(args.config, **given) if args.config else TrainConfig.from_dict(given)
    spec = get_method(cfg.method)
    allowed = {f.name for f in dataclasses.fields(spec.config)}
    method_opts = {k[2:]: v for k, v in vars(args).items() if k.startswith("m_") and v is not None}
    stray = sorted(set(method_opts) - allowed)
    if stray:
        flags = ", ".join("--" + s.replace("_", "-") for s in stray)
        raise GeodiagError(f"{flags} {'is not an option' if len(stray) == 1 else 'are not options'} of the "
                           f"{cfg.method} method; `geodiag train --help` lists each method's options.")
    cfg.method_options = {**cfg.method_options, **method_opts}
    cfg.task_options = {**cfg.task_options, **_key_values(args.task_option)}
    run_id = train(cfg, progress=not args.no_progress)
    print(run_id)
    print(f"finished run {run_id}; `geodiag runs show {run_id} --store {cfg.store}` lists what was recorded.",
          file=sys.stderr)
    return 0


def _key_values(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise GeodiagError(f"--task-option takes KEY=VALUE, got {item!r}.")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out
