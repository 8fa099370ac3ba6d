"""`geodiag report SWEEP`: a paper's appendix in one folder. Every Results figure, each method's per-layer
allocation and ΔW spectrum (its representative seed), the sweep's GID heatmap, the verdict table as LaTeX
(booktabs) and CSV, the CSV behind every figure, an index with a caption per file, and appendix.pdf with every
figure on its own page under its caption. Read from the store; nothing is trained or measured."""

from __future__ import annotations

import io
import math
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from tqdm.auto import tqdm

from geodiag import figures
from geodiag.errors import GeodiagError
from geodiag.figures.export import export_folder, inside
from geodiag.lab import verdicts
from geodiag.lab.outcomes import outcomes, sweep_of
from geodiag.lab.selection import final_runs, sweep_table
from geodiag.report.latex import results_tex
from geodiag.store import Reader

RESULTS_FIGURES = ("results", "lr", "forgetting", "outcome", "outcome-forgetting")
STEMS = {"results": "outcomes"}  # results.csv and results.tex are the verdict table's
FORMATS = ("pdf", "svg", "png")


@dataclass(frozen=True)
class Entry:
    """One figure of the report: its file stem, title, caption, figure and the rows behind it."""

    stem: str
    title: str
    caption: str
    fig: go.Figure
    data: pd.DataFrame


@dataclass(frozen=True)
class Report:
    folder: Path
    files: dict[str, str]  # file name -> its one-line caption
    left_out: list[str]  # what the store had no data for, in words


def build_report(reader: Reader, sweep_or_run: str, out: str | Path, *, fmt: str = "pdf", width: str = "double",
                 reference: str = "lora", progress: bool = True,
                 on_step: Callable[[int, int, str], None] | None = None) -> Report:
    """Write the appendix of one sweep into `out` (created; only files inside it are written). `on_step(done,
    total, what)` hears each stage begin (the Results page's progress bar); `progress` is the terminal's."""
    if fmt not in FORMATS:
        raise GeodiagError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
    style = figures.PaperStyle(column=width)
    sweep = sweep_of(reader, sweep_or_run)
    table = verdicts(reader, sweep, reference)  # a sentence when the sweep has no finished run or no reference
    folder = export_folder(out)
    bar = tqdm(total=4, desc="report", unit="step", disable=not progress)

    def stage(what: str) -> None:
        bar.set_postfix_str(what)
        if on_step:
            on_step(bar.n, bar.total, what)

    stage("reading the figures' data")
    entries, left_out = collect(reader, sweep, table)
    bar.update()
    stage(f"rendering {len(entries)} figures in Chromium")
    files = {"README.md": "this index"}
    figures.export_figures([(e.stem, e.fig, e.data) for e in entries], folder, formats=(fmt,), style=style)
    for e in entries:
        files[f"{e.stem}.{fmt}"] = e.title
        files[f"{e.stem}.csv"] = f"the data behind {e.stem}.{fmt}"
    bar.update()
    stage("writing the tables")
    files |= _tables(folder, table, reference, sweep)
    bar.update()
    stage("putting appendix.pdf together")
    _appendix(folder, entries, table, reference, style)
    files["appendix.pdf"] = "every figure above, one per page under its caption, and the results table"
    inside(folder, "README.md").write_text(_index(sweep, reader, files, left_out))
    bar.update()
    bar.close()
    if on_step:
        on_step(bar.total, bar.total, "done")
    return Report(folder, files, left_out)


def report_zip(reader: Reader, sweep: str, **options) -> bytes:
    """The same folder as one zip (the Results page's download), built in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        report = build_report(reader, sweep, Path(tmp) / "report", progress=False, **options)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(report.folder.iterdir()):
                z.write(path, f"{report.folder.name}-{sweep}/{path.name}")
        return buf.getvalue()


def collect(reader: Reader, sweep: str, table: pd.DataFrame) -> tuple[list[Entry], list[str]]:
    """The report's figures in order, and what could not be drawn."""
    labels = figures.run_labels(reader.runs())
    entries, left_out = [], []
    for name in RESULTS_FIGURES:
        spec = figures.get_figure(name)
        data = figures.figure_data(reader, name, [sweep])
        fig = figures.build_figure(name, data, labels=labels) if not data.empty else None
        if fig is None or not fig.data:
            left_out.append(f"{name}: {spec.title} (no data; record it with `{spec.hint}`)")
            continue
        entries.append(Entry(STEMS.get(name, name), spec.title, spec.caption, fig, data))
    for row in table.itertuples():
        more, missing = _method_entries(reader, sweep, row.label)
        entries += more
        left_out += missing
    gid = _gid_entry(reader, sweep)
    if gid:
        entries.append(gid)
    else:
        left_out.append("gid: the sweep ran no shared `geodiag analyze gid` (only methods that need GIDs do)")
    return entries, left_out


def representative(reader: Reader, sweep: str, label: str) -> tuple[str, int, float]:
    """(run, seed, test accuracy) of the label's final run closest to its mean accuracy over seeds."""
    _, ids = final_runs(sweep_table(reader, sweep))[label]
    o = outcomes(reader, ids).dropna(subset=["accuracy"])
    if o.empty:
        raise GeodiagError(f"{label} has no evaluated final run in sweep {sweep}.")
    o = o.assign(gap=(o["accuracy"] - o["accuracy"].mean()).abs()).sort_values(["gap", "seed"])
    best = o.iloc[0]
    return str(best["run_id"]), int(best["seed"]), float(best["accuracy"])


