"""`geodiag sweep --plan --json`, what the Launch page's Sweep form shows before it starts anything: cells per phase,
each label's size at the budget, and the wall time estimated from the store's recorded pace or a probe."""

import json
import shutil

import numpy as np
from helpers import geodiag

from geodiag.allocation.budget import TOLERANCE
from geodiag.store import Reader, parsed_config

TINY = ["--model", "tiny", "--steps", "7", "--eval-size", "2", "--dev-size", "4", "--train-size", "64"]


def plan(*args: str) -> dict:
    out = geodiag("sweep", *args, "--plan", "--json", *TINY)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_plan_sizes_each_label_and_times_the_sweep_at_the_stores_recorded_pace(dashboard_store, tmp_path):
    store = tmp_path / "s.duckdb"
    shutil.copyfile(dashboard_store["store"], store)
    got = plan("--methods", "lora,pissa,ralora,dora", "--seeds", "0,1", "--budget", "lora-r=4", "--lr-grid",
               "1e-3,3e-3", "--workers", "2", "--name", "planned", "--store", str(store))
    assert got["phases"] == {"select": 4 * 2, "final": 4 * 1} and len(got["cells"]) == 12
    by_label = {c["label"]: c for c in got["cells"]}
    for label in ("lora", "pissa", "dora"):  # sized now, to the budget (within the sweep's tolerance)
        assert abs(by_label[label]["params"] - got["target"]) / got["target"] <= TOLERANCE
    assert by_label["lora"]["params"] == by_label["pissa"]["params"] == got["target"]
    assert by_label["ralora"]["params"] is None and by_label["ralora"]["sized_by"] == "gid"  # after its analysis
    assert [c["lr"] for c in got["cells"] if c["phase"] == "final"] == [None] * 4  # chosen by the selection

    # the known answer: whole finished tiny runs of this store, median seconds per step per method (else overall)
    runs = Reader(store).runs()
    done = runs[(runs["kind"] == "train") & (runs["status"] == "finished") & (runs["model"] == "tiny")]
    pace = (done["ended_at"] - done["started_at"]).dt.total_seconds() / [parsed_config(c)["steps"] for c in
                                                                           done["config"]]
    per_method = pace.groupby(done["method"]).median()
    expected = sum(7 * per_method.get(c["method"], pace.median()) for c in got["cells"]) / 2
    assert np.isclose(got["estimate"]["seconds"], expected)
    assert got["estimate"]["source"].startswith(f"the {len(done)} finished runs on tiny")
    assert not Reader(store).sweeps().shape[0]  # a plan records nothing


def test_without_recorded_runs_the_plan_times_a_probe_and_writes_nothing(tmp_path):
    store = tmp_path / "s.duckdb"
    got = plan("--methods", "lora", "--store", str(store))
    assert got["phases"] == {"select": 0, "final": 1} and got["cells"][0]["params"] is None  # no budget
    assert "probe of lora" in got["estimate"]["source"] and got["estimate"]["seconds"] > 0
    assert np.isclose(got["estimate"]["seconds"], 7 * got["estimate"]["seconds_per_step"])
    assert not store.exists()
    refused = geodiag("sweep", "--methods", "lora", "--budget", "lora-r=100000", "--plan", "--json", "--store",
                      str(store), *TINY)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "No method can meet --budget lora-r=100000" in refused.stderr and not store.exists()
