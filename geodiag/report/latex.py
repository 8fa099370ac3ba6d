"""A sweep's verdicts as a booktabs table a paper can `\\input`: one row per method, the numbers `geodiag results`
prints, accuracy and its differences in percentage points."""

from __future__ import annotations

import math

import pandas as pd

from geodiag.lab import METHOD

_ESCAPE = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
           "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    return "".join(_ESCAPE.get(c, c) for c in str(text))


def results_tex(table: pd.DataFrame, reference: str, *, sweep: str) -> str:
    """The `table` environment: method, parameters, chosen rate, accuracy mean ± s.e., Δ vs the reference with its
    95% interval, MDE, verdict and forgetting; a caption that says how the numbers were made."""
    rows = [" & ".join(_cells(r)) + r" \\" for r in table.itertuples()]
    caption = (f"Test exact-match accuracy (\\%) on sweep \\texttt{{{escape(sweep)}}}: mean $\\pm$ standard error over "
               f"seeds and items; $\\Delta$ is each method minus {escape(reference)} on the same seeds and test items, "
               f"in points, with its 95\\% interval from a {escape(METHOD)}; MDE is the smallest difference the "
               "comparison detects with 80\\% power at 5\\%; $p$ is Holm-adjusted across methods. Forgetting is the "
               "rise of the mean token loss on general text.")
    return "\n".join([
        "% geodiag report: \\input{results.tex} (needs \\usepackage{booktabs})",
        r"\begin{table}[t]", r"\centering", r"\small", r"\setlength{\tabcolsep}{4pt}",
        r"\begin{tabular}{lrrrrrlr}", r"\toprule",
        rf"Method & Params & LR & Accuracy & $\Delta$ vs {escape(reference)} [95\% CI] & MDE & Verdict & Forgetting \\",
        r"\midrule", *rows, r"\bottomrule", r"\end{tabular}",
        rf"\caption{{{caption}}}", r"\label{tab:geodiag-results}", r"\end{table}", ""])


def _cells(r) -> list[str]:
    acc = _pct(r.accuracy) + (f" $\\pm$ {_pct(r.accuracy_se)}" if _finite(r.accuracy_se) else "")
    delta = "---" if not _finite(r.delta) else _signed(r.delta) + (
        f" [{_signed(r.ci_low)}, {_signed(r.ci_high)}]" if _finite(r.ci_low) else "")
    lr = "mixed" if r.lr is None or not _finite(r.lr) else _sci(r.lr)
    params = f"{int(r.params):,}".replace(",", "{,}") if _finite(r.params) else "---"
    return [escape(r.label), params, lr, acc, delta, _pct(r.mde) if _finite(r.mde) else "---", escape(r.verdict),
            f"{r.forgetting:+.3f}".replace("-", "$-$") if _finite(r.forgetting) else "---"]


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _signed(x: float) -> str:
    return f"{100 * x:+.1f}".replace("-", "$-$")


def _sci(x: float) -> str:
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"${mantissa}\\times10^{{{int(exponent)}}}$" if mantissa != "1" else f"$10^{{{int(exponent)}}}$"
