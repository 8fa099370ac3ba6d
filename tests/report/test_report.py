"""`geodiag report` on the shipped sample store's protocol sweep: the folder holds what the index says, the LaTeX
table carries the verdicts' numbers, appendix.pdf has a page per figure at the column's width, and bad input is one
sentence with nothing written."""

import re
import shutil
from pathlib import Path

import pytest
from helpers import geodiag

from geodiag.figures.export import chromium_path
from geodiag.lab import verdicts
from geodiag.report import results_tex
from geodiag.store import Reader

SAMPLE = Path(__file__).resolve().parents[2] / "sample_runs" / "geodiag.duckdb"
SWEEP = "sample-protocol"

needs_chromium = pytest.mark.skipif(chromium_path() is None, reason="Debian chromium is not installed (make test "
                                                                    "installs it with apt-get)")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A copy: the report only reads, and the test proves it by comparing the runs table afterwards."""
    path = tmp_path_factory.mktemp("store") / "geodiag.duckdb"
    shutil.copyfile(SAMPLE, path)
    return path


@needs_chromium
def test_report_writes_a_self_contained_appendix(store, tmp_path):
    from pypdf import PdfReader

    before = Reader(store).runs()
    out = tmp_path / "appendix"
    done = geodiag("report", SWEEP, "--out", str(out), "--store", str(store), "--no-progress", timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appendix"]  # nothing outside the folder
    files = {p.name for p in out.iterdir()}
    index = (out / "README.md").read_text()
    listed = set(re.findall(r"^\| `([^`]+)` \|", index, re.M))
    assert listed == files  # the index names every file, and every file it names is there
    figures = {f[:-4] for f in files if f.endswith(".pdf") and f != "appendix.pdf"}
    assert {"outcomes", "lr", "forgetting", "gid", "spectrum-lora", "spectrum-ralora", "allocation-ralora"} <= figures
    assert all(f"{stem}.csv" in files for stem in figures)  # the data behind every figure
    pages = PdfReader(out / "appendix.pdf").pages
    assert len(pages) == len(figures) + 1  # a page per figure, and the table
    assert {round(float(p.mediabox.width)) for p in pages} == {486}  # 6.75 in: two columns
    assert "Figure 1. Outcomes at equal budget" in pages[0].extract_text()
    table = verdicts(Reader(store), SWEEP, "lora")
    assert (out / "results.tex").read_text() == results_tex(table, "lora", sweep=SWEEP)
    assert Reader(store).runs().equals(before)  # read-only


def test_the_latex_table_carries_the_verdicts_numbers(store):
    table = verdicts(Reader(store), SWEEP, "lora")
    tex = results_tex(table, "lora", sweep=SWEEP)
    rows = [line for line in tex.splitlines() if line.endswith(r"\\") and not line.startswith("Method")]
    assert len(rows) == len(table) and tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1
    for line, r in zip(rows, table.itertuples(), strict=True):
        cells = [c.strip() for c in line[:-2].split(" & ")]
        assert cells[0] == r.label.replace("_", r"\_")
        assert cells[3].startswith(f"{100 * r.accuracy:.1f}")  # percent, one decimal
        if r.label != "lora":
            lo = f"{100 * r.ci_low:+.1f}".replace("-", "$-$")
            assert cells[4].startswith(f"{100 * r.delta:+.1f}".replace("-", "$-$")) and lo in cells[4]
            assert cells[5] == f"{100 * r.mde:.1f}" and cells[6] == r.verdict


def test_bad_input_is_one_sentence_and_writes_nothing(store, tmp_path):
    unknown = geodiag("report", "no-such-sweep", "--out", str(tmp_path / "r"), "--store", str(store))
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "no sweep or run" in unknown.stderr
    a_file = tmp_path / "taken"
    a_file.write_text("mine")
    clash = geodiag("report", SWEEP, "--out", str(a_file), "--store", str(store))
    assert clash.returncode == 2 and "is a file; give a folder" in clash.stderr and a_file.read_text() == "mine"
    ref = geodiag("report", SWEEP, "--reference", "nope", "--out", str(tmp_path / "r"), "--store", str(store))
    assert ref.returncode == 2 and "no finished nope run" in ref.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no folder made for a refused report
