"""Every dashboard page renders without exceptions (AppTest) for a ManifoldLoRA run, a LoRA run, an empty
store, several runs selected and a run still writing; broken stores give one sentence."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from geodiag.store import Writer
from geodiag.ui import PAGES as PAGE_SPECS

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = [p.path.removeprefix("pages/") for p in PAGE_SPECS]  # the one page list app.py navigates
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


def test_the_page_list_is_the_pages_folder():
    assert sorted(PAGES) == sorted(p.name for p in (ROOT / "pages").glob("*.py"))
    assert [p.default for p in PAGE_SPECS].count(True) == 1


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
    if page in FIGURE_PAGES:  # GID and ID come from the newest analysis of the run's model
        assert charts(at) >= 1, page


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_a_lora_run(dashboard_store, page):
    at = run_app(dashboard_store["store"], page, run=dashboard_store["ids"]["lora"])
    assert not at.exception and not at.error
    if page in ("gates.py",):  # no gates in LoRA: the newest ManifoldLoRA run of the model stands in, said so
        assert charts(at) >= 1 and at.selectbox(key="fallback-gates").value == dashboard_store["ids"]["manifold"]


def test_the_spectrum_page_of_a_dora_run_adds_its_magnitude_and_direction(dashboard_store):
    at = run_app(dashboard_store["store"], "spectrum.py", run=dashboard_store["ids"]["dora"])
    assert not at.exception and not at.error
    assert charts(at) == 3 and "DoRA: magnitude and direction" in [h.value for h in at.subheader]
    lora = run_app(dashboard_store["store"], "spectrum.py", run=dashboard_store["ids"]["lora"])
    assert charts(lora) == 2  # spectrum and intruders: a LoRA run has no magnitude vector, so no DoRA section


def test_a_figure_no_run_of_the_model_can_draw_names_the_command(dashboard_store, tmp_path):
    store = tmp_path / "s.duckdb"
    shutil.copyfile(dashboard_store["store"], store)
    Writer(store).delete_run(dashboard_store["ids"]["manifold"])  # the only run with gates
    at = run_app(store, "gates.py", run=dashboard_store["ids"]["lora"])
    assert not at.exception and charts(at) == 0 and "geodiag train --method manifold" in at.info[0].value


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
    at.toggle(key="l-advanced").set_value(True).run()
    assert at.selectbox(key="l-dtype").options == ["auto", "float32", "bfloat16"]
    bars = [e.proto for e in at.get("progress")]
    assert [(b.value, b.text) for b in bars] == [(25, "4 / 16 batches")]  # read from the store alone


def test_a_figure_without_data_in_the_sidebar_run_shows_the_newest_run_that_has_it(dashboard_store):
    ids = dashboard_store["ids"]
    at = run_app(dashboard_store["store"], "gid.py", run=ids["manifold"])
    assert not at.exception and charts(at) >= 1
    picker = at.selectbox(key="fallback-gid")
    assert picker.value == ids["gid"]  # an analysis first, though newer training runs also carry GIDs
    from geodiag.figures import run_labels
    from geodiag.store import Reader

    label = run_labels(Reader(dashboard_store["store"]).runs())
    assert set(picker.options) == {label[ids[m]] for m in ("gid", "ralora", "full")}  # the runs with GIDs
    assert any("has no data for this figure" in c.value for c in at.caption)
    picker.set_value(ids["full"]).run()
    assert not at.exception and charts(at) >= 1
    at = run_app(dashboard_store["store"], "intrinsic.py", run=ids["lora"])
    assert at.selectbox(key="fallback-id").value == ids["id"] and charts(at) == 1


def test_every_page_renders_without_importing_torch(dashboard_store):
    """A fresh interpreter renders every page with AppTest and has still imported neither torch nor
    geodiag's models, adapters, collectors, analyses or trainer: the dashboard reads the store and the
    (torch-free) configs only."""
    code = textwrap.dedent(f"""
        import sys
        from streamlit.testing.v1 import AppTest
        from geodiag.ui import PAGES
        for p in PAGES:
            at = AppTest.from_file({APP!r}, default_timeout=120)
            at.session_state["store"] = {dashboard_store["store"]!r}
            at.run()
            at.switch_page(p.path).run()
            assert not at.exception, (p.path, at.exception)
        engine = ("geodiag.models", "geodiag.collectors", "geodiag.analysis", "geodiag.train", "geodiag.integrations",
                  "geodiag.methods.base", "geodiag.methods.hooks", "geodiag.methods.peft_adapted")
        leaked = sorted(m for m in sys.modules if m in ("torch", "transformers", "peft") or m.startswith(engine)
                        or (m.startswith("geodiag.methods.") and m.endswith(".model")))
        assert not leaked, leaked
        print(len(PAGES), "pages")
    """)
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == f"{len(PAGES)} pages"


def test_the_launch_form_and_the_cli_share_one_schema(tmp_path, monkeypatch):
    """What the form puts on the command line is what the CLI parses: only changed options, under the flag
    names the CLI renders from the same schema."""
    from geodiag.cli import build_parser
    from geodiag.ui import launch

    started = []
    monkeypatch.setattr(launch, "spawn", lambda args, log_dir: started.append(args) or launch.Launched(
        1, args, str(tmp_path / "log"), 0.0))
    monkeypatch.setattr(launch, "finished", lambda pid: 0)
    at = run_app(tmp_path / "s.duckdb", "launch.py")
    at.selectbox(key="l-method").set_value("lora").run()
    at.number_input(key="l-lora-r").set_value(4).run()
    at.toggle(key="l-advanced").set_value(True).run()
    at.text_input(key="l-target_modules").input("q_proj").run()
    at.checkbox(key="l-trust_remote_code").check().run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and len(started) == 1
    args = started[0][3:]
    assert args[:5] == ["train", "--model", "smollm2", "--method", "lora"] and args[-1] == "--no-progress"
    assert {"--r", "--target-modules", "--trust-remote-code", "--store"} <= set(args) and "--alpha" not in args
    parsed = build_parser().parse_args(args)
    assert (parsed.m_r, parsed.target_modules, parsed.trust_remote_code) == (4, "q_proj", True)


def test_a_bad_launch_value_is_one_sentence_and_starts_nothing(tmp_path, monkeypatch):
    from geodiag.ui import launch

    monkeypatch.setattr(launch, "spawn", lambda *a: pytest.fail("nothing may start"))
    at = run_app(tmp_path / "s.duckdb", "launch.py")
    at.number_input(key="l-steps").set_value(0).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and [e.value for e in at.error] == ["steps must be a positive integer, got 0."]
    at.number_input(key="l-steps").set_value(5).run()
    at.number_input(key="l-manifold-r_div").set_value(0).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert [e.value for e in at.error] == ["r_div must be a positive integer, got 0."]


def test_the_train_form_prefills_the_rate_the_store_selected_else_the_methods_own(tmp_path, monkeypatch):
    from geodiag.cli import build_parser
    from geodiag.store import Writer
    from geodiag.ui import launch

    started = []
    monkeypatch.setattr(launch, "spawn", lambda args, log_dir: started.append(args) or launch.Launched(
        1, args, str(tmp_path / "log"), 0.0))
    monkeypatch.setattr(launch, "finished", lambda pid: 0)
    store = tmp_path / "s.duckdb"
    w = Writer(store)
    for lr, dev in ((1e-4, 0.2), (3e-3, 0.5)):  # a selection on smollm2 that chose 3e-3 for lora
        rid = w.create_run(name=f"lora lr{lr}", kind="train", method="lora", model="smollm2", config={
            "sweep": "sel", "seed": 0, "label": "lora", "lr": lr,
            "selection": {"grid": [1e-4, 3e-3], "seeds": [0], "phase": "select"}})
        w.append(rid, [{"step": 10, "wall_time": 0.0, "name": "dev/accuracy", "value": dev}])
        w.set_status(rid, "finished")
    at = run_app(store, "launch.py")
    assert at.number_input(key="l-lr-manifold-smollm2").value == 2e-3  # nothing selected: the method's own rate
    at.selectbox(key="l-method").set_value("lora").run()
    assert at.number_input(key="l-lr-lora-smollm2").value == 3e-3 and not at.exception
    next(b for b in at.button if b.label == "Start training").click().run()
    assert build_parser().parse_args(started[0][3:]).lr == 3e-3
    at.text_input(key="l-model").input("tiny").run()  # another model: the store chose nothing for it
    assert at.number_input(key="l-lr-lora-tiny").value == 1e-3


def test_the_sweep_form_plans_with_the_cli_and_starts_what_it_planned(dashboard_store, tmp_path, monkeypatch):
    """Sweep mode: a widget for every option of the sweep's schema; Plan runs `geodiag sweep --plan --json` and
    shows cells per phase, sizes and the time; Start spawns exactly the planned argument list, which the CLI parses
    back to the form's values; a refusal is the CLI's own sentence and offers no Start."""
    from geodiag.cli import build_parser
    from geodiag.options import schema
    from geodiag.sweep.options import SweepOptions
    from geodiag.ui import launch

    started = []
    monkeypatch.setattr(launch, "spawn", lambda args, log_dir: started.append(args) or launch.Launched(
        1, args, str(tmp_path / "log"), 0.0))
    monkeypatch.setattr(launch, "finished", lambda pid: 0)
    store = tmp_path / "s.duckdb"
    shutil.copyfile(dashboard_store["store"], store)
    at = run_app(store, "launch.py", prefill={"l-kind": "Sweep"})
    assert at.multiselect(key="s-methods").value == ["lora", "ralora", "manifold"]
    assert "pissa" in at.multiselect(key="s-methods").options  # the aliases too
    for spec in schema(SweepOptions):
        if spec.group == "basic" and spec.name != "methods":
            assert at.text_input(key=f"s-{spec.name}") if spec.type != "int" else at.number_input(
                key=f"s-{spec.name}")
    at.multiselect(key="s-methods").set_value(["lora", "pissa"])
    at.text_input(key="s-model").input("tiny")
    at.text_input(key="s-seeds").input("0,1")
    at.text_input(key="s-budget").input("lora-r=4")
    at.number_input(key="s-steps").set_value(5).run()
    assert not [b for b in at.button if b.label == "Start the sweep"]  # not before a plan
    next(b for b in at.button if b.label == "Plan the sweep").click().run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [m.value for m in at.metric][:2] == ["4", "0 / 4"]  # 2 methods x 2 seeds, no selection phase
    assert any("finished runs on tiny" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Start the sweep").click().run()
    assert len(started) == 1 and started[0][3] == "sweep"
    parsed = build_parser().parse_args(started[0][3:])
    assert (parsed.methods, parsed.seeds, parsed.budget, parsed.model, parsed.steps, parsed.store) == (
        "lora,pissa", "0,1", "lora-r=4", "tiny", 5, str(store))

    at.text_input(key="s-budget").input("lora-r=100000").run()
    next(b for b in at.button if b.label == "Plan the sweep").click().run(timeout=300)
    assert [e.value for e in at.error][0].startswith("No method can meet --budget lora-r=100000")
    assert not [b for b in at.button if b.label == "Start the sweep"] and len(started) == 1
