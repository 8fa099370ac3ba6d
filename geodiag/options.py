"""Config dataclasses, and the one option schema every interface is rendered from.

A field is declared once, with `option(default, help, choices=..., group=..., scope=...)`. `schema(cls)` lists a
config class's fields as `OptionSpec`s (name, type, default, help, choices, group), and both the CLI flags
(`geodiag.cli.flags`) and the dashboard's Launch form (`geodiag.ui.forms`) are rendered from that list.
`Config.__post_init__` checks every field's type and choices and names the field in one sentence.
Torch-free: the dashboard imports every config in-process.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from geodiag.errors import GeodiagError

# basic: shown first (CLI) and in the main form (Launch); advanced: behind a heading or an expander;
# file: only in config files (nested mappings such as method_options), never a flag.
GROUPS = ("basic", "advanced", "file")
_KINDS = ("int", "float", "bool", "str", "list", "dict")


def option(default: Any, help: str, *, choices: tuple | None = None, group: str = "basic",  # noqa: A002
           scope: tuple[str, ...] | None = None):
    """A config field with its help text, its closed set of values (if any), its group and, for a config
    shared by several commands, the commands it applies to (`scope`, e.g. ("gid",))."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    metadata = {"help": help, "group": group}
    if choices:
        metadata["choices"] = tuple(choices)
    if scope:
        metadata["scope"] = tuple(scope)
    if isinstance(default, list | dict):
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class OptionSpec:
    """One option as every interface shows it."""

    name: str
    type: str  # int | float | bool | str | list | dict
    default: Any
    help: str
    choices: tuple | None = None
    group: str = "basic"
    scope: tuple[str, ...] | None = None
    optional: bool = False  # None is a valid value ("not given")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def applies_to(self, command: str) -> bool:
        return self.scope is None or command in self.scope


@functools.cache
def schema(cls: type) -> tuple[OptionSpec, ...]:
    """The options of a config dataclass, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        kind, optional = _parse_type(f.type)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
        out.append(OptionSpec(f.name, kind, default, f.metadata.get("help", ""), f.metadata.get("choices"),
                              f.metadata.get("group", "basic"), f.metadata.get("scope"), optional))
    return tuple(out)


def _parse_type(annotation: Any) -> tuple[str, bool]:
    """("int", False) for `int`, ("str", True) for `str | None`, ("list", True) for `list[str] | None`."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in text.split("|")]
    base = next((p for p in parts if p != "None"), "str").split("[")[0]
    return (base if base in _KINDS else "str"), "None" in parts


def split_list(value: Any) -> list[str]:
    """'q_proj, v_proj' or ['q_proj', 'v_proj'] -> ['q_proj', 'v_proj'] (the one comma-splitting rule)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [str(v).strip() for v in items if str(v).strip()]


def listed(values: tuple | list) -> str:
    """'a', 'a or b', 'a, b or c'."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + f" or {values[-1]}"


class Config:
    """Base of every config dataclass: each field's type and choices checked (naming the field), unknown
    options refused in one sentence, dict round trip. Subclasses add their own rules in __post_init__."""

    KIND: ClassVar[str] = "this config"  # how error messages name it, e.g. "the lora method"

    def __post_init__(self) -> None:
        for spec in schema(type(self)):
            setattr(self, spec.name, _checked(spec, getattr(self, spec.name)))

    @classmethod
    def from_dict(cls, values: dict):
        known = [s.name for s in schema(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise GeodiagError(f"Unknown option(s) {', '.join(unknown)} for {cls.KIND}; it takes "
                               f"{', '.join(sorted(known))}.")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def require(self, ok: bool, name: str, rule: str) -> None:
        """Raise `name must be <rule>, got <value>.` unless ok."""
        if not ok:
            raise GeodiagError(f"{name} must be {rule}, got {getattr(self, name)!r}.")


def _checked(spec: OptionSpec, value: Any) -> Any:
    """The value converted to the field's type where that is lossless (a YAML int for a float, a comma string
    for a list, 'true' for a bool); anything else is a sentence naming the field."""
    if value is None and (spec.optional or spec.default is None):
        return None
    converted = _convert(spec.type, value)
    if converted is _BAD:
        article = "an" if spec.type[0] in "aeiou" else "a"
        noun = {"int": "integer", "float": "number", "bool": "true or false", "str": "text", "list": "list",
                "dict": "mapping"}[spec.type]
        raise GeodiagError(f"{spec.name} must be {noun if spec.type == 'bool' else f'{article} {noun}'}, "
                           f"got {value!r}.")
    if spec.choices and converted not in spec.choices:
        raise GeodiagError(f"{spec.name} must be {listed(spec.choices)}, got {converted!r}.")
    return converted


_BAD = object()
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _convert(kind: str, value: Any) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else _BAD
    if kind == "int":
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) else _number(value, int)
    if kind == "float":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _number(value, float)
    if kind == "list":
        return split_list(value) if isinstance(value, str | list | tuple) else _BAD
    if kind == "dict":
        return dict(value) if isinstance(value, dict) else _BAD
    return value if isinstance(value, str) else _BAD


def _number(value: Any, kind: type) -> Any:
    if not isinstance(value, str):
        return _BAD
    try:
        return kind(value.strip())
    except ValueError:
        return _BAD
