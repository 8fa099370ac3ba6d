"""EVA through peft: the ranks geodiag records as alloc/eva are the ones peft settled on (its saved
rank_pattern), they cost what the run trains, and the allocation atlas draws them."""

import json

from geodiag.figures.rank import atlas_series
from geodiag.store import Reader
from geodiag.train import TrainConfig, train


def test_eva_records_the_ranks_peft_computed_and_the_atlas_draws_them(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"What is {a} plus {a + 3}?", "response": str(2 * a + 3)})
                              for a in range(1, 41)))
    cfg = TrainConfig(model="tiny", method="eva", dataset=str(data), steps=2, batch_size=4, grad_accum=1,
                      record_every=2, eval_size=1, record_batch=2, max_new_tokens=2, store=str(tmp_path / "s.duckdb"),
                      output_dir=str(tmp_path / "adapter"), target_modules=["q_proj", "o_proj", "up_proj", "down_proj"],
                      method_options={"r": 4, "rho": 2.0})
    rid = train(cfg, progress=False)

    reader = Reader(cfg.store)
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    recorded = reader.metric(rid, "alloc/eva").set_index("module")["value"]
    assert len(recorded) == 8
    want = {m: saved["rank_pattern"].get(m, saved["r"]) for m in recorded.index}
    assert recorded.to_dict() == want
    assert len(set(want.values())) > 1  # EVA moved ranks between modules: the comparison can fail
    assert reader.metric(rid, "params/trainable")["value"].iloc[0] == reader.run(rid)["trainable_params"]
    atlas = atlas_series(reader.metrics([rid], ["alloc/eva/equivalent_rank", "alloc/eva/params"]))
    assert atlas[atlas["method"] == "eva"].set_index("module")["rank"].to_dict() == want


def test_an_svd_that_does_not_converge_is_one_sentence_not_an_endless_loop(tmp_path):
    from helpers import geodiag

    out = geodiag("train", "--model", "tiny", "--method", "eva", "--tau", "1.0", "--eva-batches", "3", "--steps", "1",
                  "--store", str(tmp_path / "s.duckdb"), "--no-progress", timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == ("geodiag: error: EVA's SVD did not converge within 3 batches; raise --eva-batches "
                                  "or lower --tau.")
