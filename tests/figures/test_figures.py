"""Figure builders on a real engine-written store and on hand-made frames; export round trips; the registry
and `geodiag export`."""


import numpy as np
import pandas as pd
import pytest
from helpers import geodiag

from geodiag import figures
from geodiag.figures import ExportError, export_figure, figure_data, safe_name
from geodiag.figures._common import at_step, ema
from geodiag.figures.rank import atlas_series, fisher_table
from geodiag.store import Reader

HAS_CHROMIUM = figures.export.chromium_path() is not None
needs_chromium = pytest.mark.skipif(not HAS_CHROMIUM, reason="Debian chromium is not installed (make test installs "
                                                              "it with apt-get; install it to run this test)")


def frame(rows):
    cols = ["run_id", "name", "step", "module", "layer", "module_type", "idx", "value", "wall_time"]
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def test_ema_matches_the_recurrence_and_zero_weight_is_identity():
    x = np.array([1.0, 3.0, 2.0, 5.0])
    assert np.array_equal(ema(x, 0.0), x)
    w, acc, norm, want = 0.6, 0.0, 0.0, []
    for v in x:
        acc, norm = w * acc + (1 - w) * v, w * norm + (1 - w)
        want.append(acc / norm)
    assert np.allclose(ema(x, w), want) and ema(x, w)[0] == 1.0  # debiased: the first point is the first value


def test_at_step_picks_the_step_or_each_runs_last():
    df = frame([{"run_id": "a", "step": s, "value": s} for s in (0, 5)] + [{"run_id": "b", "step": 9, "value": 1}])
    assert sorted(at_step(df, None)["step"]) == [5, 9]
    assert list(at_step(df, 0)["step"]) == [0]


def test_every_registered_figure_draws_from_a_real_store(dashboard_store):
    reader = Reader(dashboard_store["store"])
    ids = dashboard_store["ids"]
    drawn = {}
    for name in figures.FIGURES:
        for method, rid in ids.items():
            data = figure_data(reader, name, [rid])
            fig = figures.build_figure(name, data, **figures.figure_options(name, reader.run(rid)))
            if fig.data:
                drawn.setdefault(name, []).append(method)
                assert fig.layout.annotations or fig.layout.title, name  # panel titles or a title
    assert set(drawn) == set(figures.FIGURES), set(figures.FIGURES) - set(drawn)
    assert "manifold" in drawn["gates"] and "lora" not in drawn["gates"]
    assert "full" in drawn["gid"] and "gid" in drawn["gid"]
    assert "manifold" in drawn["subspace"]
    assert drawn["dora"] == ["dora"]
    assert {"lora", "dora", "full", "ralora", "manifold"} <= set(drawn["intruders"])
    chance = [t for t in figures.build_figure("subspace", figure_data(reader, "subspace", [ids["manifold"]])).data
              if t.line.dash == "dash"]
    assert {t.legendgroup for t in chance} == set(figures.rank.SUBSPACE)  # each pair beside its random reference


def test_gates_histogram_holds_every_gate_of_the_chosen_step(dashboard_store):
    reader = Reader(dashboard_store["store"])
    rid = dashboard_store["ids"]["manifold"]
    data = figure_data(reader, "gates", [rid])
    fig = figures.build_figure("gates", data, step=3)
    hist = next(t for t in fig.data if t.type == "histogram")
    gates = reader.metric(rid, "gate/value")
    assert sorted(hist.x) == sorted(gates[gates["step"] == 3]["value"])


def test_gid_over_steps_panel_comes_from_the_full_finetuning_run(dashboard_store):
    reader = Reader(dashboard_store["store"])
    rid = dashboard_store["ids"]["full"]
    fig = figures.build_figure("gid", figure_data(reader, "gid", [rid]))
    over_steps = [t for t in fig.data if t.xaxis == "x3"]
    assert over_steps and sorted(over_steps[0].x) == [1, 2, 4, 6]


def test_atlas_series_uses_equivalent_ranks_and_learned_ranks():
    rows = [{"run_id": "a", "name": "alloc/ralora/equivalent_rank", "module": "m0", "layer": 0, "module_type": "q",
             "step": 0, "value": 16.0},
            {"run_id": "a", "name": "alloc/ralora/params", "module": "m0", "layer": 0, "module_type": "q",
             "step": 0, "value": 100.0},
            {"run_id": "b", "name": "gate/effective_rank", "module": "m0", "layer": 0, "module_type": "q",
             "step": 0, "value": 9.0},
            {"run_id": "b", "name": "gate/effective_rank", "module": "m0", "layer": 0, "module_type": "q",
             "step": 10, "value": 7.5}]
    s = atlas_series(frame(rows)).set_index("method")
    assert s.loc["ralora", "rank"] == 16.0 and s.loc["ralora", "params"] == 100.0
    assert s.loc["manifold r_eff", "rank"] == 7.5  # the learned rank at the last record


