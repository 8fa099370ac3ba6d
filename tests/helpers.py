"""Helpers shared by test modules (fixtures live in conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path

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


def stop_processes_under(folder: str | Path) -> list[int]:
    """Kill every process whose command line names a path under `folder` (a run a dashboard launched into a test's
    store lives in its own session and outlives the dashboard; a sweep's cells outlive a killed sweep), and return
    their pids: nothing a test started keeps running after it."""
    import psutil

    folder, stopped = str(folder), []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and any(folder in arg for arg in proc.info["cmdline"] or []):
                proc.kill()
                proc.wait(timeout=10)
                stopped.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.TimeoutExpired):
            pass
    return stopped
