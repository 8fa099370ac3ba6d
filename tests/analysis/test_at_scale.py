"""The analyses at scale: data-parallel under torchrun (the same GIDs as one process over the same batches),
layer subsets, and the peak-memory formula the README quotes for an 8B Llama."""

import json

import pytest
import torch
from helpers import geodiag, torchrun

from geodiag.allocation import ModuleShape
from geodiag.analysis.memory import gid_memory
from geodiag.store import Reader


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "d.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"What is {a} times {a + 1}?", "response": str(a * (a + 1))})
                              for a in range(1, 41)))
    return str(path)


def only_run(store) -> tuple[Reader, str]:
    reader = Reader(store)
    runs = reader.runs()
    assert len(runs) == 1 and runs.iloc[0]["status"] == "finished", runs
    return reader, runs.iloc[0]["run_id"]


def test_gid_on_two_processes_equals_one_process_over_the_same_batches(tmp_path, data):
    flags = ["--model", "tiny", "--dataset", data, "--gid-batches", "4", "--batch-size", "2", "--layers", "1",
             "--no-progress"]
    one = geodiag("analyze", "gid", *flags, "--store", str(tmp_path / "one.duckdb"))
    assert one.returncode == 0, one.stderr[-2000:]
    two = torchrun("-m", "geodiag", "analyze", "gid", "--", *flags, "--store", str(tmp_path / "two.duckdb"))
    assert two.returncode == 0, two.stderr[-3000:]

    (r1, id1), (r2, id2) = only_run(tmp_path / "one.duckdb"), only_run(tmp_path / "two.duckdb")
    assert r2.run(id2)["config"]["world_size"] == 2
    for metric in ("gid/erank", "fisher/mean", "importance"):
        a, b = (r.metric(i, metric).sort_values("module") for r, i in ((r1, id1), (r2, id2)))
        assert set(a["layer"]) == {1} and list(a["module"]) == list(b["module"])  # layer 1's q, k, v, o only
        assert len(a) == 4
        torch.testing.assert_close(torch.tensor(b["value"].to_numpy()), torch.tensor(a["value"].to_numpy()),
                                   rtol=1e-4, atol=1e-9)


def test_id_on_two_processes_gathers_every_point_of_the_chosen_layers(tmp_path, data):
    store = tmp_path / "s.duckdb"
    out = torchrun("-m", "geodiag", "analyze", "id", "--", "--model", "tiny", "--dataset", data, "--id-tokens",
                   "300", "--batch-size", "4", "--layers", "0", "--store", str(store), "--no-progress")
    assert out.returncode == 0, out.stderr[-3000:]
    reader, rid = only_run(store)
    n = reader.metric(rid, "id/twonn_n").sort_values("layer")
    duplicates = reader.metric(rid, "id/twonn_duplicates").sort_values("layer")
    assert list(n["layer"]) == [0, 1]  # entering and leaving block 0
    assert list(n["value"].to_numpy() + duplicates["value"].to_numpy()) == [300, 300]  # both ranks' points
    gelora = reader.metric(rid, "alloc/gelora")
    assert set(gelora["layer"]) == {0} and len(gelora) == 4


def test_a_layer_the_model_lacks_is_one_sentence(tmp_path, data):
    out = geodiag("analyze", "gid", "--model", "tiny", "--dataset", data, "--layers", "7", "--store",
                  str(tmp_path / "s.duckdb"), "--no-progress")
    assert out.returncode == 2 and "layers 7 do not exist in this model (it has layers 0-1)." in out.stderr


def test_the_memory_formula_for_an_8b_llama_in_bfloat16():
    # Llama-3.1-8B: 32 layers, h = 4096, 8 KV heads of 128 (k, v: 1024 x 4096), 8.03B parameters
    shapes = [ModuleShape(f"model.layers.{i}.self_attn.{m}", 4096, d_out, i, m) for i in range(32)
              for m, d_out in (("q_proj", 4096), ("k_proj", 1024), ("v_proj", 1024), ("o_proj", 4096))]
    memory = gid_memory(8_030_261_248, 2, shapes)
    assert memory.model == 16_060_522_496  # 16.06 GB
    assert memory.accumulators == 4 * 32 * (2 * 4096 * 4096 + 2 * 1024 * 4096) == 5_368_709_120  # 5.37 GB
    assert memory.gradient == 2 * 4096 * 4096
    assert "peak memory about 21.46 GB" in memory.sentence()
