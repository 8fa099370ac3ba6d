"""Paired per-item statistics on known answers: a planted difference recovered, simulated nulls flagged at about
the nominal rate, the variance and MDE computed by hand, Holm's adjustment, and `geodiag results` over a real store
whose delta is the difference of the paired means."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers import geodiag
from scipy import stats

from geodiag.lab import holm, two_way, verdicts
from geodiag.lab.compare import verdict
from geodiag.store import Reader, Writer


def simulate(rng, S, I, effect, seed_sd=0.03):
    """Exact matches of two methods on the same I items over S seeds: item difficulty shared by both, a seed effect
    per run, and `effect` added to the second method's success probability."""
    p = rng.beta(2, 2, I)  # (I,) how easy each item is
    runs = []
    for shift in (0.0, effect):
        q = np.clip(p[None, :] + shift + rng.normal(0, seed_sd, (S, 1)), 0, 1)  # (S, I)
        runs.append((rng.random((S, I)) < q).astype(float))
    return runs


def test_a_planted_difference_is_recovered_with_an_interval_that_covers_it():
    rng = np.random.default_rng(0)
    ref, better = simulate(rng, 3, 1000, 0.10, seed_sd=0.005)
    d = two_way(better - ref)
    lo, hi = d.interval()
    assert d.mean == pytest.approx((better - ref).mean())  # delta is the difference of the paired means
    assert lo < 0.10 < hi and lo > 0  # covers the planted 10 points and excludes zero
    assert verdict(d.mean, d.p_value()) == "better" and verdict(-d.mean, d.p_value()) == "worse"


def test_simulated_nulls_are_flagged_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    flagged = [two_way(a - b).p_value() < 0.05 for a, b in (simulate(rng, 3, 200, 0.0) for _ in range(600))]
    rate = float(np.mean(flagged))  # 600 nulls: a 5% test flags 30 +- 5.3
    assert 0.025 <= rate <= 0.08, rate


