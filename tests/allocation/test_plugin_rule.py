"""A rule in one file of one's own (GEODIAG_PLUGINS), found everywhere a rule is asked for: `geodiag sweep` trains
it budget-matched as lora-<rule>, `analyze spectra` records it, `geodiag allocate --rule` exports it, the lab
offers it, the atlas draws it and Results has its row. A plugin that cannot be imported is one sentence."""

import json
import os
import subprocess
import sys

import pytest

TOY = '''
from geodiag.allocation.registry import Rule, register_rule
from geodiag.allocation.rules import Allocation, lora_params


def allocate(settings, vectors, shapes):
    """Twice the rank on odd layers: r x scale on even ones, 2 r x scale on odd ones (within the matrix)."""
    out = []
    for s in shapes:
        rank = min(max(1, round(settings.budget_scale * settings.r * (2 if s.layer % 2 else 1))), min(s.d_in, s.d_out))
        out.append(Allocation(s.name, rank, 1, s.layer, s.module_type, lora_params(s, rank)))
    return out


register_rule(Rule("toy", "spectra", allocate, "a test's rule: twice the rank on odd layers"))
'''
FAST = ["--model", "tiny", "--steps", "3", "--eval-size", "2", "--dev-size", "4", "--max-new-tokens", "2",
        "--record-every", "3", "--train-size", "64", "--no-progress"]


def geodiag(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geodiag", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture
def plugin(tmp_path):
    (tmp_path / "toy_rule.py").write_text(TOY)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    yield {**os.environ, "PYTHONPATH": path, "GEODIAG_PLUGINS": "toy_rule"}
    from geodiag import allocation as alloc
    from geodiag.methods import METHODS

    alloc.RULES.pop("toy", None)
    METHODS.pop("lora-toy", None)
    sys.modules.pop("toy_rule", None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_a_plugin_rule_reaches_the_sweep_allocate_the_lab_the_atlas_and_results(plugin, tmp_path):
    from geodiag import allocation as alloc
    from geodiag.figures import figure_data
    from geodiag.lab import outcomes, stored_analysis, sweep_run_ids
    from geodiag.store import Reader

    store = str(tmp_path / "s.duckdb")
    out = geodiag(plugin, "sweep", "--methods", "lora,lora-toy", "--budget", "lora-r=4", "--store", store, *FAST)
    assert out.returncode == 0, out.stderr
    sweep = out.stdout.split()[0]
    reader = Reader(store)
    runs = reader.runs()
    spectra = runs.loc[(runs["kind"] == "analysis") & (runs["method"] == "spectra"), "run_id"].iloc[0]
    toy_run = runs.loc[runs["label"] == "lora-toy", "run_id"].iloc[0]
    ranks = reader.metric(toy_run, "alloc/lora-toy").set_index("module")["value"]
    odd = ranks[[m for m in ranks.index if int(m.split(".")[2]) % 2]]
    even = ranks[[m for m in ranks.index if not int(m.split(".")[2]) % 2]]
    assert len(odd) and len(even) and odd.mean() > even.mean()  # the toy's own rule trained

    out = geodiag(plugin, "allocate", spectra, "--rule", "toy", "--store", store)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rule"] == "toy"

    sys.path.insert(0, str(tmp_path))
    from geodiag.allocation import plugins

    assert plugins.load("toy_rule") == ["toy_rule"]
    assert "toy" in alloc.rules_reading("spectra")  # what the lab offers for a spectra run
    stored = stored_analysis(reader, spectra)
    assert alloc.plan(alloc.Settings("toy"), stored.vectors, stored.shapes).params > 0
    atlas = figure_data(reader, "atlas", [spectra, toy_run])
    assert {"alloc/toy/equivalent_rank", "alloc/lora-toy/equivalent_rank"} <= set(atlas["name"])
    table = outcomes(reader, sweep_run_ids(reader, sweep))
    assert set(table["label"]) == {"lora", "lora-toy"}
    row = table.set_index("label").loc["lora-toy"]
    assert abs(row["params"] / table.set_index("label").loc["lora", "params"] - 1) <= 0.25  # budget-matched


def test_a_plugin_that_cannot_be_imported_is_one_sentence(tmp_path):
    env = {**os.environ, "GEODIAG_PLUGINS": "no_such_rules_module"}
    out = geodiag(env, "allocate", "--help")
    assert out.returncode == 0
    assert out.stderr.strip() == ("geodiag: warning: GEODIAG_PLUGINS names no_such_rules_module, which cannot be "
                                  "imported (ModuleNotFoundError: No module named 'no_such_rules_module'); its rules "
                                  "are left out.")
