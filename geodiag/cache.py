"""Where geodiag keeps what it can rebuild (the de-quantised embedded model, the reasoning-gym task list):
GEODIAG_CACHE, default ~/.cache/geodiag. Losing it only costs time."""

from __future__ import annotations

import json
import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("GEODIAG_CACHE", Path.home() / ".cache" / "geodiag"))


def read_json(name: str):
    """A cached JSON value, or None when it is missing or unreadable."""
    try:
        return json.loads((cache_dir() / name).read_text())
    except (OSError, ValueError):
        return None


def write_json(name: str, value) -> None:
    """Cache a JSON value atomically; a read-only or full disk only costs speed next time."""
    path = cache_dir() / name
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