def test_fisher_table_pivots_per_module_type():
    rows = [{"run_id": "a", "name": f"gid/fisher_{k}", "module_type": t, "step": 0, "value": v}
            for t, v in (("q", 0.5), ("all", -0.1)) for k in ("pearson_log", "spearman")]
    t = fisher_table(frame(rows)).set_index("module_type")
    assert t.loc["q", "spearman"] == 0.5 and t.loc["all", "pearson_log"] == -0.1


def test_gelora_ranks_in_the_id_figure_follow_the_rule():
    d = [3.0, 5.5, 5.0, 9.2]
    rows = [{"run_id": "a", "name": "id/twonn", "layer": i, "step": 0, "value": v} for i, v in enumerate(d)]
    fig = figures.build_figure("id", frame(rows))
    bars = next(t for t in fig.data if t.type == "bar")
    assert list(bars.y) == [4, 1, 5]  # max(d_{i+1} - d_i, 0) + 1 = 3.5, 1, 5.2, rounded half to even


@pytest.mark.parametrize("bad", ["../evil", "/etc/passwd", "a/../../b", "..", ""])
def test_file_names_are_sanitised_and_stay_in_the_folder(tmp_path, bad):
    stem = safe_name(bad)
    assert "/" not in stem and not stem.startswith(".")
    with pytest.raises(ExportError, match="stay inside"):
        figures.export.inside(tmp_path, bad)  # the raw name would leave the folder (or be the folder itself)
    out = tmp_path / "out"
    data = frame([{"run_id": "a", "name": "x", "step": 0, "value": 1.0}])
    paths = export_figure(figures._common.empty_figure("x"), data, out, bad, formats=())
    assert [p.parent for p in paths] == [out.resolve()] and list(tmp_path.iterdir()) == [out]


def test_missing_chromium_is_one_sentence_and_the_csv_is_still_written(tmp_path, monkeypatch):
    monkeypatch.setattr(figures.export, "chromium_path", lambda: None)
    data = frame([{"run_id": "a", "name": "x", "step": 0, "value": 1.0}])
    with pytest.raises(ExportError, match="needs Chromium"):
        export_figure(figures._common.empty_figure("x"), data, tmp_path, "f", formats=("pdf",))
    assert (tmp_path / "f.csv").exists()


def test_a_hung_export_times_out_with_a_message(tmp_path):
    data = frame([{"run_id": "a", "name": "x", "step": 0, "value": 1.0}])
    with pytest.raises(ExportError, match="did not finish"):
        export_figure(figures._common.empty_figure("x"), data, tmp_path, "f", formats=("pdf",), timeout_s=0.01)


