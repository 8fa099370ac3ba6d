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
# Figures are laid out in points (1 unit = 1/72 in). Chromium prints a CSS pixel (1/96 in) as 0.75 pt, so a PDF is
# rendered 4/3 larger to come out at the column's width; an SVG says its units are points; a PNG is dpi / 72.
SCALE = {"pdf": 96 / 72, "svg": 1.0}
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
    return export_figures([(stem, fig, data)], folder, formats=formats, style=style, dpi=dpi, timeout_s=timeout_s)


def export_figures(items: list[tuple[str, go.Figure, pd.DataFrame]], folder: str | Path, *,
                   formats: tuple[str, ...] = FORMATS, style: PaperStyle | None = None, dpi: int = 300,
                   timeout_s: float = EXPORT_TIMEOUT_S) -> list[Path]:
    """Several (stem, figure, data) at once: each one's CSV and formats, rendered in one Chromium session."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ExportError(f"Unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}.")
    out = export_folder(folder)
    jobs, paths = [], []
    for stem, fig, data in items:
        stem = safe_name(stem)
        csv = inside(out, f"{stem}.csv")
        data.to_csv(csv, index=False)
        styled = paper_style(fig, style)
        mine = [(styled, inside(out, f"{stem}.{fmt}"), fmt) for fmt in formats]
        jobs += mine
        paths += [p for _, p, _ in mine] + [csv]
    if jobs:
        _kaleido(jobs, dpi, timeout_s * max(1.0, len(jobs) / 4))  # a long batch takes longer
    return paths


def export_folder(folder: str | Path) -> Path:
    """The folder to write into, created if missing; a file in its place is one sentence."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; give a folder to write into (it is created if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"Cannot create the export folder {out}: {e.strerror}.") from None
    return out


def captioned(fig: go.Figure, caption: str, style: PaperStyle | None = None) -> go.Figure:
    """The figure styled for print with its caption set below it, as a page of an appendix shows it."""
    from geodiag.figures.paper import LINE, wrap

    s = style or PaperStyle()
    out = paper_style(fig, s)
    text, lines = wrap(caption, out.layout.width - 4, s.font_size)
    room = lines * LINE * s.font_size + 10
    out.update_layout(height=round(out.layout.height + room), margin={"b": round(out.layout.margin.b + room)})
    out.add_annotation(text=text, xref="paper", yref="paper", x=0, y=0, xanchor="left", yanchor="top", yshift=-6,
                       align="left", showarrow=False, font={"size": s.font_size})
    return out


def render_pdfs(figs: list[go.Figure], folder: Path, *, timeout_s: float = EXPORT_TIMEOUT_S) -> list[Path]:
    """Already-styled figures as page-NNN.pdf in folder (an appendix's pages, before they are put together)."""
    jobs = [(fig, folder / f"page-{i:03d}.pdf", "pdf") for i, fig in enumerate(figs)]
    _kaleido(jobs, 300, timeout_s * max(1.0, len(jobs) / 4))
    return [p for _, p, _ in jobs]


def _kaleido(jobs: list[tuple[go.Figure, Path, str]], dpi: int, timeout_s: float) -> None:
    browser = chromium_path()
    if browser is None:
        raise ExportError("Static export needs Chromium, which is not installed: `sudo apt-get install chromium` "
                          "(or set BROWSER_PATH to a Chrome/Chromium binary). The CSV export works without it.")
    payload = [{"fig": json.loads(fig.to_json()), "path": str(path),
                "opts": {"format": fmt, "width": fig.layout.width, "height": fig.layout.height,
                         "scale": SCALE.get(fmt, dpi / 72)}} for fig, path, fmt in jobs]
    env = {**os.environ, "BROWSER_PATH": browser}
    for attempt in range(2):  # a busy machine can make Chromium drop a page of a long batch: those once more
        _run_kaleido(payload, env, browser, timeout_s)
        missing = [p for _, p, _ in jobs if not p.exists() or p.stat().st_size == 0]
        payload = [job for job in payload if Path(job["path"]) in missing]
        if not missing:
            break
        if attempt:
            raise ExportError(f"Chromium reported success but wrote nothing to {missing[0]}.")
    for _, path, fmt in jobs:
        if fmt == "svg":
            _svg_in_points(path)


def _run_kaleido(payload: list[dict], env: dict, browser: str, timeout_s: float) -> None:
    try:
        proc = subprocess.run([sys.executable, "-m", "geodiag.figures._kaleido"], input=json.dumps(payload),
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise ExportError(f"Chromium did not finish the export within {timeout_s:.0f} s; try again, or export "
                          "one format at a time.") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise ExportError(f"Static export failed in Chromium ({browser}): {last}")


def _svg_in_points(path: Path) -> None:
    """width="486" height="300" -> "486pt" / "300pt" on the root element (its viewBox keeps the units): the file's
    physical size is then the column's, and an 8-unit font is 8 pt wherever the SVG is placed."""
    text = path.read_text()
    head, sep, rest = text.partition(">")
    head = re.sub(r'\b(width|height)="([\d.]+)"', r'\1="\2pt"', head, count=2)
    path.write_text(head + sep + rest)
