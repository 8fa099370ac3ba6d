"""The Results page and the allocation lab, rendered (AppTest) on a real store: every run of the sweep a point,
the lab's numbers those of the allocation rules, and "Train this allocation" handing the file to Launch."""

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from geodiag import allocation as alloc
from geodiag.figures.export import chromium_path
from geodiag.lab import outcomes, stored_analysis, sweep_run_ids
from geodiag.store import Reader

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SAMPLE = Path(__file__).resolve().parents[2] / "sample_runs" / "geodiag.duckdb"


def open_page(store, page: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["store"] = str(store)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(f"pages/{page}").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def run_points(at: AppTest) -> int:
    """Points drawn one per run in the results figure's accuracy panel (the per-run traces carry seed labels)."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    # plotly may encode x as a typed array; each per-run point has its own "label seed s" text
    return sum(len(t["text"]) for t in spec["data"] if t.get("xaxis", "x") == "x" and "seed" in str(t.get("text")))


def sweep_runs(store, sweep: str) -> int:
    runs = Reader(store).runs()
    return int(((runs["sweep"] == sweep) & (runs["kind"] == "train") & (runs["status"] == "finished")).sum())


def test_results_page_draws_every_run_of_the_sweep(dashboard_store):
    at = open_page(dashboard_store["store"], "results.py", run=dashboard_store["ids"]["manifold"])
    assert at.selectbox(key="results-sweep").value == "fixture-sweep"
    assert run_points(at) == sweep_runs(dashboard_store["store"], "fixture-sweep") == 4
    charts = [c.key for c in at.get("plotly_chart")]  # no learning-rate grid in this sweep: no lr curves
    assert charts == ["chart-results", "chart-forgetting", "chart-outcome", "chart-outcome-forgetting"]
    verdicts, spearman = at.dataframe  # `geodiag results`'s table (in points), then geometry against the gain
    assert list(verdicts.value["label"]) == ["lora", "dora", "ralora", "manifold"]
    assert list(verdicts.value["verdict"]) == ["reference"] + ["indistinguishable"] * 3 and len(spearman.value) == 4
    assert any("can detect" in w.value or "has an interval" in w.value for w in [*at.warning, *at.info])


def test_results_page_draws_the_learning_rate_curves_of_a_selection(dashboard_store):
    at = open_page(dashboard_store["store"], "results.py", run=dashboard_store["ids"]["select-0.001"])
    assert at.selectbox(key="results-sweep").value == "fixture-select" and not at.exception
    charts = {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    curve = next(t for t in charts["chart-lr"]["data"] if t.get("mode") == "lines+markers")
    x = curve["x"]  # plotly may send a typed array
    x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]) if isinstance(x, dict) else np.array(x)
    assert sorted(x.tolist()) == [1e-3, 3e-2]  # dev accuracy at both grid values


@pytest.mark.skipif(not SAMPLE.exists(), reason="no sample store")
def test_results_page_on_the_sample_store(tmp_path):
    runs = Reader(SAMPLE).runs()
    sweeps = runs["sweep"].dropna()
    if sweeps.empty:
        pytest.fail("the sample store has no sweep: rebuild it with `make sample-runs`")
    at = open_page(SAMPLE, "results.py", **{"results-sweep": "sample-r8"})
    assert run_points(at) == sweep_runs(SAMPLE, "sample-r8") >= 16  # no grid: every run is compared
    at = open_page(SAMPLE, "results.py", **{"results-sweep": "sample-protocol"})
    compared = outcomes(Reader(SAMPLE), sweep_run_ids(Reader(SAMPLE), "sample-protocol"))["final"]
    assert run_points(at) == int(compared.sum()) < len(compared)  # each label at its chosen rate only


def test_the_lab_shows_the_rules_numbers_and_trains_the_file_through_launch(dashboard_store, tmp_path):
    import shutil

    store = tmp_path / "s.duckdb"
    shutil.copyfile(dashboard_store["store"], store)
    gid = dashboard_store["ids"]["gid"]
    at = open_page(store, "lab.py", **{"lab-run": gid, "lab-rule": "ralora-pro", "lab-preset": "official",
                                       "lab-other": "paper", "lab-r": 4})
    stored = stored_analysis(Reader(store), gid)
    plan = alloc.plan(alloc.Settings("ralora-pro", "official", r=4), stored.vectors, stored.shapes)
    assert at.metric[0].value == f"{plan.params:,}" and at.metric[1].value == f"{plan.peft_params:,}"
    assert len(at.get("plotly_chart")) == 1
    at.button[0].click().run()  # Train this allocation
    assert not at.exception
    saved = Path(at.session_state["l-allocation"])
    assert saved.parent == store.parent / "allocations" and json.loads(saved.read_text())["params"] == plan.params
    assert at.session_state["l-method"] == "ralora-pro" and at.text_input(key="l-allocation").value == str(saved)


def test_the_lab_offers_the_spectral_rules_on_a_spectra_analysis(dashboard_store, tmp_path):
    import shutil

    from geodiag.analysis import analyze_spectra
    from geodiag.config import AnalyzeConfig

    store = tmp_path / "s.duckdb"
    shutil.copyfile(dashboard_store["store"], store)
    rid = analyze_spectra(AnalyzeConfig(model="tiny", store=str(store)), progress=False)
    at = open_page(store, "lab.py", **{"lab-run": rid, "lab-rule": "alpha-share"})
    assert at.selectbox(key="lab-rule").options == ["alpha", "alpha-share", "stable-rank"]
    stored = stored_analysis(Reader(store), rid)
    plan = alloc.plan(alloc.Settings("alpha-share"), stored.vectors, stored.shapes)
    assert at.metric[0].value == f"{plan.params:,}"
    beta = at.number_input(key="lab-const-alpha-share-beta")
    assert beta.value == 2.5 and "paper: 2.5" in beta.label  # AlphaLoRA's own exponent, pre-filled
    beta.set_value(0.0).run()
    equal = alloc.plan(alloc.Settings("alpha-share", constants=(("beta", 0.0),)), stored.vectors, stored.shapes)
    assert at.metric[0].value == f"{equal.params:,}" and equal.params == plan.lora_params  # alpha^0: LoRA's ranks
    at.button[0].click().run()  # Train this allocation: the method made from the rule, with the file
    assert not at.exception
    assert at.session_state["l-method"] == "lora-alpha-share"
    saved = json.loads(Path(at.session_state["l-allocation"]).read_text())
    assert saved["rule"] == "alpha-share" and saved["constants"] == {"beta": 0.0}


@pytest.mark.skipif(not SAMPLE.exists() or chromium_path() is None, reason="no sample store or no Chromium")
def test_results_page_hands_over_the_appendix_as_one_zip():
    import io
    import zipfile

    at = open_page(SAMPLE, "results.py", **{"results-sweep": "sample-protocol"})
    at.button(key="report-build").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    sweep, blob = at.session_state["report-zip"]
    names = {Path(n).name for n in zipfile.ZipFile(io.BytesIO(blob)).namelist()}
    assert sweep == "sample-protocol" and {"README.md", "results.tex", "results.csv", "appendix.pdf",
                                           "outcomes.pdf", "outcomes.csv", "lr.pdf"} <= names
