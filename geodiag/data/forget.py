"""The text forgetting is measured on: general English prose that is not the task's, already on the machine.

The default is the prose of the Python Language Reference that CPython's standard library ships for `help()`
(`pydoc_data.topics`): every topic, in sorted order. It is fixed for a given Python version; the run records a
hash of the text so that forgetting compares only across runs that measured it on the same text.
`--forget-text FILE` takes the user's own (UTF-8 text)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from geodiag.errors import GeodiagError

DEFAULT_SOURCE = "Python Language Reference prose (pydoc_data.topics)"


@dataclass(frozen=True)
class ForgetText:
    text: str
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()[:12]


def forget_text(path: str | None = None) -> ForgetText:
    """The default text, or the file at `path`; a missing or empty file is a sentence."""
    if path is None:
        from pydoc_data.topics import topics

        return ForgetText("\n\n".join(topics[k].strip() for k in sorted(topics)), DEFAULT_SOURCE)
    p = Path(path)
    if not p.is_file():
        raise GeodiagError(f"There is no forgetting text at {p}; give a UTF-8 text file (--forget-text).")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GeodiagError(f"The forgetting text {p} is not UTF-8 text.") from None
    if not text.strip():
        raise GeodiagError(f"The forgetting text {p} is empty; give a file of general prose.")
    return ForgetText(text, str(p))
