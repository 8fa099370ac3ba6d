"""Every exported figure is paper-ready: drawn from the shipped sample store (SmolLM2, 30 layers, a real sweep),
styled at single and double column, rendered to SVG by kaleido and opened in Chromium, where each text's box
(getBoundingClientRect, transforms applied) must overlap no other text, stay on the page and be at least 7 pt; the
legend must be whole and log axes must label decades only."""

import math
import re
from pathlib import Path

import pytest

from geodiag import figures
from geodiag.figures import figure_data
from geodiag.figures.export import _kaleido, chromium_path
from geodiag.figures.style import WIDTH_PX, PaperStyle, paper_style
from geodiag.store import Reader

SAMPLE = Path(__file__).resolve().parents[2] / "sample_runs" / "geodiag.duckdb"
CHROMIUM = "/usr/bin/chromium"
SLACK = 0.5  # points: anti-aliasing, not layout

pytestmark = pytest.mark.skipif(chromium_path() is None or not Path(CHROMIUM).exists(),
                                reason="Debian chromium is not installed (make test installs it with apt-get)")

BOXES = """() => {
  // boxes in the figure's own units (points): the root says width="486pt", so the browser draws it 4/3 larger
  const svg = document.querySelector('svg');
  const page = svg.getBoundingClientRect(), view = svg.viewBox.baseVal, k = view.width / page.width;
  const box = r => [(r.left - page.left) * k, (r.top - page.top) * k, (r.right - page.left) * k,
                    (r.bottom - page.top) * k];
  const texts = [];
  for (const t of svg.querySelectorAll('text')) {
    if (!t.textContent.trim()) continue;
    const r = t.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const tick = t.closest('g[class$="tick"]');
    texts.push({text: t.textContent, box: box(r), size: parseFloat(getComputedStyle(t).fontSize),
                tick: tick ? tick.getAttribute('class') : null, legend: !!t.closest('g.legend')});
  }
  const lg = svg.querySelector('g.legend');
  return {width: view.width, height: view.height, units: svg.getAttribute('width'), texts,
          legend: lg ? box(lg.getBoundingClientRect()) : null};
}"""


def drawn(reader: Reader, name: str):
    """The figure as the dashboard first shows it: from the first run (of the preferred kind) that has its data."""
    spec, runs = figures.get_figure(name), reader.runs()
    order = runs.sort_values("kind", key=lambda k: k != spec.prefer, kind="stable")["run_id"]
    for rid in order:
        data = figure_data(reader, name, [rid])
        if not data.empty:
            fig = figures.build_figure(name, data, **figures.figure_options(name, reader.run(rid)))
            if fig.data:
                return fig
    pytest.fail(f"the sample store has no data for the {name} figure")


def overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return min(w, h) if w > 0 and h > 0 else 0.0


def problems(info: dict, log_axes: set[str]) -> list[str]:
    out, texts = [], info["texts"]
    page = (0, 0, info["width"], info["height"])
    for t in texts:
        x0, y0, x1, y1 = t["box"]
        if x0 < -SLACK or y0 < -SLACK or x1 > page[2] + SLACK or y1 > page[3] + SLACK:
            out.append(f"{t['text']!r} leaves the page at {[round(v) for v in t['box']]}")
        if t["size"] < 7:
            out.append(f"{t['text']!r} is {t['size']} pt")
        axis = re.match(r"([xy]\d*)tick", t["tick"] or "")
        if axis and axis.group(1) in log_axes and not decade(t["text"]):
            out.append(f"log axis {axis.group(1)} labels {t['text']!r}, not a decade")
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if overlap(a["box"], b["box"]) > SLACK:
                out.append(f"{a['text']!r} overlaps {b['text']!r}")
    for t in texts:
        if info["legend"] and not t.get("legend") and overlap(t["box"], info["legend"]) > SLACK:
            out.append(f"the legend covers {t['text']!r}")
    if info["legend"] and overlap(info["legend"], page) < min(info["legend"][2] - info["legend"][0],
                                                              info["legend"][3] - info["legend"][1]) - SLACK:
        out.append(f"the legend {[round(v) for v in info['legend']]} is cut by the page")
    return out


def decade(label: str) -> bool:
    """1, 10, 0.01, or 10 with a superscript exponent (plotly writes 10<sup>−3</sup> as text '10−3')."""
    plain = label.replace("\u200b", "").replace("−", "-").strip()
    if re.fullmatch(r"10-?\d+", plain) and len(plain) > 2:
        return True
    try:
        return math.isclose(math.log10(float(plain)) % 1, 0, abs_tol=1e-9)
    except ValueError:
        return False


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every figure at both widths as SVG, in one kaleido call, and each page's text boxes from Chromium."""
    from playwright.sync_api import sync_playwright

    out, reader = tmp_path_factory.mktemp("paper"), Reader(str(SAMPLE))
    jobs, logs = [], {}
    for name in figures.FIGURES:
        fig = drawn(reader, name)
        for column in WIDTH_PX:
            styled = paper_style(fig, PaperStyle(column=column))
            logs[(name, column)] = {k.replace("axis", "") for k, v in styled.layout.to_plotly_json().items()
                                    if re.fullmatch(r"[xy]axis\d*", k) and v.get("type") == "log"}
            jobs.append((styled, out / f"{name}-{column}.svg", "svg"))
    _kaleido(jobs, 300, 600)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        boxes = {}
        for (name, column), (_, path, _) in zip(logs, jobs, strict=True):
            page.goto(path.as_uri())
            boxes[(name, column)] = page.evaluate(BOXES)
        browser.close()
    return boxes, logs


@pytest.mark.parametrize("column", list(WIDTH_PX))
def test_every_figure_is_legible_at_column_width(rendered, column):
    boxes, logs = rendered
    found = {name: problems(boxes[(name, column)], logs[(name, column)]) for name in figures.FIGURES}
    assert not any(found.values()), {k: v[:5] for k, v in found.items() if v}
    for name in figures.FIGURES:
        info = boxes[(name, column)]
        assert info["units"] == f"{WIDTH_PX[column]}pt", name  # 3.25 in or 6.75 in, at 72 pt per inch
        assert len(info["texts"]) > 3, name  # the page drew text: the checks above had something to check


def test_the_checks_catch_what_they_look_for():
    """The checker itself, on boxes made by hand: an overlap, a text off the page, a small font, a 2-5 log label
    and a cut legend are each found; a clean page is clean."""
    text = {"text": "a", "box": [10, 10, 40, 20], "size": 8, "tick": None}
    clean = {"width": 100, "height": 100, "texts": [text, {**text, "text": "b", "box": [50, 10, 90, 20]}],
             "legend": [0, 80, 100, 100]}
    assert problems(clean, set()) == []
    crowded = {**clean, "texts": [text, {**text, "text": "b", "box": [30, 15, 60, 25]}]}
    assert problems(crowded, set()) == ["'a' overlaps 'b'"]
    off = {**clean, "texts": [{**text, "box": [80, 10, 120, 20]}], "legend": [0, 90, 100, 110]}
    assert len(problems(off, set())) == 2  # the text and the legend
    assert problems({**clean, "texts": [{**text, "size": 6}]}, set()) == ["'a' is 6 pt"]
    ticks = [{**text, "text": label, "tick": "x4tick", "box": [10 * i, 50, 10 * i + 5, 55]}
             for i, label in enumerate(["1", "2", "10\u200b−3\u200b", "0.01", "5"])]
    assert [p.split("labels ")[1] for p in problems({**clean, "texts": ticks}, {"x4"})] == [
        "'2', not a decade", "'5', not a decade"]
