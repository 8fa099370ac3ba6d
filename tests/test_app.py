"""Every dashboard page renders without exceptions (AppTest) for a ManifoldLoRA run, a LoRA run, an empty
store, several runs selected and a run still writing; broken stores give one sentence."""

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from geodiag.store import Writer

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = sorted(p.name for p in (ROOT / "pages").glob("*.py"))
FIGURE_PAGES = {"dynamics.py", "gates.py", "geometry.py", "spectrum.py", "gid.py", "intrinsic.py", "atlas.py"}


def run_app(store, page: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["store"] = str(store)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(f"pages/{page}").run()
    return at


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


@pytest.fixture(scope="module")
def writing_store(dashboard_store, tmp_path_factory):
    """A copy of the dashboard store plus a run that is still writing (this live process is its writer)."""
    store = tmp_path_factory.mktemp("writing") / "s.duckdb"
    shutil.copyfile(dashboard_store["store"], store)
    w = Writer(store)
    rid = w.create_run(name="live", kind="train", method="manifold", model="tiny", config={"steps": 100})
    w.append(rid, [{"step": s, "name": "loss/lm", "value": 3.0 - 0.1 * s} for s in range(1, 4)])
    return store, rid


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_a_manifold_run(dashboard_store, page):
    at = run_app(dashboard_store["store"], page, run=dashboard_store["ids"]["manifold"])
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    if page in FIGURE_PAGES - {"gid.py", "intrinsic.py"}:
        assert charts(at) >= 1, page


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_a_lora_run(dashboard_store, page):
    at = run_app(dashboard_store["store"], page, run=dashboard_store["ids"]["lora"])
    assert not at.exception and not at.error
    if page in ("gates.py",):  # no gates in LoRA: the page names the command instead of an empty chart
        assert charts(at) == 0 and "geodiag train --method manifold" in at.info[0].value


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_several_runs_selected(dashboard_store, page):
    ids = dashboard_store["ids"]
    at = run_app(dashboard_store["store"], page, run=ids["manifold"], compare=[ids["lora"], ids["full"]])
    assert not at.exception and not at.error


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_a_run_still_writing(writing_store, page):
    store, rid = writing_store
    at = run_app(store, page, run=rid)
    assert not at.exception and not at.error


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_an_empty_store(tmp_path, page):
    from geodiag.store._db import connect

    store = tmp_path / "s.duckdb"
    with connect(store, read_only=False):  # a valid geodiag store with no runs
        pass
    at = run_app(store, page)
    assert not at.exception
    if page != "launch.py":
        assert "has no runs yet" in at.info[0].value


def test_runs_table_shows_outcomes(dashboard_store):
    at = run_app(dashboard_store["store"])
    df = at.dataframe[0].value.set_index("run_id")
    lora = dashboard_store["ids"]["lora"]
    assert df.loc[lora, "method"] == "lora" and df.loc[lora, "steps"] == 6
    assert 0 < df.loc[lora, "final_loss"] < 20 and 0 <= df.loc[lora, "acc_after"] <= 1


def test_gid_page_shows_the_fisher_table(dashboard_store):
    at = run_app(dashboard_store["store"], "gid.py", run=dashboard_store["ids"]["gid"])
    assert not at.exception and charts(at) >= 1
    table = at.dataframe[0].value
    assert {"module_type", "pearson_log", "spearman"} <= set(table.columns)


@pytest.mark.parametrize("content, message", [
    (None, "There is no store at"),
    ("garbage", "is not a DuckDB database"),
])
def test_missing_or_broken_store_shows_one_sentence(tmp_path, content, message):
    store = tmp_path / "s.duckdb"
    if content is not None:
        store.write_text(content)
    for page in (None, "gates.py"):
        at = run_app(store, page)
        assert not at.exception
        assert any(message in e.value for e in at.error)


def test_rename_and_delete_from_the_runs_page(dashboard_store, tmp_path):
    store = tmp_path / "s.duckdb"
    shutil.copyfile(dashboard_store["store"], store)
    rid = dashboard_store["ids"]["lora"]
    at = run_app(store)
    at.selectbox(key="manage-run").set_value(rid).run()
    at.text_input(key="manage-name").input("renamed lora").run()
    next(b for b in at.button if b.label == "Rename").click().run()
    assert not at.exception and any("Renamed" in s.value for s in at.success)
    from geodiag.store import Reader

    assert Reader(store).run(rid)["name"] == "renamed lora"
    at.checkbox(key="manage-sure").check().run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert rid not in set(Reader(store).runs()["run_id"])


def test_launch_offers_pickers_and_follows_a_running_analysis(tmp_path):
    store = tmp_path / "s.duckdb"
    w = Writer(store)
    rid = w.create_run(name="gid sweep", kind="analysis", method="gid", model="tiny", config={"batches": 16})
    w.append(rid, [{"step": s, "name": "analysis/progress", "value": s / 16} for s in (1, 2, 3, 4)])
    at = run_app(store, "launch.py")
    assert not at.exception
    task = at.selectbox(key="l-task")
    assert task.value == "basic_arithmetic" and "leg_counting" in task.options  # every reasoning-gym task
    assert at.selectbox(key="l-manifold-probe_mode").options == ["learned", "pca"]  # the config's choices
    assert at.selectbox(key="l-dtype").options == ["auto", "float32", "bfloat16"]
    bars = [e.proto for e in at.get("progress")]
    assert [(b.value, b.text) for b in bars] == [(25, "4 / 16 batches")]  # read from the store alone
