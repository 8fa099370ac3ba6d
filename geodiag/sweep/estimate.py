"""How long a sweep will take: seconds per training step from the runs this store has recorded on the sweep's model
(whole runs, so loading and evaluation are counted the way those runs had them), per method where the method has
runs, else over every method; or, for a model the store has never trained, a few-step probe of the first label's
method (training steps only: it says so). Torch-free; the probe is its own `geodiag train` process."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geodiag.config import TrainConfig
from geodiag.errors import GeodiagError
from geodiag.names import LOSS_LM
from geodiag.store import Reader
from geodiag.sweep.spec import Cell, SweepSpec

PROBE_STEPS = 4


@dataclass
class Pace:
    """Seconds per step (overall, and per method where known) and where they come from, in words."""

    seconds: float
    source: str
    methods: dict[str, float] = field(default_factory=dict)

    def of(self, method: str) -> float:
        return self.methods.get(method, self.seconds)


def recorded_pace(store: str | Path, model: str) -> Pace | None:
    """The median seconds per step of the store's finished training runs on `model` (start to end over their
    steps), per method and overall; None when there are none."""
    try:
        runs = Reader(store).runs()
    except GeodiagError:
        return None
    done = runs[(runs["kind"] == "train") & (runs["status"] == "finished") & (runs["model"] == model)].copy()
    steps = [int(_steps(c)) for c in done["config"]]
    done["pace"] = (done["ended_at"] - done["started_at"]).dt.total_seconds().to_numpy(float) / np.maximum(steps, 1)
    done = done[np.isfinite(done["pace"]) & (done["pace"] > 0)]
    if done.empty:
        return None
    methods = done.groupby("method")["pace"].median().to_dict()
    return Pace(float(done["pace"].median()), f"the {len(done)} finished runs on {model} in this store (whole runs: "
                                              "loading and evaluation included)", methods)


def probe_pace(spec: SweepSpec, method: str) -> Pace:
    """A few training steps of `method` on the sweep's model in a throwaway store, timed between its first and last
    step (loading and evaluation are not in it)."""
    with tempfile.TemporaryDirectory(prefix="geodiag-probe-") as tmp:
        store = Path(tmp) / "probe.duckdb"
        args = [sys.executable, "-m", "geodiag", "train", "--model", spec.train.get("model", TrainConfig().model),
                "--method", method, "--steps", str(PROBE_STEPS), "--eval-size", "0", "--dev-size", "0",
                "--forget-size", "0", "--no-intruders", "--no-item-records", "--record-every", "1000", "--store",
                str(store), "--no-progress"]
        for key in ("batch_size", "grad_accum", "max_length", "dtype", "device", "task", "dataset"):
            if spec.train.get(key) is not None:
                args += ["--" + key.replace("_", "-"), str(spec.train[key])]
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise GeodiagError(f"The timing probe failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        reader = Reader(store)
        loss = reader.metric(reader.runs()["run_id"].iloc[0], LOSS_LM)
    wall = loss.groupby("step")["wall_time"].max().sort_index()
    seconds = float((wall.iloc[-1] - wall.iloc[0]) / max(1, wall.index[-1] - wall.index[0]))
    return Pace(seconds, f"a {PROBE_STEPS}-step probe of {method} (training steps only; loading and evaluation "
                         "come on top)", {method: seconds})


def wall_seconds(cells: list[Cell], pace: Pace, workers: int) -> float:
    """Every cell's steps at its method's pace, shared out over the workers."""
    default = TrainConfig().steps
    total = sum(int(c.train.get("steps") or default) * pace.of(c.method) for c in cells)
    return total / max(1, min(workers, len(cells)))


def _steps(config) -> int:
    from geodiag.store import parsed_config

    return int(parsed_config(config).get("steps") or 0)
