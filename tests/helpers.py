"""Helpers shared by test modules (fixtures live in conftest.py)."""

import subprocess
import sys

import numpy as np


def random_rotation(rng: np.random.Generator, D: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((D, D)))
    return q * np.sign(np.diag(r))


def geodiag(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The geodiag command as a user runs it: a subprocess, its output and exit status."""
    return subprocess.run([sys.executable, "-m", "geodiag", *args], capture_output=True, text=True, timeout=timeout)


def torchrun(*args: str, nproc: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node N <args>` as a user runs it (gloo on the CPU)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(nproc), *args], capture_output=True, text=True, timeout=timeout)
