"""The Results page's statistics on known answers, and the per-run outcome table through a real store."""

import math

import numpy as np
import pandas as pd
import pytest

from geodiag.lab import outcomes, paired_differences, pareto_front, per_method, spearman, sweep_run_ids
from geodiag.store import Reader, Writer


def test_paired_difference_has_the_t_interval_computed_by_hand():
    lora = [0.30, 0.35, 0.40, 0.33, 0.37]
    other = [x + d for x, d in zip(lora, [0.10, 0.12, 0.08, 0.10, 0.10], strict=True)]
    df = pd.DataFrame({"label": ["lora"] * 5 + ["ralora"] * 5, "seed": list(range(5)) * 2,
                       "accuracy": lora + other, "params": 100})
    d = paired_differences(df, "accuracy").iloc[0]
    # mean 0.1; sd = sqrt(0.0008 / 4) = 0.014142; se = 0.0063246; t(0.975, 4) = 2.776445: half width 0.017560
    assert d["n_pairs"] == 5 and d["diff"] == pytest.approx(0.1)
    assert (d["lo"], d["hi"]) == (pytest.approx(0.082440, abs=1e-6), pytest.approx(0.117560, abs=1e-6))


def test_pairs_are_by_seed_and_one_pair_has_no_interval():
    df = pd.DataFrame({"label": ["lora", "lora", "dora"], "seed": [0, 1, 1], "accuracy": [0.2, 0.4, 0.5],
                       "params": 1})
    d = paired_differences(df, "accuracy").iloc[0]
    assert d["n_pairs"] == 1 and d["diff"] == pytest.approx(0.1) and math.isnan(d["lo"])  # seed 1 only


def test_mean_and_standard_error_per_method():
    df = pd.DataFrame({"label": ["a", "a", "a", "b"], "accuracy": [0.1, 0.2, 0.6, 0.5], "params": [10, 10, 10, 20]})
    t = per_method(df, "accuracy").set_index("label")
    assert t.loc["a", "mean"] == pytest.approx(0.3) and t.loc["a", "n"] == 3
    assert t.loc["a", "se"] == pytest.approx(math.sqrt(0.07 / 3))  # sd^2 = (0.04 + 0.01 + 0.09) / 2
    assert math.isnan(t.loc["b", "se"])


def test_pareto_front():
    params = np.array([10, 10, 20, 30, 5])
    acc = np.array([0.3, 0.2, 0.5, 0.4, 0.1])
    assert pareto_front(params, acc).tolist() == [True, False, True, False, True]


def test_spearman_with_its_fisher_z_interval():
    s = spearman([1, 2, 3, 4, 5], [1, 2, 3, 5, 4])
    # rho = 1 - 6 * 2 / 120 = 0.9; z = atanh(0.9) = 1.47222 -+ 1.95996 sqrt((1 + 0.405) / 2) = 1.64275
    assert s["rho"] == pytest.approx(0.9) and s["n"] == 5
    assert (s["lo"], s["hi"]) == (pytest.approx(-0.16890, abs=5e-5), pytest.approx(0.99606, abs=5e-5))
    assert math.isnan(spearman([1, 2, 3], [3, 1, 2])["lo"]) and math.isnan(spearman([1, 2], [1, 2])["rho"])


def test_outcomes_round_trip_through_the_store(tmp_path):
    store = tmp_path / "s.duckdb"
    w = Writer(store)
    made = {}
    for label, base in (("lora", 0.30), ("ralora", 0.40)):
        for seed in (0, 1, 2):
            rid = w.create_run(name=f"{label} s{seed}", kind="train", method=label, model="tiny",
                               config={"sweep": "sw", "seed": seed, "label": label, "method_options": {"r": 4},
                                       "budget": {"params": 1000 + seed}}, trainable_params=999)
            w.append(rid, [{"step": 0, "name": "eval/accuracy", "value": 0.0},
                           {"step": 10, "name": "eval/accuracy", "value": base + 0.01 * seed},
                           {"step": 10, "name": "eval/loss", "value": 1.0 - base}])
            w.set_status(rid, "finished")
            made[(label, seed)] = rid
    reader = Reader(store)
    ids = sweep_run_ids(reader, "sw")
    assert sorted(ids) == sorted(made.values()) and sweep_run_ids(reader, made[("lora", 1)]) == ids
    df = outcomes(reader, ids)
    assert set(df["params"]) == {1000, 1001, 1002}  # the budget's count, not trainable_params
    assert df["gain"].tolist() == df["accuracy"].tolist()
    d = paired_differences(df, "accuracy").iloc[0]
    assert d["label"] == "ralora" and d["n_pairs"] == 3 and d["diff"] == pytest.approx(0.1)
    assert d["lo"] == pytest.approx(0.1) and d["hi"] == pytest.approx(0.1)  # the same gap on every seed
