"""Rules from outside the package: `GEODIAG_PLUGINS=pkg.my_rules,other` imports each module once, after the
built-in rules are registered, so a rule written in one file of your own (calling `register_rule`, importing from
`geodiag.allocation.registry`, `.presets` and `.rules`) reaches every command, the dashboard, sweeps and the
methods made from spectral rules, with no change to geodiag. A module that cannot be imported is said once, in
one sentence, and left out."""

from __future__ import annotations

import importlib
import os
import sys

VARIABLE = "GEODIAG_PLUGINS"


def load(names: str | None = None) -> list[str]:
    """Import the named modules (default: the variable's); the ones imported."""
    loaded = []
    for name in [n.strip() for n in (names if names is not None else os.environ.get(VARIABLE, "")).split(",")]:
        if not name:
            continue
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure of someone else's module is one sentence
            print(f"geodiag: warning: {VARIABLE} names {name}, which cannot be imported "
                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); its rules are left out.",
                  file=sys.stderr)
            continue
        loaded.append(name)
    return loaded


LOADED = load()
