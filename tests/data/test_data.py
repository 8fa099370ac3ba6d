"""Data: seeded disjoint splits, answer-only loss masks, file formats, exact-match accuracy."""

import json

import pytest

import geodiag.data as D
import geodiag.data.evaluate as E
from geodiag.data.tokenise import encode
from geodiag.errors import GeodiagError
from geodiag.models import load_model


@pytest.fixture(scope="module")
def tok():
    return load_model("tiny").tokenizer


def test_reasoning_gym_splits_are_seeded_and_disjoint():
    a = D.load_task("basic_arithmetic", n_train=200, n_eval=20, seed=1)
    b = D.load_task("basic_arithmetic", n_train=200, n_eval=20, seed=1)
    assert [e.prompt for e in a.train] == [e.prompt for e in b.train]
    assert not {e.prompt for e in a.eval} & {e.prompt for e in a.train}
    assert len(a.eval) == 20
    ex = a.eval[0]
    assert a.score(ex.answer, ex) == 1.0 and a.score("not a number", ex) < 1.0
    with pytest.raises(GeodiagError, match="Could not build the reasoning-gym task 'no_such_task'"):
        D.load_task("no_such_task")


def test_train_dev_and_test_are_disjoint_and_test_items_keep_their_positions():
    big = D.load_task("basic_arithmetic", n_train=400, n_eval=64, n_dev=32, seed=0)
    splits = [{e.prompt for e in part} for part in (big.train, big.dev, big.eval)]
    assert len(splits[1]) == 32 and len(splits[2]) == 64  # distinct prompts inside a split too
    assert not splits[0] & splits[1] and not splits[0] & splits[2] and not splits[1] & splits[2]
    # test item k is the same item whatever the other sizes: it is what the store keys per-item scores by
    small = D.load_task("basic_arithmetic", n_train=50, n_eval=16, n_dev=0, seed=0)
    assert [e.prompt for e in small.eval] == [e.prompt for e in big.eval[:16]]
    assert [e.prompt for e in D.load_task("basic_arithmetic", n_train=50, n_eval=16, seed=1).eval] != \
        [e.prompt for e in small.eval]  # another data seed, other items
    with pytest.raises(GeodiagError, match=r"supplied \d+ test and \d+ dev items with distinct prompts, fewer than"):
        D.load_task("basic_arithmetic", n_train=50, n_eval=100, n_dev=100, seed=0,
                    options={"max_digits": 1, "operators": ["+"]})


def test_a_file_splits_into_disjoint_test_dev_and_train_by_the_data_seed(tmp_path):
    rows = [{"prompt": f"q{i % 40}", "response": f"a{i % 40}"} for i in range(100)]  # 40 distinct prompts
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    data = D.load_data(dataset=str(tmp_path / "d.jsonl"), n_eval=3, n_dev=9, seed=3)
    test, dev, train = ({e.prompt for e in part} for part in (data.eval, data.dev, data.train))
    assert len(test) == len(data.eval) == 3 and len(dev) == 5  # held out: a fifth of 40 prompts at most
    assert not test & dev and not (test | dev) & train
    assert len(data.train) == sum(r["prompt"] not in test | dev for r in rows)  # train keeps every other row


def test_loss_mask_covers_only_the_answer(tok):
    ex = D.Example("Calculate 2 + 3.", "5")
    enc = encode(tok, ex, 128)
    answer = [t for t, lab in zip(enc["input_ids"], enc["labels"], strict=True) if lab != -100]
    assert tok.decode(answer) == "5" + tok.eos_token
    assert enc["labels"][: -len(answer)] == [-100] * (len(enc["labels"]) - len(answer))
    short = encode(tok, ex, 8)  # truncation keeps the answer and the end of the prompt
    kept = [t for t, lab in zip(short["input_ids"], short["labels"], strict=True) if lab != -100]
    assert len(short["input_ids"]) == 8 and tok.decode(kept).startswith("5")


def test_jsonl_and_csv_files(tmp_path):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(10)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    data = D.load_data(dataset=str(tmp_path / "d.jsonl"))
    assert len(data.train) + len(data.eval) == 10 and len(data.eval) == 2
    (tmp_path / "d.csv").write_text("prompt,response\nhello,world\nfoo,bar\n")
    assert {e.answer for e in D.load_data(dataset=str(tmp_path / "d.csv")).train} <= {"world", "bar"}
    (tmp_path / "bad.jsonl").write_text('{"prompt": "x"}\n')
    with pytest.raises(GeodiagError, match="has no usable rows"):
        D.load_data(dataset=str(tmp_path / "bad.jsonl"))
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(GeodiagError, match="Could not read"):
        D.load_data(dataset=str(tmp_path / "broken.jsonl"))


def test_accuracy_counts_full_marks_only(monkeypatch):
    data = D.TaskData("t", [], [D.Example(str(i), str(i)) for i in range(4)],
                      lambda pred, ex: 1.0 if pred == ex.answer else (0.5 if pred else 0.0))
    monkeypatch.setattr(E, "generate_answers", lambda *a, **k: ["0", "1", "x", ""])
    assert E.evaluate(None, None, data) == {"eval/accuracy": 0.5, "eval/score": 0.625}
