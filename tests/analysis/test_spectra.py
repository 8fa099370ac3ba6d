"""`geodiag analyze spectra` as a user runs it on the tiny model: every target module's ESD and fits round-trip
through the store equal to measuring the weights directly; WeightWatcher (when installed) agrees on every module;
bad input is one sentence and writes nothing."""

import os

import numpy as np
import pytest
from helpers import geodiag

from geodiag.analysis import module_spectrum
from geodiag.models import linear_modules, load_model
from geodiag.store import Reader

PROJECTIONS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    store = str(tmp_path_factory.mktemp("spectra") / "s.duckdb")
    out = geodiag("analyze", "spectra", "--model", "tiny", "--target-modules", PROJECTIONS, "--store", store)
    assert out.returncode == 0, out.stderr
    assert "spectra: 100%" in out.stderr  # the progress bar
    return store, out.stdout.strip()


def test_the_store_holds_each_modules_spectrum_as_measured_from_the_weights(analysed):
    store, rid = analysed
    reader = Reader(store)
    run = reader.run(rid)
    assert run["kind"] == "analysis" and run["method"] == "spectra" and run["status"] == "finished"
    linears = linear_modules(load_model("tiny", seed=0).model)
    modules = [m for m, *_ in run["config"]["modules"]]
    assert len(modules) == 14  # 2 layers x 7 projections
    evals = reader.metric(rid, "esd/eigenvalue")
    alpha = reader.metric(rid, "esd/alpha").set_index("module")["value"]
    spikes = reader.metric(rid, "esd/spikes").set_index("module")["value"]
    stable = reader.metric(rid, "esd/stable_rank").set_index("module")["value"]
    shape = reader.metric(rid, "esd/d_out").set_index("module")["value"]
    for m in modules:
        W = linears[m].weight.detach().double().numpy()
        direct = module_spectrum(m, W)
        mine = evals[evals["module"] == m].sort_values("idx")["value"].to_numpy()
        assert len(mine) == min(W.shape)
        np.testing.assert_allclose(mine, direct.evals[::-1], rtol=1e-12)  # idx 0 is the largest
        assert alpha[m] == pytest.approx(direct.tail.alpha) and spikes[m] == direct.bulk.spikes
        assert stable[m] == pytest.approx(np.linalg.norm(W) ** 2 / np.linalg.norm(W, 2) ** 2)
        assert shape[m] == W.shape[0]
    progress = reader.metric(rid, "analysis/progress")
    assert progress["value"].max() == 1.0 and progress["step"].max() == 14


def test_weightwatcher_agrees_on_every_module(analysed):
    ww = pytest.importorskip("weightwatcher", reason="WeightWatcher (an optional test dependency) is not installed")
    import logging
    import warnings

    store, rid = analysed
    reader = Reader(store)
    model = load_model("tiny", seed=0).model
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        details = ww.WeightWatcher(model=model).analyze(mp_fit=True).set_index("longname")
    logging.disable(logging.NOTSET)
    for name, column, tolerance in (("esd/alpha", "alpha", 0.02), ("esd/spikes", "num_spikes", 1)):
        ours = reader.metric(rid, name).set_index("module")["value"]
        gaps = (ours - details.loc[ours.index, column].astype(float)).abs()
        assert (gaps <= tolerance).all(), gaps[gaps > tolerance]
    ours = reader.metric(rid, "esd/stable_rank").set_index("module")["value"]
    np.testing.assert_allclose(ours, details.loc[ours.index, "stable_rank"].astype(float), rtol=0.01)


def test_the_spectral_rules_allocate_from_the_run_and_export_for_peft(analysed, tmp_path):
    """The analysis records what each spectral rule allocates (the atlas draws it); `geodiag allocate` turns the
    run into a peft rank_pattern that trains exactly the parameters it says."""
    import json

    import peft

    from geodiag.figures import figure_data

    store, rid = analysed
    atlas = figure_data(Reader(store), "atlas", [rid])
    assert {"alloc/alpha/equivalent_rank", "alloc/alpha-share/params", "alloc/stable-rank/params"} <= set(atlas["name"])
    out = geodiag("allocate", rid, "--rule", "alpha-share", "--out", str(tmp_path / "a.json"), "--store", store)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["rule"] == "alpha-share" and len(data["rank_pattern"]) == 14
    assert data["rank_pattern"] == {m: int(v) for m, v in Reader(store).metric(rid, "alloc/alpha-share").set_index(
        "module")["value"].items()}  # the file is what the analysis recorded
    model = peft.get_peft_model(load_model("tiny", seed=0).model, peft.LoraConfig(
        r=data["r"], rank_pattern=data["rank_pattern"], alpha_pattern=data["alpha_pattern"],
        target_modules=data["target_modules"]))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == data["peft_params"]


def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path):
    store = str(tmp_path / "s.duckdb")
    out = geodiag("analyze", "spectra", "--model", "tiny", "--layers", "7", "--store", store)
    assert out.returncode == 2 and out.stderr.strip() == ("geodiag: error: layers 7 do not exist in this model (it "
                                                          "has layers 0-1).")
    out = geodiag("analyze", "spectra", "--model", "tiny", "--target-modules", "nope", "--store", store)
    assert out.returncode == 2 and "No linear module matches nope" in out.stderr and "Traceback" not in out.stderr
    out = geodiag("analyze", "spectra", "--model", "tiny", "--task", "x", "--store", store)
    assert out.returncode == 2 and "unrecognized arguments: --task" in out.stderr  # spectra read no data
    assert not os.path.exists(store)