def _method_entries(reader: Reader, sweep: str, label: str) -> tuple[list[Entry], list[str]]:
    rid, seed, acc = representative(reader, sweep, label)
    why = f"seed {seed}, the seed whose test accuracy ({acc:.1%}) is closest to {label}'s mean over seeds"
    atlas = figures.get_figure("atlas")
    alloc = atlas.read(reader, [rid])
    spectrum = figures.figure_data(reader, "spectrum", [rid])
    out, missing = [], []
    for stem, data, title, caption in (
            (f"allocation-{label}", alloc, f"{label}: per-layer allocation (seed {seed})",
             f"The rank of ΔW per layer and module type (blocks × rank) that {label} trains, and its trainable "
             f"parameters; {why}."),
            (f"spectrum-{label}", spectrum, f"{label}: ΔW spectrum (seed {seed})",
             f"The singular values of {label}'s ΔW at the end of training: (a) log10 σ per module, (b) stable rank "
             f"per layer, (c) nuclear against Frobenius norm, (d) the power-law exponent of σ_k; {why}.")):
        name = "atlas" if stem.startswith("allocation") else "spectrum"
        fig = figures.build_figure(name, data) if not data.empty else None
        if fig is None or not fig.data:
            what = ("per-layer allocation (a method with one rank everywhere records none)" if name == "atlas"
                    else "ΔW spectrum")
            missing.append(f"{stem}: run {rid} recorded no {what}")
            continue
        out.append(Entry(stem, title, caption, fig, data))
    return out, missing


def _gid_entry(reader: Reader, sweep: str) -> Entry | None:
    runs = reader.runs()
    gid = runs[(runs["kind"] == "analysis") & (runs["method"] == "gid") & (runs["sweep"] == sweep)
               & (runs["status"] == "finished")]
    if gid.empty:
        return None
    rid = str(gid["run_id"].iloc[0])
    data = figures.figure_data(reader, "gid", [rid])
    fig = figures.build_figure("gid", data)
    caption = ("The gradient intrinsic dimensionality (GID, RaLoRA §3.2) the sweep measured once on its training "
               "data before training: (a) per layer and module type, (b) against LoRA's rank, (c) over steps when "
               "a run recorded it, (d) the entropy GID against threshold ranks at three ε (log axes).")
    return Entry("gid", "The sweep's GID heatmap", caption, fig, data) if fig.data else None


def _tables(folder: Path, table: pd.DataFrame, reference: str, sweep: str) -> dict[str, str]:
    inside(folder, "results.tex").write_text(results_tex(table, reference, sweep=sweep))
    plain = table.assign(seeds=table["seeds"].map(lambda s: " ".join(map(str, s))))
    plain.to_csv(inside(folder, "results.csv"), index=False)
    return {"results.tex": f"the verdict table (booktabs; \\input it): each method against {reference}",
            "results.csv": "the numbers behind results.tex, unrounded (fractions, not percent)"}


def _appendix(folder: Path, entries: list[Entry], table: pd.DataFrame, reference: str, style) -> None:
    from pypdf import PdfWriter

    pages = [figures.captioned(e.fig, f"Figure {i}. {e.title}. {e.caption}", style)
             for i, e in enumerate(entries, start=1)]
    pages.append(figures.captioned(_table_figure(table, reference), f"Table 1. Each method against {reference} "
                                   "(results.tex, results.csv).", style))
    with tempfile.TemporaryDirectory() as tmp:
        writer = PdfWriter()
        for path in figures.render_pdfs(pages, Path(tmp)):
            writer.append(str(path))
        with inside(folder, "appendix.pdf").open("wb") as f:
            writer.write(f)


def _table_figure(table: pd.DataFrame, reference: str) -> go.Figure:
    def pct(x, signed=False):
        return "" if x is None or not math.isfinite(x) else (f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}")

    cells = [table["label"], table["lr"].map(lambda v: f"{v:.0e}" if v and math.isfinite(v) else "mixed"),
             [f"{pct(a)} ± {pct(s)}" for a, s in zip(table["accuracy"], table["accuracy_se"], strict=True)],
             [f"{pct(d, True)} [{pct(lo, True)}, {pct(hi, True)}]" if math.isfinite(d) else "—"
              for d, lo, hi in zip(table["delta"], table["ci_low"], table["ci_high"], strict=True)],
             table["mde"].map(pct), table["verdict"], table["forgetting"].map(lambda v: f"{v:+.3f}")]
    heads = ["method", "lr", "accuracy (%)", f"Δ vs {reference} [95% CI]", "MDE", "verdict", "forgetting"]
    return go.Figure(go.Table(header={"values": heads, "align": "left"}, cells={"values": cells, "align": "left"}))


def _index(sweep: str, reader: Reader, files: dict[str, str], left_out: list[str]) -> str:
    lines = [f"# Appendix of sweep `{sweep}`", "", f"Made by `geodiag report {sweep}` from `{reader.path}`. Each "
             "method's allocation and spectrum come from its representative seed: the final run whose test accuracy "
             "is closest to the method's mean. appendix.pdf gives every figure's full caption.", "",
             "| file | what it is |", "|---|---|", *[f"| `{k}` | {v} |" for k, v in files.items()]]
    if left_out:
        lines += ["", "Left out:", *[f"- {x}" for x in left_out]]
    return "\n".join(lines) + "\n"
