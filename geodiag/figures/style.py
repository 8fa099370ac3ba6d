"""One publication style for every figure: serif by default, sizes for one- and two-column layouts.

Interactive pages use the same builders; `paper_style` is applied only when exporting, so the screen
keeps Streamlit's theme while the PDF gets fixed fonts, white background and exact physical sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from geodiag.errors import GeodiagError
from geodiag.figures.paper import paper_layout

# Column widths at 72 px per inch, the unit kaleido maps to PDF points: 3.25 in and 6.75 in (a two-column paper's
# column and its full text width)
WIDTH_PX = {"single": 234, "double": 486}
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]  # Okabe-Ito
FONTS = {"serif": "Times New Roman, Times, Liberation Serif, DejaVu Serif, serif",
         "sans": "Helvetica, Arial, Liberation Sans, DejaVu Sans, sans-serif"}


@dataclass(frozen=True)
class PaperStyle:
    column: str = "double"  # single | double
    font: str = "serif"  # serif | sans | any CSS font family
    font_size: int = 8  # points, for every text (Chromium prints 8 as 7.8 pt: at least 7 as journals ask)
    aspect: float = 0.62  # a panel's plot area: height / width

    def __post_init__(self) -> None:
        if self.column not in WIDTH_PX:
            raise GeodiagError(f"The column must be 'single' or 'double', got {self.column!r}.")
        if not 8 <= self.font_size <= 24:
            raise GeodiagError(f"The font size must be between 8 and 24 points (print wants 7 at least, and "
                               f"Chromium sets 8 as 7.8), got {self.font_size!r}.")


def paper_style(fig: go.Figure, style: PaperStyle | None = None) -> go.Figure:
    """A copy of `fig` sized and styled for print: laid out in points at the column's width (geodiag.figures.paper),
    reflowed to one or two panels a row at single-column width."""
    s = style or PaperStyle()
    out = go.Figure(fig)
    family = FONTS.get(s.font, s.font)
    out.update_layout(template="simple_white", font={"family": family, "size": s.font_size, "color": "black"},
                      colorway=PALETTE, title={"text": None})
    out.update_annotations(font={"family": family, "size": s.font_size})
    out.update_xaxes(showline=True, mirror=False, ticks="outside", ticklen=3, automargin=False,
                     title_font={"size": s.font_size}, tickfont={"size": s.font_size})
    out.update_yaxes(showline=True, mirror=False, ticks="outside", ticklen=3, automargin=False,
                     title_font={"size": s.font_size}, tickfont={"size": s.font_size})
    return paper_layout(out, WIDTH_PX[s.column], s.font_size, s.aspect, narrow=s.column == "single")