@needs_chromium
def test_export_writes_valid_pdf_svg_png_and_the_exact_csv(dashboard_store, tmp_path):
    reader = Reader(dashboard_store["store"])
    rid = dashboard_store["ids"]["manifold"]
    data = figure_data(reader, "spectrum", [rid])
    fig = figures.build_figure("spectrum", data)
    paths = export_figure(fig, data, tmp_path / "out", f"spectrum-{rid}", style=figures.PaperStyle(column="single"))
    by_ext = {p.suffix: p for p in paths}
    assert set(by_ext) == {".pdf", ".svg", ".png", ".csv"} and all(p.parent == tmp_path / "out" for p in paths)
    assert by_ext[".pdf"].read_bytes().startswith(b"%PDF") and by_ext[".pdf"].stat().st_size > 1000
    import xml.etree.ElementTree as ET

    assert ET.parse(by_ext[".svg"]).getroot().tag.endswith("svg")
    png = by_ext[".png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width == round(234 * 300 / 72)  # one column, 3.25 in, at 300 dpi
    back = pd.read_csv(by_ext[".csv"])
    assert len(back) == len(data) and np.allclose(back["value"], data["value"])




def test_export_cli_lists_figures_and_refuses_bad_input_in_one_sentence(dashboard_store, tmp_path):
    out = geodiag("export", "--list")
    assert out.returncode == 0
    for name in ("gates", "dynamics", "manifold", "spectrum", "gid", "id", "atlas"):
        assert name in out.stdout
    store = dashboard_store["store"]
    for args, message in [(("nope", "--figure", "gates"), "There is no run 'nope'"),
                          ((dashboard_store["ids"]["lora"], "--figure", "gates"), "has no data for the gates"),
                          ((dashboard_store["ids"]["lora"], "--figure", "nofig"), "Unknown figure"),
                          ((dashboard_store["ids"]["lora"], "--figure", "spectrum", "--format", "gif"),
                           "Unknown format")]:
        res = geodiag("export", *args, "--store", store, "--out", str(tmp_path))
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr


@needs_chromium
def test_export_cli_writes_svg_and_csv(dashboard_store, tmp_path):
    rid = dashboard_store["ids"]["gid"]
    res = geodiag("export", rid, "--figure", "gid", "--format", "svg", "--out", str(tmp_path / "figs"),
                  "--store", dashboard_store["store"])
    assert res.returncode == 0, res.stderr
    files = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert files == [f"gid-{rid}.csv", f"gid-{rid}.svg"]


def test_per_layer_lines_are_drawn_in_layer_order():
    rows = [{"run_id": "a", "name": n, "step": 1, "module": f"layers.{i}", "layer": i, "value": float(i)}
            for n in ("probe/d_eff", "probe/orthonormality", "geometry/participation_ratio",
                      "geometry/participation_ratio_n") for i in (0, 1, 10, 11, 2)]  # the reader's module-name order
    fig = figures.build_figure("manifold", frame(rows))
    for trace in fig.data:
        if trace.type == "scatter":
            assert list(trace.x) == sorted(trace.x), trace.name


def test_the_atlas_reads_only_each_methods_first_run_and_draws_what_the_whole_model_would(dashboard_store):
    """At 2,000 runs the atlas cannot read every run of the model: it asks the store which run recorded which
    allocation (one aggregating query) and reads only each method's first run, the rows it keeps anyway."""
    from geodiag.figures.registry import get_figure, scope_runs

    reader = Reader(dashboard_store["store"])
    first = dashboard_store["ids"]["manifold"]
    spec = get_figure("atlas")
    ids = scope_runs(reader.runs(), spec, [first])
    dense = reader.metrics(ids, spec.reads(reader, ids))  # every run of the model
    lean = figure_data(reader, "atlas", [first])
    key = ["method", "module", "run_id"]
    expected = atlas_series(dense).sort_values(key).reset_index(drop=True)
    assert len(expected) and atlas_series(lean).sort_values(key).reset_index(drop=True).equals(expected)
    assert len(lean) < len(dense) and set(lean["run_id"]) == set(expected["run_id"])


def test_a_method_keeps_its_colour_and_legend_place_in_every_results_figure():
    from geodiag.figures.results import learning_forgetting, lr_curves, results

    rows = []  # the newest run first, as the store lists them: pissa's last selection run is newer than all else
    for label, rates, chosen, acc in (("pissa", (1e-3, 3e-3), 1e-3, 0.55), ("manifold", (3e-3, 1e-2), 1e-2, 0.47),
                                      ("lora", (1e-3, 3e-3), 3e-3, 0.56)):
        for lr in rates:
            score = acc - (lr != chosen) * 0.1
            rows.append(dict(label=label, seed=0, lr=lr, phase="select", final=lr == chosen, params=460800,
                             accuracy=score, eval_loss=0.5, dev_accuracy=score, forgetting=0.2))
        rows += [dict(label=label, seed=s, lr=chosen, phase="final", final=True, params=460800,
                      accuracy=acc + s / 100, eval_loss=0.5, dev_accuracy=None, forgetting=0.2) for s in (1, 2)]
    df = pd.DataFrame(rows)
    manifold = df["label"] == "manifold"  # its finals first, its selection last: first seen differs per figure
    df = pd.concat([df[manifold].iloc[2:], df[~manifold], df[manifold].iloc[:2]])

    def legend(fig):  # each method's colour, in legend order
        shown = [t for t in fig.data if t.showlegend is not False and t.legendgroup not in (None, "front")]
        return [(t.legendgroup, t.marker.color if t.marker.color is not None else t.line.color) for t in shown]

    drawn = [legend(f(df)) for f in (results, lr_curves, learning_forgetting)]
    assert [m for m, _ in drawn[0]] == ["lora", "manifold", "pissa"]
    assert drawn[0] == drawn[1] == drawn[2]
    assert len({c for _, c in drawn[0]}) == 3
