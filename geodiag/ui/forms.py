"""Config schemas as Streamlit inputs: one widget per OptionSpec (a picker when it has choices, a checkbox
for a boolean, numbers, text), its help from the field. The same specs render the CLI flags."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from geodiag.options import OptionSpec, split_list

PREFILL = "prefill"  # session key: widget key -> the value another page wants a form to start from


def initial(key: str, default: Any) -> Any:
    """What a widget starts from: another page's prefill for its key (the allocation lab's "Train this
    allocation"), else `default`."""
    return st.session_state.get(PREFILL, {}).get(key, default)


def widget(spec: OptionSpec, key: str, *, choices: Sequence | None = None, default: Any = None) -> Any:
    """One input for a config field; `choices` and `default` override the field's (e.g. the registered
    methods, or a method's own target modules).

    Every run passes the widget the same starting value (its prefill or default), and nothing writes widget keys
    through the Session State API. (Given its default only on its first run, a widget registered the type's own
    default, the first option, on every later run: any rerun whose widget states lacked the widget's value, e.g. one
    interrupted on a busy machine, would have returned that first option, and AdaLoRA is the first registered
    method.)"""
    label = spec.name.replace("_", " ")
    value = initial(key, spec.default if default is None else default)
    options = list(choices if choices is not None else spec.choices or [])
    kw = {"key": key, "help": spec.help}
    if options and spec.type == "list":  # several of a closed set, e.g. a sweep's methods
        return st.multiselect(label, options, default=[v for v in value or [] if v in options], **kw)
    if options:
        return st.selectbox(label, options, index=options.index(value) if value in options else 0, **kw,
                            format_func=lambda v: "(none)" if v is None else str(v))
    if spec.type == "bool":
        return st.checkbox(label, value=bool(value), **kw)
    if spec.type == "int":
        return st.number_input(label, value=int(value), step=1, **kw)
    if spec.type == "float":
        return st.number_input(label, value=float(value), format="%g", **kw)
    if spec.type == "list":
        return split_list(st.text_input(label, value=",".join(map(str, value or [])), **kw))
    return st.text_input(label, value="" if value is None else str(value), **kw) or None


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
