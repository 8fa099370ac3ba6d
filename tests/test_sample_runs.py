"""The shipped sample store opens, holds the runs the dashboard needs on first start, every figure has data in it
(so `make app` is useful within seconds), and it is the budget-matched sweep the issue asked for: runs that
learn, over seeds."""

from pathlib import Path

import pytest

from geodiag import figures
from geodiag.names import GID
from geodiag.store import Reader

SAMPLE = Path(__file__).resolve().parents[1] / "sample_runs" / "geodiag.duckdb"


@pytest.fixture(scope="module")
def reader():
    assert SAMPLE.exists(), "sample_runs/geodiag.duckdb is missing: rebuild it with `make sample-runs`"
    return Reader(SAMPLE)


def test_sample_store_is_small_and_finished(reader):
    assert SAMPLE.stat().st_size < 50e6
    assert not Path(str(SAMPLE) + ".spool").exists()  # everything folded into the file
    runs = reader.runs()
    assert set(runs["status"]) == {"finished"}
    assert set(runs["model"]) == {"smollm2"} and runs[runs["kind"] == "train"]["task"].nunique() == 1
    methods = set(runs["method"])
    assert {"lora", "manifold", "ralora", "gid", "id"} <= methods and methods & {"ralora-pro", "gelora"}
    assert runs.iloc[0]["kind"] == "train"  # newest first: the dashboard opens on a trained run


def test_every_figure_has_data_in_the_sample_store(reader):
    runs = reader.runs()
    for name in figures.FIGURES:
        drawn = False
        for rid in runs["run_id"]:
            data = figures.figure_data(reader, name, [rid])
            options = figures.figure_options(name, reader.run(rid))
            if not data.empty and figures.build_figure(name, data, **options).data:
                drawn = True
                break
        assert drawn, f"no run in the sample store draws the {name} figure"


def test_sample_runs_are_recorded_by_the_current_collectors(reader):
    # every measured subspace angle carries its random-subspace reference: a stale store would lack it
    runs = reader.runs()
    rid = runs.loc[runs["method"] == "manifold", "run_id"].iloc[0]
    names = set(reader.metric_names(rid))
    for pair in ("dw_grad", "dw_probe", "grad_probe"):
        assert {f"subspace/angle_{pair}", f"subspace/random_{pair}"} <= names, pair
    chance = reader.metric(rid, "subspace/random_dw_probe")["value"]
    assert chance.between(0, 90).all()


def test_the_sample_sweep_learns_at_equal_budget_over_seeds(reader):
    from geodiag.lab import outcomes, sweep_run_ids

    runs = reader.runs()
    assert "sample-r8" in set(runs["sweep"]), "the sample store has no budget sweep: rebuild it with `make sample-runs`"
    df = outcomes(reader, sweep_run_ids(reader, "sample-r8"))
    seeds = df.groupby("label")["seed"].nunique()
    assert (seeds[["lora", "ralora", "manifold"]] >= 3).all()
    assert {"adalora", "ralora-pro", "lora-gid", "gelora", "dora", "eva", "pissa"} <= set(seeds.index)
    for rid in df["run_id"]:
        config = reader.run(rid)["config"]
        assert config["eval_size"] >= 64 and config["budget"]["spec"] == "lora-r=8"
        assert abs(config["budget"]["params"] / config["budget"]["target"] - 1) <= 0.25
    assert (df.loc[df["label"] == "lora", "accuracy"] >= 0.30).all()  # LoRA learns the task
    assert (df["accuracy_before"] == 0).all()


def test_the_full_fine_tuning_run_records_gid_dynamics(reader):
    runs = reader.runs()
    full = runs.loc[runs["method"] == "full", "run_id"]
    assert len(full) == 1
    gid = reader.metric(full.iloc[0], GID)
    assert gid["step"].nunique() >= 15  # long enough to see GID rise and level off (RaLoRA Fig. 3c)


def test_the_protocol_sweep_selects_rates_on_dev_and_scores_every_test_item(reader):
    """What the shipped store holds of `sample_runs/sweep.yaml` (the comparison protocol): each label's selection
    runs over a grid of at least 4 rates spanning at least 30x, scored item by item on 512 test and 128 dev items
    that every run shares, with forgetting recorded."""
    from geodiag.lab import sweep_table

    table = sweep_table(reader, "sample-protocol")
    assert not table.empty, "no protocol runs: `make sample-runs` builds them"
    assert set(table["status"]) == {"finished"} and set(table["model"]) == {"smollm2"}
    for label, grid in table.groupby("label")["grid"].first().items():
        assert len(grid) >= 4 and max(grid) / min(grid) >= 30, label
    ids = list(table["run_id"])
    items = reader.metrics(ids, ["item/exact", "forget/loss"])
    last = items[(items["name"] == "item/exact") & (items["step"] == 100)]
    assert (last.groupby(["run_id", "module"]).size().unstack().loc[ids, ["test", "dev"]] == [512, 128]).all().all()
    forget = items[items["name"] == "forget/loss"].groupby("run_id")["step"].apply(set)
    assert all(forget[r] == {0, 100} for r in ids)
    assert table["dev_accuracy"].max() >= 0.3  # the best rate learns the task
