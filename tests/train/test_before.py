"""Step 0 is the base model's evaluation, computed once per (weights, items, settings) and reused: a reused
evaluation is the same numbers, it changes nothing about training, and anything that would change the numbers
misses."""

import pytest
import torch

from geodiag.data import load_data
from geodiag.data.tokenise import collate, encode
from geodiag.models import load_model
from geodiag.store import Reader
from geodiag.train import TrainConfig, train

STEP0 = ["item/exact", "item/score", "eval/accuracy", "eval/score", "eval/loss", "dev/accuracy", "dev/score",
         "dev/loss", "forget/loss"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GEODIAG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run(tmp_path, name, **kw):
    base = dict(model="tiny", method="lora", steps=2, record_every=2, eval_size=6, dev_size=4, train_size=64,
                max_new_tokens=2, forget_size=2, max_length=32, batch_size=2, grad_accum=1, seed=5, lr=1e-2,
                store=str(tmp_path / "s.duckdb"), run_name=name)
    cfg = TrainConfig.from_dict({**base, **kw})
    rid = train(cfg, progress=False)
    reader = Reader(cfg.store)
    rows = reader.metrics([rid], [*STEP0, "loss/lm"])[["step", "name", "module", "idx", "value"]]
    return cfg, reader.run(rid)["config"]["before"], rows.sort_values(["step", "name", "module", "idx"])


def values(rows, step0: bool):
    """The step-0 evaluation's rows, or every row after step 0."""
    picked = rows[(rows["step"] == 0) & rows["name"].isin(STEP0)] if step0 else rows[rows["step"] > 0]
    return picked.reset_index(drop=True)


def test_a_reused_base_evaluation_is_the_same_numbers_and_training_is_unchanged(tmp_path, cache):
    _, first, a = run(tmp_path, "first")
    _, second, b = run(tmp_path, "second")
    assert first["reused"] is False and second["reused"] is True and first["key"] == second["key"]
    assert len(list(cache.glob("base-eval/*.json"))) == 1
    assert set(values(a, True)["name"]) == set(STEP0)
    assert values(a, True).equals(values(b, True))
    later = values(a, False).merge(values(b, False), on=["step", "name", "module", "idx"], suffixes=("_a", "_b"))
    trained = later[later["name"] == "loss/lm"]
    assert len(trained) == 2 and (trained["value_a"] == trained["value_b"]).all()  # same random state after


def test_step0_is_the_base_model_even_for_a_method_that_rewrites_the_base_weights(tmp_path, cache):
    """PiSSA moves W's principal part into the adapter; step 0 is still the untouched base model's numbers, the
    held-out loss equal to one computed here by hand."""
    cfg, lora, a = run(tmp_path, "lora")
    _, pissa, b = run(tmp_path, "pissa", method_options={"init_lora_weights": "pissa"})
    assert pissa == {"key": lora["key"], "reused": True} and values(a, True).equals(values(b, True))

    lm = load_model("tiny", seed=5)
    data = load_data(None, n_train=64, n_eval=cfg.eval_size, n_dev=4, seed=0)
    batch = collate([encode(lm.tokenizer, ex, 32) for ex in data.dev], lm.tokenizer.pad_token_id)
    with torch.no_grad():
        by_hand = float(lm.model.eval()(**batch).loss)  # one batch of 4: its mean is the split's
    step0 = values(a, True)
    assert step0[step0["name"] == "dev/loss"]["value"].item() == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("change", [dict(seed=6), dict(eval_size=5), dict(data_seed=1), dict(max_new_tokens=3)])
def test_anything_that_changes_the_numbers_misses(tmp_path, cache, change):
    """Other weights (the tiny model's seed), other items, other generation settings: a fresh evaluation."""
    _, base, _ = run(tmp_path, "base")
    _, other, _ = run(tmp_path, "other", **change)
    assert other["reused"] is False and other["key"] != base["key"]
