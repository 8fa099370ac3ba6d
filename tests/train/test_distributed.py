"""Training on several processes through accelerate, as a user launches it (`torchrun`, gloo on the CPU):
one run in the store, and the same adapter as one process taking the same global batch; FSDP2 shards and
the collectors still see whole factors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import geodiag, torchrun
from safetensors.torch import load_file

from geodiag.methods import METHODS
from geodiag.store import Reader


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "d.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"What is {a} plus {a}?", "response": str(2 * a)})
                              for a in range(1, 11)))
    return str(path)


def args(data: str, out, method: str, options: dict, *, batch: int, accum: int) -> list[str]:
    """4 optimiser steps of `accum` micro-batches of `batch` items per process, recorded at the end."""
    flags = [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    return ["--model", "tiny", "--method", method, *flags, "--dataset", data,
            "--steps", "4", "--batch-size", str(batch), "--grad-accum", str(accum), "--record-every", "4",
            "--eval-size", "1", "--record-batch", "2", "--lr", "1e-2", "--warmup", "0",
            "--store", str(out / "s.duckdb"), "--output-dir", str(out / "adapter"), "--no-progress"]


def one_run(out) -> tuple[Reader, str]:
    reader = Reader(out / "s.duckdb")
    runs = reader.runs()
    assert len(runs) == 1 and runs.iloc[0]["status"] == "finished", runs
    return reader, runs.iloc[0]["run_id"]


def saved(out) -> dict[str, torch.Tensor]:
    name = next(p for p in (out / "adapter").iterdir() if p.suffix == ".safetensors")
    return load_file(str(name))


def assert_same_adapter(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and a
    for k in a:  # fp32 all-reduce vs fp32 accumulation: the same sums in another order
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6, msg=k)


@pytest.mark.parametrize("method, options", [
    ("lora", {"r": 4}),
    # aux losses, probes, PCA statistics summed over the ranks: the whole of ManifoldLoRA under DDP
    ("manifold", {"r_div": 4, "probe_mode": "pca", "pca_every": 2}),
])
def test_two_processes_equal_one_process_on_the_same_global_batch(tmp_path, data, method, options):
    one, two = tmp_path / "one", tmp_path / "two"
    out = geodiag("train", *args(data, one, method, options, batch=2, accum=2))
    assert out.returncode == 0, out.stderr[-2000:]
    # after `--`, torchrun leaves the flags alone (`--r` alone is an ambiguous abbreviation of its options)
    out = torchrun("-m", "geodiag", "train", "--", *args(data, two, method, options, batch=2, accum=1))
    assert out.returncode == 0, out.stderr[-3000:]

    reader, rid = one_run(two)
    config = reader.run(rid)["config"]
    assert config["world_size"] == 2 and config["distributed"] == "DDP over gloo, 2 processes"
    assert sorted(reader.metric(rid, "loss/lm")["step"]) == [1, 2, 3, 4]  # contiguous, written once
    assert_same_adapter(saved(one), saved(two))
    # the logged loss is the global batch's (the ranks' mean), as one process logs it
    torch.testing.assert_close(losses(*one_run(two)), losses(*one_run(one)), rtol=1e-5, atol=1e-7)


def losses(reader: Reader, rid: str) -> torch.Tensor:
    return torch.tensor(reader.metric(rid, "loss/lm").sort_values("step")["value"].to_numpy())


def test_fsdp2_shards_and_records_the_whole_adapter(tmp_path, data):
    one, two = tmp_path / "one", tmp_path / "fsdp"
    out = geodiag("train", *args(data, one, "lora", {"r": 4}, batch=2, accum=2))
    assert out.returncode == 0, out.stderr[-2000:]
    out = torchrun("-m", "geodiag", "train", "--", *args(data, two, "lora", {"r": 4}, batch=2, accum=1), "--fsdp")
    assert out.returncode == 0, out.stderr[-3000:]

    reader, rid = one_run(two)
    assert reader.run(rid)["config"]["distributed"] == "FSDP2 over gloo, 2 processes"
    state = saved(two)
    assert_same_adapter(saved(one), state)  # sharded training takes the same steps
    scaling = json.loads((two / "adapter" / "adapter_config.json").read_text())["lora_alpha"] / 4
    sv = reader.metric(rid, "spectrum/singular_value")
    for key, A in state.items():
        if ".lora_A." not in key:
            continue
        module = key.removeprefix("base_model.model.").split(".lora_A.")[0]
        dense = scaling * state[key.replace("lora_A", "lora_B")].double() @ A.double()  # (d_out, d_in), on purpose
        got = sv[(sv.step == 4) & (sv.module == module)].sort_values("idx")["value"].to_numpy()
        assert len(got) == 4  # whole factors: a shard would have half the rows
        torch.testing.assert_close(torch.tensor(got), torch.linalg.svdvals(dense)[:4], rtol=1e-6, atol=1e-9)


def test_fsdp_refuses_a_method_that_reads_whole_parameters_in_one_sentence(tmp_path, data):
    out = torchrun("-m", "geodiag", "train", "--", *args(data, tmp_path, "manifold", {"r_div": 4}, batch=2,
                                                         accum=1), "--fsdp")
    assert out.returncode != 0  # each rank exits 2; torchrun reports that as its own 1
    sharded = ", ".join(sorted(name for name, spec in METHODS.items() if spec.fsdp))  # what each method says
    assert {"full", "lora", "lora-gid", "gelora"} <= set(sharded.split(", ")) and "manifold" not in sharded
    assert f"FSDP supports {sharded}; manifold reads whole parameters" in out.stderr
    assert not re.search(r'File ".*/geodiag/', out.stderr)  # no traceback of ours (torchrun prints its own)


def test_accelerate_launch_runs_the_module_with_its_flags_after_the_separator(tmp_path, data):
    accelerate = Path(sys.executable).with_name("accelerate")
    out = subprocess.run([str(accelerate), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "geodiag", "train", "--",
                          *args(data, tmp_path, "lora", {"r": 4}, batch=2, accum=1)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    reader, rid = one_run(tmp_path)
    assert reader.run(rid)["config"]["distributed"] == "single process"
    assert sorted(reader.metric(rid, "loss/lm")["step"]) == [1, 2, 3, 4]
