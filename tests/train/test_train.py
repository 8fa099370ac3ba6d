"""The trainer end to end on the tiny model: losses fall, every contract metric lands in the store, bad
input fails clearly and leaves the run marked, torchrun writes once."""

import json
from functools import partial

import pytest
import torch
from helpers import geodiag

from geodiag.errors import GeodiagError
from geodiag.store import Reader
from geodiag.train import TrainConfig, train

CONTRACT = [
    "loss/lm", "loss/sparsity", "loss/alignment", "loss/total", "lr", "gate/effective_rank", "gate/dead",
    "gate/value", "gate/temperature", "probe/d_eff", "probe/orthonormality", "probe/alignment",
    "probe/activation_coverage", "geometry/participation_ratio", "geometry/participation_ratio_n",
    "spectrum/singular_value", "spectrum/stable_rank", "spectrum/nuclear", "spectrum/frobenius",
    "spectrum/alpha", "spectrum/alpha_r2", "spectrum/alpha_n", "spectrum/erank", "eval/accuracy", "eval/score",
]


@pytest.fixture(scope="module")
def fixed_batch_data(tmp_path_factory):
    """Six items: one held out, five in the training set, all in every batch of five."""
    path = tmp_path_factory.mktemp("data") / "tiny.jsonl"
    rows = [{"prompt": f"What is {a} plus {a}?", "response": str(2 * a)} for a in range(1, 7)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def tiny_config(tmp_path, data, **kw) -> TrainConfig:
    base = dict(model="tiny", dataset=data, steps=12, batch_size=5, grad_accum=1, record_every=4, eval_size=1,
                record_batch=4, store=str(tmp_path / "s.duckdb"), max_new_tokens=4, warmup=0.0)
    return TrainConfig.from_dict({**base, **kw})


def first_last(df, k=3):
    v = df.sort_values("step")["value"].tolist()
    return sum(v[:k]) / k, sum(v[-k:]) / k


@pytest.fixture(scope="module")
def manifold_run(tmp_path_factory, fixed_batch_data):
    tmp = tmp_path_factory.mktemp("manifold")
    cfg = tiny_config(tmp, fixed_batch_data, method="manifold", lr=3e-2,
                      method_options={"r_div": 4, "probe_div": 8, "gate_lr_ratio": 1.0, "temperature_lr_ratio": 1 / 30})
    return cfg, train(cfg, progress=False)


def test_manifold_run_records_every_contract_metric(manifold_run):
    cfg, rid = manifold_run
    reader = Reader(cfg.store)
    run = reader.run(rid)
    assert run["status"] == "finished" and run["method"] == "manifold" and run["kind"] == "train"
    assert 0 < run["trainable_params"] < run["total_params"]
    assert run["config"]["method_options"]["r_div"] == 4
    assert run["config"]["lm_head"] == "labelled positions only"  # the loss skips the head where nothing is learnt
    assert set(CONTRACT) <= set(reader.metric_names(rid))
    gates = reader.metric(rid, "gate/value")
    assert gates["value"].between(0, 1).all() and set(gates["module_type"]) == {"q", "v"}
    assert sorted(gates["step"].unique()) == [0, 4, 8, 12]
    pr = reader.metric(rid, "geometry/participation_ratio")
    assert sorted(pr["layer"].unique()) == [0, 1] and (pr["value"] >= 1).all()
    align = reader.metric(rid, "loss/alignment")
    assert align.sort_values("step")["value"].iloc[0] == pytest.approx(1.0, abs=1e-3)


def test_manifold_loss_goes_down_on_a_fixed_batch(manifold_run):
    cfg, rid = manifold_run
    start, end = first_last(Reader(cfg.store).metric(rid, "loss/lm"))
    assert end < start - 0.05


def test_lora_and_adalora_train_and_record(tmp_path, fixed_batch_data):
    cfg = tiny_config(tmp_path, fixed_batch_data, method="lora", lr=3e-2, method_options={"r": 4})
    rid = train(cfg, progress=False)
    reader = Reader(cfg.store)
    start, end = first_last(reader.metric(rid, "loss/lm"))
    assert end < start - 0.05
    assert "gate/value" not in reader.metric_names(rid)
    sv = reader.metric(rid, "spectrum/singular_value")
    assert (sv[sv.step == 12].groupby("module").size() == 4).all()  # rank-4 updates: 4 singular values

    cfg = tiny_config(tmp_path, fixed_batch_data, method="adalora", lr=3e-2, steps=16,
                      method_options={"init_r": 6, "target_r": 2, "tinit": 0.1, "tfinal": 0.2, "delta_t": 2})
    rid = train(cfg, progress=False)
    start, end = first_last(reader.metric(rid, "loss/lm"))
    assert end < start - 0.05
    ranks = reader.metric(rid, "adalora/rank")
    assert (ranks[ranks.step == 0]["value"] == 6).all()
    final = ranks[ranks.step == 16]["value"]
    assert (final <= 6).all() and final.mean() < 6  # the budget shrank towards target_r


def test_base_weights_are_bit_identical_after_training(tmp_path, fixed_batch_data):
    from geodiag import methods
    from geodiag.data import load_data
    from geodiag.data.tokenise import batch_stream, encode
    from geodiag.models import load_model
    from geodiag.models.placement import start_accelerator
    from geodiag.train import Run, train_step
    from geodiag.train.engine import StepModule, prepare
    from geodiag.train.loss import labelled_loss

    cfg = tiny_config(tmp_path, fixed_batch_data, method="manifold")
    lm = load_model("tiny")
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    adapted = methods.build("manifold", lm.model, {"r_div": 4})
    data = load_data(dataset=fixed_batch_data)
    stream = batch_stream([encode(lm.tokenizer, ex, 64) for ex in data.train], 5, lm.tokenizer.pad_token_id)
    engine, opt = prepare(start_accelerator("cpu"), StepModule(adapted, partial(labelled_loss, lm.model)), adapted,
                          make_optimizer=lambda: torch.optim.AdamW(adapted.param_groups(1e-1, 0.01)), fsdp=False)
    for step in range(1, 6):
        train_step(Run(cfg, adapted, stream, opt, engine), step)
        opt.zero_grad()
    after = lm.model.state_dict()
    assert before.keys() == after.keys()  # no adapter tensors leaked into the base model
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(float(a.B.detach().abs().sum()) > 0 for a in adapted.adapters_.values())  # yet the adapters moved


def test_nan_loss_fails_the_run_with_one_sentence_and_keeps_data(tmp_path, fixed_batch_data):
    cfg = tiny_config(tmp_path, fixed_batch_data, method="lora", lr=1e30, clip=0.0, steps=8)
    with pytest.raises(GeodiagError, match=r"The loss became (nan|inf) at step \d+; lower the learning rate"):
        train(cfg, progress=False)
    run = Reader(cfg.store).runs().iloc[0]
    assert run["status"] == "failed" and "lower the learning rate" in run["message"]
    assert len(Reader(cfg.store).metric(run["run_id"], "spectrum/nuclear")) > 0  # the step-0 record survived


def test_cancel_ends_the_run_as_cancelled_and_keeps_its_data(tmp_path, fixed_batch_data):
    calls = {"n": 0}

    def stop_after_five():
        calls["n"] += 1
        return calls["n"] >= 5

    cfg = tiny_config(tmp_path, fixed_batch_data, method="lora", steps=50, record_every=2)
    with pytest.raises(GeodiagError, match="was cancelled"):
        train(cfg, progress=False, should_stop=stop_after_five)
    run = Reader(cfg.store).runs().iloc[0]
    assert run["status"] == "cancelled"
    assert Reader(cfg.store).metric(run["run_id"], "loss/lm")["step"].max() == 5




@pytest.mark.parametrize("args, message", [
    (["--method", "vera"], "Unknown method 'vera'"),
    (["--method", "lora", "--lambda-s", "0.1"], "--lambda-s is not an option of the lora method"),
    (["--model", "./no/such/model"], "There is no model directory at ./no/such/model"),
    (["--dataset", "missing.jsonl"], "There is no dataset file at missing.jsonl"),
    (["--steps", "0"], "steps must be a positive integer"),
    (["--target-modules", "attn_qq"], "No linear module matches attn_qq"),
])
def test_train_cli_bad_input_is_one_sentence(tmp_path, args, message):
    out = geodiag("train", "--model", "tiny", "--store", str(tmp_path / "s.duckdb"), "--no-progress", *args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_empty_dataset_file_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = geodiag("train", "--model", "tiny", "--dataset", str(empty), "--store", str(tmp_path / "s.duckdb"))
    assert out.returncode == 2 and "has no usable rows" in out.stderr


def test_items_dev_and_forgetting_are_recorded_and_agree_with_their_summaries(tmp_path):
    """Every dev and test item's score before and after, the split means equal to them, and the forgetting text's
    loss at step 0 equal to the base model's own mean token loss on it, computed here by hand."""
    import torch.nn.functional as F

    from geodiag.data.forget import forget_text
    from geodiag.data.tokenise import text_windows
    from geodiag.models import load_model

    cfg = TrainConfig(model="tiny", method="lora", steps=2, record_every=2, eval_size=6, dev_size=4, train_size=64,
                      max_new_tokens=2, forget_size=3, max_length=32, batch_size=2, grad_accum=1,
                      store=str(tmp_path / "s.duckdb"), seed=5)
    rid = train(cfg, progress=False)
    reader = Reader(cfg.store)
    m = reader.metrics([rid], ["item/exact", "item/score", "eval/accuracy", "dev/accuracy", "dev/loss",
                               "forget/loss"])
    for step in (0, 2):
        for split, n, acc in (("test", 6, "eval/accuracy"), ("dev", 4, "dev/accuracy")):
            items = m[(m["name"] == "item/exact") & (m["module"] == split) & (m["step"] == step)]
            assert sorted(items["idx"]) == list(range(n))
            assert items["value"].mean() == pytest.approx(m[(m["name"] == acc) & (m["step"] == step)]["value"].item())
    assert set(m[m["name"] == "dev/loss"]["step"]) == {0, 2}

    lm = load_model("tiny", seed=5)  # the run's base model, before any adapter
    batches = text_windows(lm.tokenizer, forget_text().text, n=3, max_length=32, batch_size=2)
    with torch.no_grad():
        logits = [lm.model(input_ids=b["input_ids"]).logits[:, :-1] for b in batches]  # (b, 31, V)
        losses = torch.cat([F.cross_entropy(x.flatten(0, 1), b["input_ids"][:, 1:].flatten(), reduction="none")
                            for x, b in zip(logits, batches, strict=True)])
    forget = m[m["name"] == "forget/loss"].set_index("step")["value"]
    assert sorted(forget.index) == [0, 2] and forget[0] == pytest.approx(float(losses.mean()), rel=1e-5)
    assert reader.run(rid)["config"]["forget_text"]["tokens"] == 3 * 32


@pytest.mark.parametrize("content, says", [(None, "There is no forgetting text at"), ("", "is empty"),
                                           ("just a few words", "fewer than one batch")])
def test_a_bad_forgetting_text_is_one_sentence_and_writes_nothing(tmp_path, content, says):
    text = tmp_path / "forget.txt"
    if content is not None:
        text.write_text(content)
    store = tmp_path / "s.duckdb"
    out = geodiag("train", "--model", "tiny", "--method", "lora", "--steps", "1", "--forget-text", str(text),
                  "--store", str(store), "--no-progress")
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not store.exists()
