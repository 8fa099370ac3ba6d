"""Paper layout: a figure laid out in points at a column's width, so that its text stays legible and apart.

Plotly places subplot titles, axis titles, colour bars and the legend in fractions of the figure, which holds at
screen size and fails at 3.25 inches: titles run into each other, a colour bar lands on the next panel, the legend
on the x-axis titles. `paper_layout` measures each panel's text instead (an estimate from the font size: the text
is not rendered yet) and gives every piece its own band, in points:

    [title band]                                  one line per wrapped line of the panel's title
    [left band | plot area | right band]          y tick labels and title | the data | a colour bar, if any
    [bottom band]                                 x tick labels (rotated when categories crowd) and title
    ...one such row per row of panels, then the legend band, its title on top

Multi-panel figures reflow to fewer columns at single-column width (one panel per row up to four panels, two
beyond), and long titles wrap instead of running out of the page. Log axes label decades only. Tested by rendering
every figure's SVG in Chromium and checking its text boxes (tests/figures/test_paper_layout.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

CHAR = 0.56  # the average glyph's width over the font size (Times is narrower, Helvetica about this)
LINE = 1.3  # a line's height over the font size
TICK = 6.0  # tick length plus the gap to its label, points
MIN_PLOT_HEIGHT = 70.0  # points: below this a panel's data is unreadable
COLORBAR = 66.0  # points to the right of a panel with a colour bar: the bar, its tick labels and its title


@dataclass
class Panel:
    """One subplot: its axes, its title annotation, the traces it draws, and (after sizing) its bands."""

    x: str  # layout key of its x axis: "xaxis", "xaxis2", ...
    y: str
    dom_x: tuple[float, float]  # its domain before the layout, to move the notes placed inside it
    dom_y: tuple[float, float]
    title: int | None = None  # index of its title among the layout's annotations
    notes: list[int] = field(default_factory=list)  # annotations placed inside it in paper coordinates
    traces: list[int] = field(default_factory=list)
    colorbar: bool = False


def paper_layout(fig: go.Figure, width: float, font: float, aspect: float, *, narrow: bool) -> go.Figure:
    """`fig` laid out at `width` points with `font`-point text; panels `aspect` high for their width. `narrow`
    (a single column): one panel a row up to four panels, two beyond; else up to three a row."""
    if any(isinstance(t, go.Table) for t in fig.data):
        return _table(fig, width, font)
    panels = _panels(fig)
    if not panels:
        return fig
    cols = _columns(panels, ((1 if len(panels) <= 4 else 2) if narrow else 3))
    _log_decades(fig, panels)
    for p in panels:
        _constant_range(fig, p)
    grid = [panels[i:i + cols] for i in range(0, len(panels), cols)]
    left, right, pw, ph = _columns_sized(fig, grid, cols, width, font, aspect)
    widths = [[pw + (right[c] - _right(p) if c == len(row) - 1 else 0.0) for c, p in enumerate(row)]
              for row in grid]  # a row's last panel takes the colour-bar room it does not need
    rows = [(_title_band(fig, row, w, font), _bottom_band(fig, row, w, font)) for row, w in zip(grid, widths,
                                                                                              strict=True)]
    legend_h = _legend_band(fig, width, font)
    height = sum(t + ph + b for t, b in rows) + legend_h + 4.0
    y = 0.0  # points from the top
    for row, (top, bottom), w in zip(grid, rows, widths, strict=True):
        x = 0.0
        for c, p in enumerate(row):
            x += left[c]
            _place(fig, p, (x / width, (x + w[c]) / width), (1 - (y + top + ph) / height, 1 - (y + top) / height),
                   (w[c], ph, width), font)
            x += pw + right[c]
        y += top + ph + bottom
    _hide_unused(fig, panels)
    fig.update_layout(width=round(width), height=round(height), margin={"l": 0, "r": 0, "t": 0, "b": 0})
    if legend_h:
        fig.update_layout(legend={"orientation": "h", "x": 0.0, "xanchor": "left", "y": legend_h / height,
                                  "yanchor": "top", "title": {"side": "top", "font": {"size": font}},
                                  "font": {"size": font}, "itemsizing": "constant",
                                  "tracegroupgap": 0})
    return fig


def _columns_sized(fig: go.Figure, grid: list[list[Panel]], cols: int, width: float, font: float, aspect: float
                   ) -> tuple[list[float], list[float], float, float]:
    """Each column's left and right bands, and the panels' width and height, in points."""
    right = [max(_right(p) for p in col) for col in _transpose(grid, cols)]
    ph = math.inf  # a y title wraps to the panel's height, which depends on the bands: twice is enough
    for _ in range(2):
        left = [max(_left_band(fig, p, font, ph) for p in col) for col in _transpose(grid, cols)]
        pw = max(40.0, (width - sum(left) - sum(right)) / cols)
        ph = max(MIN_PLOT_HEIGHT, pw * aspect if cols > 1 or len(grid) > 1 else width * aspect)
    return left, right, pw, ph


def _right(p: Panel) -> float:
    return COLORBAR if p.colorbar else 8.0


def wrap(text: str, max_pt: float, font: float) -> tuple[str, int]:
    """`text` broken at spaces into lines at most `max_pt` wide (kept <br>s stay); the text and its line count."""
    if not text:
        return text, 0
    per_line = max(4, int(min(max_pt, 1e6) / (CHAR * font)))
    lines: list[str] = []
    for part in re.split(r"<br\s*/?>", text):
        line = ""
        for word, glue in _words(part, per_line):
            if line and len(_plain(line)) + len(glue) + len(_plain(word)) > per_line:
                lines.append(line)
                line = word
            else:
                line = f"{line}{glue}{word}" if line else word
        lines.append(line)
    return "<br>".join(lines), len(lines)


def _words(text: str, per_line: int) -> list[tuple[str, str]]:
    """(word, what joins it to the one before): a word longer than a line is cut after a slash or underscore
    (metric names: params/lora_reference), its pieces joined by nothing."""
    out = []
    for word in text.split(" "):
        glue = " "
        while len(_plain(word)) > per_line and re.search(r"[/_]", word[:per_line]):
            cut = max(word.rfind("/", 0, per_line), word.rfind("_", 0, per_line)) + 1
            out.append((word[:cut], glue))
            word, glue = word[cut:], ""
        out.append((word, glue))
    return out


def _plain(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def _width(text: str, font: float) -> float:
    return max((len(_plain(t)) for t in re.split(r"<br\s*/?>", text or "")), default=0) * CHAR * font


def _panels(fig: go.Figure) -> list[Panel]:
    """The figure's panels, top row first, left to right: an x axis, the y axis it is anchored to, and the traces
    and title that belong to them (a panel with neither is left out)."""
    layout = fig.layout
    keys = sorted([k for k in layout.to_plotly_json() if re.fullmatch(r"xaxis\d*", k)], key=_axis_number) or ["xaxis"]
    panels = []
    for xk in keys:
        xa = layout[xk]
        yk = "yaxis" + ((xa.anchor or "y")[1:] if xa.anchor not in (None, "free") else "")
        ya = layout[yk]
        panels.append(Panel(xk, yk, tuple(xa.domain or (0.0, 1.0)), tuple(ya.domain or (0.0, 1.0))))
    for i, t in enumerate(fig.data):
        xk, yk = "xaxis" + (getattr(t, "xaxis", None) or "x")[1:], "yaxis" + (getattr(t, "yaxis", None) or "y")[1:]
        for p in panels:
            if p.x == xk and p.y == yk:
                p.traces.append(i)
                p.colorbar |= _has_colorbar(t)
    for i, a in enumerate(layout.annotations):
        if a.xref == "paper" and a.yref == "paper" and a.yanchor == "bottom" and a.xanchor in (None, "center"):
            for p in panels:
                if p.title is None and abs(a.x - sum(p.dom_x) / 2) < 1e-6 and abs(a.y - p.dom_y[1]) < 1e-6:
                    p.title = i
    titles = {p.title for p in panels}
    for i, a in enumerate(layout.annotations):
        owner = next((p for p in panels if i not in titles and a.xref == "paper" and a.yref == "paper"
                      and _inside(a.x, a.y, p)), None)
        if owner:
            owner.notes.append(i)
    used = [p for p in panels if p.traces or (p.title is not None and layout.annotations[p.title].text)]
    return sorted(used, key=lambda p: (-round(p.dom_y[1], 6), p.dom_x[0]))


def _axis_number(key: str) -> int:
    digits = re.sub(r"\D", "", key)
    return int(digits) if digits else 1


def _has_colorbar(t) -> bool:
    if isinstance(t, go.Heatmap | go.Contour | go.Histogram2d):
        return t.showscale is not False
    marker = getattr(t, "marker", None)
    return bool(marker is not None and getattr(marker, "showscale", None))


def _columns(panels: list[Panel], max_cols: int) -> int:
    """The figure's own number of columns, at most `max_cols`."""
    own = len({round(p.dom_x[0], 6) for p in panels})
    return max(1, min(own, max_cols))


