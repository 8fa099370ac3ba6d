"""One publication style for every figure: serif by default, sizes for one- and two-column layouts.

Interactive pages use the same builders; `paper_style` is applied only when exporting, so the screen
keeps Streamlit's theme while the PDF gets fixed fonts, white background and exact physical sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

# Column widths at 72 px per inch, the unit kaleido maps to PDF points: 3.5 in and 7.16 in (IEEE/ACM/NeurIPS-like)
WIDTH_PX = {"single": 252, "double": 516}
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]  # Okabe-Ito
FONTS = {"serif": "Times New Roman, Times, Liberation Serif, DejaVu Serif, serif",
         "sans": "Helvetica, Arial, Liberation Sans, DejaVu Sans, sans-serif"}


@dataclass(frozen=True)
class PaperStyle:
    column: str = "double"  # single | double
    font: str = "serif"  # serif | sans | any CSS font family
    font_size: int = 8  # points
    aspect: float = 0.62  # height / width for one panel row; multi-row figures scale it

    def __post_init__(self) -> None:
        if self.column not in WIDTH_PX:
            raise ValueError(f"column must be 'single' or 'double', got {self.column!r}.")
        if not 5 <= self.font_size <= 24:
            raise ValueError(f"font_size must be between 5 and 24 points, got {self.font_size!r}.")


def paper_style(fig: go.Figure, style: PaperStyle | None = None, rows: int = 1) -> go.Figure:
    """A copy of `fig` sized and styled for print."""
    s = style or PaperStyle()
    out = go.Figure(fig)
    width = WIDTH_PX[s.column]
    family = FONTS.get(s.font, s.font)
    out.update_layout(
        template="simple_white", width=width, height=round(width * s.aspect * max(1, rows) ** 0.85),
        font={"family": family, "size": s.font_size, "color": "black"},
        margin={"l": 44, "r": 12, "t": 28, "b": 72}, colorway=PALETTE,
        legend={"font": {"size": s.font_size - 1}, "orientation": "h", "x": 0.5, "xanchor": "center",
                "y": -0.16 if rows == 1 else -0.09, "yanchor": "top"},
        title={"font": {"size": s.font_size + 1}},
    )
    out.update_annotations(font={"family": family, "size": s.font_size})
    out.update_xaxes(showline=True, mirror=False, ticks="outside", title_font={"size": s.font_size})
    out.update_yaxes(showline=True, mirror=False, ticks="outside", title_font={"size": s.font_size})
    return out
