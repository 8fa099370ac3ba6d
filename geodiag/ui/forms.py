"""Config schemas as Streamlit inputs: one widget per OptionSpec (a picker when it has choices, a checkbox
for a boolean, numbers, text), its help from the field. The same specs render the CLI flags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from geodiag.options import OptionSpec, split_list


def widget(spec: OptionSpec, key: str, *, choices: Sequence | None = None, default: Any = None) -> Any:
    """One input for a config field; `choices` and `default` override the field's (e.g. the registered
    methods, or a method's own target modules). A value already in the session under `key` (another page's
    prefill, e.g. the allocation lab's "Train this allocation") wins over the default."""
    label = spec.name.replace("_", " ")
    value = spec.default if default is None else default
    options = list(choices if choices is not None else spec.choices or [])
    kw = {"key": key, "help": spec.help}
    preset = key in st.session_state  # Streamlit warns when a widget gets both a value and a session value
    if options:
        index = options.index(value) if value in options else 0
        return st.selectbox(label, options, **({} if preset else {"index": index}), **kw,
                            format_func=lambda v: "(none)" if v is None else str(v))
    if spec.type == "bool":
        return st.checkbox(label, **({} if preset else {"value": bool(value)}), **kw)
    if spec.type == "int":
        return st.number_input(label, **({} if preset else {"value": int(value)}), step=1, **kw)
    if spec.type == "float":
        return st.number_input(label, **({} if preset else {"value": float(value)}), format="%g", **kw)
    if spec.type == "list":
        shown = ",".join(map(str, value or []))
        return split_list(st.text_input(label, **({} if preset else {"value": shown}), **kw))
    text = st.text_input(label, **({} if preset else {"value": "" if value is None else str(value)}), **kw)
    return text or None


def grid(specs: Sequence[OptionSpec], key: str, *, columns: int = 4, choices: dict | None = None,
         defaults: dict | None = None) -> dict[str, Any]:
    """Widgets for several fields in a grid of columns; returns name -> value."""
    cols = st.columns(columns)
    values = {}
    for i, spec in enumerate(specs):
        with cols[i % columns]:
            values[spec.name] = widget(spec, f"{key}-{spec.name}", choices=(choices or {}).get(spec.name),
                                       default=(defaults or {}).get(spec.name))
    return values


def changed(specs: Sequence[OptionSpec], values: dict, defaults: dict | None = None) -> dict:
    """Only what differs from the defaults goes on the command line (the run records its full config)."""
    base = {s.name: s.default for s in specs} | (defaults or {})
    return {k: v for k, v in values.items() if v != base.get(k)}