def _transpose(grid: list[list[Panel]], cols: int) -> list[list[Panel]]:
    return [[row[c] for row in grid if c < len(row)] for c in range(cols)]


def _values(fig: go.Figure, p: Panel, axis: str) -> np.ndarray | list[str]:
    """What the panel's traces put on one axis ("x" or "y"): numbers, or category labels."""
    out: list = []
    for i in p.traces:
        v = getattr(fig.data[i], axis, None)
        if v is not None:
            out.extend(np.asarray(v, dtype=object).ravel().tolist())
    if any(isinstance(v, str) for v in out):
        return [str(v) for v in out]
    nums = np.asarray([v for v in out if v is not None], dtype=float)
    return nums[np.isfinite(nums)]


def _tick_chars(fig: go.Figure, p: Panel, axis: str) -> int:
    """A tick label's width in characters, estimated as plotly would format the axis's values."""
    ax = fig.layout[p.x if axis == "x" else p.y]
    if ax.type == "log":
        return 4  # 10^-3, the exponent a superscript
    values = _values(fig, p, axis)
    if isinstance(values, list):
        return min(14, max((len(v) for v in values), default=1))
    if ax.range is not None:  # the labels span the range shown, not only the data
        values = np.concatenate([values, np.asarray(ax.range, dtype=float)])
    if not len(values):
        return 3
    top, span = float(np.abs(values).max()), float(values.max() - values.min())
    if top >= 1e4:
        return 6  # SI suffix: 460.8k
    step = span / 5 if span > 0 else max(top, 1.0) / 5
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    whole = len(str(int(top))) if top >= 1 else 1
    return whole + (decimals + 1 if decimals else 0) + int(values.min() < 0)


