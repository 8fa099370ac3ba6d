"""Paper export: vector PDF/SVG and high-DPI PNG through kaleido driving the system Chromium, plus the CSV
of the exact rows plotted. Kaleido runs in a child process with a timeout, so a missing or hung browser is
one sentence, never a frozen page or CLI. Files are written only inside the chosen folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from geodiag.errors import GeodiagError
from geodiag.figures.style import PaperStyle, paper_style

FORMATS = ("pdf", "svg", "png")
EXPORT_TIMEOUT_S = 90


class ExportError(GeodiagError):
    """A figure could not be written; the message says why and what to do."""


def safe_name(text: str) -> str:
    """A file-name stem with only letters, digits, '.', '_' and '-' (no separators, no leading dots)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return stem[:120] or "figure"


def inside(folder: Path, name: str) -> Path:
    """folder / name, refusing anything that would land outside folder."""
    root = folder.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise ExportError(f"Refusing to write {name!r}: exports stay inside {root}.")
    return path


def chromium_path() -> str | None:
    for candidate in (os.environ.get("GEODIAG_CHROMIUM"), os.environ.get("BROWSER_PATH"), shutil.which("chromium"),
                      "/usr/bin/chromium", shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def render_bytes(fig: go.Figure, fmt: str, *, style: PaperStyle | None = None, dpi: int = 300,
                 timeout_s: float = EXPORT_TIMEOUT_S) -> bytes:
    """One styled figure as PDF, SVG or PNG bytes (used by the dashboard's download buttons)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"figure.{fmt}"
        _kaleido([(paper_style(fig, style), path, fmt)], dpi, timeout_s)
        return path.read_bytes()


def export_figure(fig: go.Figure, data: pd.DataFrame, folder: str | Path, stem: str, *,
                  formats: tuple[str, ...] = FORMATS, style: PaperStyle | None = None, dpi: int = 300,
                  timeout_s: float = EXPORT_TIMEOUT_S) -> list[Path]:
    """Write stem.<fmt> for each format and stem.csv (the data behind it) into folder; returns the paths."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ExportError(f"Unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}.")
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"Cannot create the export folder {out}: {e.strerror}.") from None
    stem = safe_name(stem)
    csv = inside(out, f"{stem}.csv")
    data.to_csv(csv, index=False)
    jobs = [(paper_style(fig, style), inside(out, f"{stem}.{fmt}"), fmt) for fmt in formats]
    if jobs:
        _kaleido(jobs, dpi, timeout_s)
    return [p for _, p, _ in jobs] + [csv]


def _kaleido(jobs: list[tuple[go.Figure, Path, str]], dpi: int, timeout_s: float) -> None:
    browser = chromium_path()
    if browser is None:
        raise ExportError("Static export needs Chromium, which is not installed: `sudo apt-get install chromium` "
                          "(or set BROWSER_PATH to a Chrome/Chromium binary). The CSV export works without it.")
    payload = [{"fig": json.loads(fig.to_json()), "path": str(path),
                "opts": {"format": fmt, "width": fig.layout.width, "height": fig.layout.height,
                         "scale": dpi / 72 if fmt == "png" else 1}} for fig, path, fmt in jobs]
    env = {**os.environ, "BROWSER_PATH": browser}
    try:
        proc = subprocess.run([sys.executable, "-m", "geodiag.figures._kaleido"], input=json.dumps(payload),
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise ExportError(f"Chromium did not finish the export within {timeout_s:.0f} s; try again, or export "
                          "one format at a time.") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise ExportError(f"Static export failed in Chromium ({browser}): {last}")
    missing = [str(p) for _, p, _ in jobs if not p.exists() or p.stat().st_size == 0]
    if missing:
        raise ExportError(f"Chromium reported success but wrote nothing to {missing[0]}.")
