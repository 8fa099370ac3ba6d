"""The dashboard's pages, listed once: app.py builds its navigation from them, the Runs page links to them,
and the tests render each of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to app.py
    title: str
    icon: str
    shows: str  # what a user finds there, for the Runs page's links
    default: bool = False

    @property
    def url(self) -> str:
        """The URL path Streamlit gives it (the file's stem; the default page is the root)."""
        return "" if self.default else self.path.rsplit("/", 1)[-1].removesuffix(".py")


PAGES = (
    PageSpec("pages/runs.py", "Runs", ":material/table_rows:", "every run and its outcome", default=True),
    PageSpec("pages/dynamics.py", "Training dynamics", ":material/show_chart:", "losses and every scalar curve"),
    PageSpec("pages/gates.py", "Gates & effective rank", ":material/tune:", "ManifoldLoRA's gates"),
    PageSpec("pages/geometry.py", "Manifold geometry", ":material/scatter_plot:", "probes, PR, subspace angles"),
    PageSpec("pages/spectrum.py", "ΔW spectrum", ":material/equalizer:", "singular values, norms, power law"),
    PageSpec("pages/gid.py", "GID (RaLoRA)", ":material/grid_on:", "gradient intrinsic dimensionality"),
    PageSpec("pages/intrinsic.py", "Intrinsic dimension", ":material/timeline:", "GeLoRA's TwoNN profile"),
    PageSpec("pages/atlas.py", "Rank allocation atlas", ":material/view_week:", "every allocation on one axis"),
    PageSpec("pages/results.py", "Results", ":material/leaderboard:", "which method wins at equal budget, over seeds"),
    PageSpec("pages/lab.py", "Allocation lab", ":material/science:", "rules and conventions, exported for peft"),
    PageSpec("pages/launch.py", "Launch", ":material/rocket_launch:", "start and cancel runs"),
)
