"""Config schemas as argparse flags: one flag per option (`--name-with-dashes`), its help and default from
the config field, choices where the field has them, `--x/--no-x` for booleans. The same `OptionSpec`s render
the dashboard's Launch form."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from geodiag.options import OptionSpec

_TYPES = {"int": int, "float": float}


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (what was wrong and where to look) instead of the usage text."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}; `{self.prog} --help` lists the options.", file=sys.stderr)
        raise SystemExit(2)

    def _get_values(self, action, arg_strings):
        # argparse drops a "--" value (`--port=--`) and hands the option an empty list, past its type and
        # choices: refuse it here, naming the flag
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected a value, got '--'")
        return super()._get_values(action, arg_strings)


def shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def describe(spec: OptionSpec, extra: str = "") -> str:
    default = "" if spec.default is None or spec.type == "dict" else f" (default: {shown(spec.default)})"
    return f"{spec.help}{extra}{default}".replace("%", "%%")


def add_options(container, specs: Iterable[OptionSpec], *, dest_prefix: str = "", help_for=None) -> None:
    """One flag per option; `help_for(spec)` may replace the help text (argparse.SUPPRESS hides a flag)."""
    for spec in specs:
        kw: dict = {"dest": dest_prefix + spec.name, "default": None,
                    "help": help_for(spec) if help_for else describe(spec)}
        if spec.type == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = _TYPES.get(spec.type, str)
            kw["metavar"] = None if spec.choices else "A,B" if spec.type == "list" else spec.name.upper()
            kw["choices"] = spec.choices
        container.add_argument(spec.flag, **kw)


def given(args: argparse.Namespace, specs: Iterable[OptionSpec], *, dest_prefix: str = "") -> dict:
    """The options given on the command line (flags left out stay out, so a config file's values hold)."""
    values = {s.name: getattr(args, dest_prefix + s.name, None) for s in specs}
    return {k: v for k, v in values.items() if v is not None}


def section(title: str, specs: Iterable[OptionSpec], width_from: argparse.ArgumentParser) -> str:
    """A block of help text for options shown in an epilog (per-method options share flags, which argparse
    cannot list in several groups)."""
    p = argparse.ArgumentParser(prog=width_from.prog, add_help=False, usage=argparse.SUPPRESS)
    add_options(p.add_argument_group(title), specs)
    return p.format_help().strip()