def test_the_variance_and_the_mde_match_a_hand_computation():
    x = np.array([[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0.0]])  # 3 seeds x 4 items
    S, I, m = 3, 4, x.mean()
    ms_items = S * ((x.mean(0) - m) ** 2).sum() / (I - 1)
    ms_seeds = I * ((x.mean(1) - m) ** 2).sum() / (S - 1)
    ms_resid = ((x - x.mean(0) - x.mean(1)[:, None] + m) ** 2).sum() / ((I - 1) * (S - 1))
    item_part, seed_part = ms_items / (S * I), max(ms_seeds - ms_resid, 0) / (S * I)
    var = item_part + seed_part
    df = var**2 / (item_part**2 / (I - 1) + seed_part**2 / (S - 1))
    est = two_way(x)
    assert est.se == pytest.approx(math.sqrt(var)) and est.df == pytest.approx(df)
    assert est.mde() == pytest.approx((stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * math.sqrt(var))
    one_seed = two_way(x[:1])  # items only: the plain standard error of a mean
    assert one_seed.se == pytest.approx(x[0].std(ddof=1) / 2) and one_seed.df == 3


def test_holm_adjusts_step_down_and_keeps_order():
    assert holm([0.01, 0.04, 0.03, float("nan")]) == pytest.approx([0.03, 0.06, 0.06, float("nan")], nan_ok=True)


def fake_sweep(store, rng, labels=(("lora", 0.0), ("good", 0.15), ("same", 0.0)), seeds=(0, 1, 2), items=300):
    """Finished runs of one sweep with per-item test records and a forgetting measure, written by the Writer."""
    w = Writer(store)
    p = rng.beta(2, 2, items)
    exact = {}
    for label, effect in labels:
        for seed in seeds:
            rid = w.create_run(name=f"{label} s{seed}", kind="train", method="lora", model="tiny",
                               config={"sweep": "sw", "seed": seed, "label": label, "lr": 1e-3}, trainable_params=10)
            x = (rng.random(items) < np.clip(p + effect, 0, 1)).astype(float)
            exact[label, seed] = x
            rows = [{"step": 5, "wall_time": 0.0, "name": "item/exact", "module": "test", "idx": k, "value": v}
                    for k, v in enumerate(x)]
            rows += [{"step": 0, "wall_time": 0.0, "name": "forget/loss", "value": 3.0},
                     {"step": 5, "wall_time": 0.0, "name": "forget/loss", "value": 3.0 + 0.1 * seed}]
            w.append(rid, rows)
            w.set_status(rid, "finished")
    return exact


def test_results_round_trip_through_the_store_and_the_cli(tmp_path):
    store = str(tmp_path / "s.duckdb")
    exact = fake_sweep(store, np.random.default_rng(2))
    table = verdicts(Reader(store), "sw").set_index("label")
    paired = np.mean([exact["good", s] - exact["lora", s] for s in (0, 1, 2)])
    assert table.loc["good", "delta"] == pytest.approx(paired)  # the difference of the paired means
    assert table.loc["good", "verdict"] == "better" and table.loc["same", "verdict"] == "indistinguishable"
    assert table.loc["lora", "verdict"] == "reference" and table.loc["good", "n_items"] == 300
    assert table.loc["good", "forgetting"] == pytest.approx(0.1)  # mean over seeds of after - before
    assert table.loc["good", "accuracy"] == pytest.approx(np.mean([exact["good", s] for s in (0, 1, 2)]))

    out = geodiag("results", "sw", "--json", "--store", store)
    assert out.returncode == 0, out.stderr
    records = {r["label"]: r for r in json.loads(out.stdout)}
    keys = {"label", "lr", "seeds", "n_items", "accuracy", "accuracy_se", "delta", "ci_low", "ci_high", "mde",
            "p_holm", "verdict", "forgetting"}
    assert keys <= set(records["good"]) and records["good"]["seeds"] == [0, 1, 2]
    assert records["good"]["delta"] == pytest.approx(paired) and records["good"]["lr"] == 1e-3
    text = geodiag("results", "sw", "--store", store)
    assert "This sweep can detect differences of" in text.stdout and "better" in text.stdout


def test_results_refuse_a_missing_reference_or_an_empty_sweep_in_one_sentence(tmp_path):
    store = str(tmp_path / "s.duckdb")
    fake_sweep(store, np.random.default_rng(3), labels=(("dora", 0.0),), seeds=(0,), items=5)
    rid = Writer(store).create_run(name="x", kind="train", method="lora", model="tiny",
                                   config={"sweep": "unfinished", "seed": 0, "label": "lora", "lr": 1e-3})
    for args, says in ((["sw"], "has no finished lora run to compare with; choose --reference from dora"),
                       (["unfinished"], "Sweep unfinished has no finished run yet"),
                       (["nothing"], "There is no sweep or run 'nothing'")):
        out = geodiag("results", *args, "--store", store)
        assert out.returncode == 2 and says in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert Reader(store).run(rid)["status"] == "running"


def test_verdicts_from_the_pages_shared_outcome_table_equal_their_own(dashboard_store):
    """The Results page hands verdicts the sweep's outcome table and item scores its figures drew from (one
    aggregated read): the same numbers, and the same items as every stored row read by hand."""
    from geodiag.lab import sweep_rows, sweep_run_ids, verdicts
    from geodiag.names import ITEM_EXACT
    from geodiag.store import Reader

    reader = Reader(dashboard_store["store"])
    ids = sweep_run_ids(reader, "fixture-sweep")
    shared = sweep_rows(reader, ids)
    pd.testing.assert_frame_equal(verdicts(reader, "fixture-sweep", "lora"),
                                  verdicts(reader, "fixture-sweep", "lora", shared))
    m = reader.metrics(ids, [ITEM_EXACT])
    test = m[m["module"] == "test"]
    test = test[test["step"] == test.groupby("run_id")["step"].transform("max")]
    by_hand = test.assign(item=test["idx"].astype(int))[["run_id", "item", "value"]]
    key = ["run_id", "item"]
    got = shared.items.sort_values(key, ignore_index=True)
    assert len(got) and set(got["run_id"]) == set(ids)
    pd.testing.assert_frame_equal(got, by_hand.rename(columns={"value": "exact"}).sort_values(key, ignore_index=True),
                                  check_dtype=False)


def test_a_rate_chosen_at_either_end_of_its_grid_is_named():
    """The verdicts say when a label's chosen rate is its grid's lowest or highest: the best may lie beyond."""
    from geodiag.lab.results import edge_sentence, grid_edge

    grid = (3e-5, 1e-4, 3e-4, 1e-3)
    table = pd.DataFrame({"label": ["pissa", "pissa", "lora", "full"],
                          "grid": [grid, (), (1e-4, 3e-4, 1e-3), ()]})
    assert grid_edge(table, "pissa", 1e-3) == "highest" and grid_edge(table, "pissa", 3e-5) == "lowest"
    assert grid_edge(table, "pissa", 1e-4) == "" and grid_edge(table, "pissa", 1.0000000001e-3) == "highest"
    assert grid_edge(table, "full", 2e-5) == "" and grid_edge(table, "lora", None) == ""  # no grid, no choice
    rows = pd.DataFrame({"label": ["lora", "pissa"], "lr": [3e-4, 1e-3], "grid_edge": ["", "highest"]})
    assert edge_sentence(rows).startswith("At the edge of a learning-rate grid: pissa chose 0.001, the highest rate")
    assert "lora" not in edge_sentence(rows) and edge_sentence(rows.assign(grid_edge="")) == ""