def _left_band(fig: go.Figure, p: Panel, font: float, ph: float) -> float:
    """Points left of the panel: its y tick labels and its title, wrapped to the panel's height `ph`."""
    _, lines = wrap(fig.layout[p.y].title.text or "", ph, font)
    return (_tick_chars(fig, p, "y") + 0.5) * CHAR * font + TICK + 4.0 + lines * LINE * font + 10.0


def _title_band(fig: go.Figure, row: list[Panel], widths: list[float], font: float) -> float:
    lines = 0
    for p, pw in zip(row, widths, strict=True):
        if p.title is not None:
            a = fig.layout.annotations[p.title]
            a.text, n = wrap(a.text, pw, font)
            lines = max(lines, n)
    return lines * LINE * font + 4.0


def _bottom_band(fig: go.Figure, row: list[Panel], widths: list[float], font: float) -> float:
    band = 0.0
    for p, pw in zip(row, widths, strict=True):
        ax = fig.layout[p.x]
        ticks = LINE * font
        values = _values(fig, p, "x")
        if isinstance(values, list) and values:
            labels = list(dict.fromkeys(values))
            if sum(len(v) + 1 for v in labels) * CHAR * font > pw:  # crowded categories: stand them up
                ax.tickangle = -90
                ticks = max(len(v) for v in labels) * CHAR * font
        elif ax.type != "log":  # as many numbers as fit side by side: plotly would tilt crowded ones into each other
            ax.nticks = max(2, int(pw // ((_tick_chars(fig, p, "x") + 3) * CHAR * font)))
        title, lines = wrap(ax.title.text or "", pw, font)
        ax.title.text = title
        band = max(band, TICK + ticks + lines * LINE * font + 18.0)
    return band


def _legend_band(fig: go.Figure, width: float, font: float) -> float:
    """Points below the panels for the legend: its entries packed in rows of the figure's width."""
    shown = [t for t in fig.data if t.showlegend is not False and t.name]
    if fig.layout.showlegend is False or not shown or (len(fig.data) == 1 and fig.layout.showlegend is None):
        fig.layout.showlegend = False  # plotly would otherwise put a lone entry to the right, narrowing the panels
        return 0.0
    size = font
    rows, used = 1, 0.0
    for t in shown:
        w = len(_plain(t.name)) * CHAR * size + 46.0  # the symbol (40 pt wide in plotly), its gap, the text
        if used and used + w > width:
            rows, used = rows + 1, 0.0
        used += w
    title = 1 if fig.layout.legend.title.text else 0
    # measured in Chromium: a row is 2.4 font sizes (symbol included), a title 1.4, and 10 pt of padding
    return 12.0 + rows * 2.4 * size + title * 1.4 * size


def _place(fig: go.Figure, p: Panel, dom_x: tuple[float, float], dom_y: tuple[float, float],
           size: tuple[float, float, float], font: float) -> None:
    """Move a panel, its title, its notes and its colour bar to the new domain; `size` is the panel's width and
    height and the figure's width, in points."""
    pw, ph, width = size
    fig.layout[p.x].domain, fig.layout[p.y].domain = dom_x, dom_y
    _y_title(fig, p, dom_x, dom_y, ph, font, width)
    if p.title is not None:
        fig.layout.annotations[p.title].update(x=sum(dom_x) / 2, y=dom_y[1], yanchor="bottom", xanchor="center")
    for i in p.notes:
        a = fig.layout.annotations[i]
        a.update(x=_move(a.x, p.dom_x, dom_x), y=_move(a.y, p.dom_y, dom_y))
        a.text, _ = wrap(a.text, pw * 0.95, font)
    for i in p.traces:
        t = fig.data[i]
        if _has_colorbar(t):
            bar = {"x": dom_x[1] + 4 / max(pw, 1) * (dom_x[1] - dom_x[0]), "xanchor": "left", "y": sum(dom_y) / 2,
                   "yanchor": "middle", "len": dom_y[1] - dom_y[0], "lenmode": "fraction", "thickness": 7, "xpad": 2,
                   "title": {"side": "right"}}
            (t.marker.colorbar if not isinstance(t, go.Heatmap | go.Contour | go.Histogram2d) else t.colorbar
             ).update(bar)


def _y_title(fig: go.Figure, p: Panel, dom_x: tuple[float, float], dom_y: tuple[float, float], ph: float,
             font: float, width: float) -> None:
    """The y title wrapped to the panel's height. Plotly sets a title's first line off the tick labels and runs the
    lines after it back into them: a wrapped title becomes an annotation held by its right edge left of them."""
    ya = fig.layout[p.y]
    text, lines = wrap(ya.title.text or "", ph, font)
    if lines <= 1:
        ya.title.text = text
        return
    ticks = _tick_chars(fig, p, "y") * CHAR * font + TICK + 4.0
    fig.add_annotation(text=text, textangle=-90, xref="paper", yref="paper", x=dom_x[0] - ticks / width,
                       y=sum(dom_y) / 2, xanchor="right", yanchor="middle", showarrow=False,
                       font={"size": font, "family": fig.layout.font.family})
    ya.title.text = None


def _constant_range(fig: go.Figure, p: Panel) -> None:
    """An axis whose values are all equal (a parameter count over steps) spans +-10% of the value: plotly would
    zoom to +-0.0005 and label 460.7995k."""
    for key, axis in ((p.x, "x"), (p.y, "y")):
        ax, values = fig.layout[key], _values(fig, p, axis)
        if ax.range is not None or ax.type in ("log", "category") or isinstance(values, list) or not len(values):
            continue
        lo, hi = float(values.min()), float(values.max())
        if hi - lo <= 1e-9 * max(abs(hi), 1e-300):
            pad = 0.1 * abs(hi) if hi else 1.0
            ax.range = [lo - pad, hi + pad]


def _inside(x: float | None, y: float | None, p: Panel) -> bool:
    return (x is not None and y is not None and p.dom_x[0] - 1e-6 <= x <= p.dom_x[1] + 1e-6
            and p.dom_y[0] - 1e-6 <= y <= p.dom_y[1] + 1e-6)


def _move(v: float, old: tuple[float, float], new: tuple[float, float]) -> float:
    span = old[1] - old[0]
    return new[0] + ((v - old[0]) / span if span else 0.5) * (new[1] - new[0])


def _hide_unused(fig: go.Figure, panels: list[Panel]) -> None:
    """Axes of empty cells (a grid with fewer panels than cells) are not drawn."""
    kept = {p.x for p in panels} | {p.y for p in panels}
    for key in fig.layout.to_plotly_json():
        if re.fullmatch(r"[xy]axis\d*", key) and key not in kept:
            fig.layout[key].visible = False


def _log_decades(fig: go.Figure, panels: list[Panel]) -> None:
    """Log axes label 1, 10, 100 (10^k): plotly's default also labels 2 and 5 within each decade."""
    for p in panels:
        for key in (p.x, p.y):
            if fig.layout[key].type == "log":
                fig.layout[key].update(dtick=1, exponentformat="power", minor={"ticks": "outside", "ticklen": 2})


def _table(fig: go.Figure, width: float, font: float) -> go.Figure:
    """A table figure: columns as wide as their longest text (scaled to the width), each cell as tall as its most
    wrapped text, the header likewise."""
    t = next(t for t in fig.data if isinstance(t, go.Table))
    heads = [str(h) for h in (t.header.values or ())]
    cells = [[str(v) for v in col] for col in (t.cells.values or ())]
    natural = [max([_width(h, font) for h in heads[i:i + 1]] + [_width(v, font) for v in col]) + 12
               for i, col in enumerate(cells)]
    k = (width - 4) / max(sum(natural), 1.0)
    widths = [w * k for w in natural]  # points; plotly reads columnwidth as proportions

    def lines(text: str, w: float) -> int:
        return wrap(text, w - 12, font)[1]

    head_lines = max((lines(h, w) for h, w in zip(heads, widths, strict=False)), default=1)
    cell_lines = max((lines(v, w) for col, w in zip(cells, widths, strict=True) for v in col), default=1)
    t.update(columnwidth=widths)
    t.header.update(values=[wrap(h, w - 12, font)[0] for h, w in zip(heads, widths, strict=False)],
                    height=head_lines * LINE * font + 8, font={"size": font})
    t.cells.update(values=[[wrap(v, w - 12, font)[0] for v in col] for col, w in zip(cells, widths, strict=True)],
                   height=cell_lines * LINE * font + 8, font={"size": font})
    n_rows = max((len(col) for col in cells), default=0)
    height = head_lines * LINE * font + 8 + n_rows * (cell_lines * LINE * font + 8) + 12
    fig.update_layout(width=round(width), height=round(height), margin={"l": 2, "r": 2, "t": 4, "b": 4})
    return fig
