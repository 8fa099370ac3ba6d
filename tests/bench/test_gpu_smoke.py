"""`make gpu-smoke`'s script, run the way the test suite can: on the CPU, on the tiny model, in bfloat16.
Every method trains and both analyses run; on a machine without CUDA the GPU default is one sentence."""

import subprocess
import sys
from pathlib import Path

import torch

from geodiag.methods.registry import METHODS

ROOT = Path(__file__).resolve().parents[2]


def smoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.gpu_smoke", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_every_method_and_both_analyses_run_in_bfloat16():
    out = smoke("--device", "cpu", "--model", "tiny", "--steps", "3")
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "gpu-smoke: tiny in bfloat16 on CPU, 3 steps per method"
    assert [line.split()[0] for line in lines[1:1 + len(METHODS)]] == list(METHODS)
    assert all("steps/s" in line for line in lines[1:1 + len(METHODS)])
    assert lines[-2].startswith("analyze gid") and lines[-1].startswith("analyze id")


def test_without_cuda_the_default_is_one_sentence():
    if torch.cuda.is_available():
        return  # a GPU machine runs the real thing instead
    out = smoke()
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().startswith("gpu-smoke needs a CUDA GPU and a CUDA build of torch")
