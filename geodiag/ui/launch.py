"""Start and cancel geodiag runs and sweeps from the dashboard, safely.

A run is always `python -m geodiag train|analyze|sweep ...` given as an argument list (never a shell string),
started in its own session (process group) so that closing the browser or restarting Streamlit neither
kills nor orphans it; the trainer records its PID in the store, which is how the page finds running runs
again and how Cancel reaches them. Cancel sends SIGTERM to that process group after checking that the PID
still belongs to a geodiag process; the trainer then ends the run as `cancelled`, keeping its data. A sweep
gets SIGTERM on its own process, whoever started it: it stops its cells (each ends `cancelled`) and then itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geodiag.errors import GeodiagError

COMMANDS = ("train", "analyze", "sweep")


@dataclass(frozen=True)
class Launched:
    pid: int
    args: list[str]
    log: str
    started: float


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def command(kind: str, values: dict, *, analysis: str | None = None) -> list[str]:
    """The argument list for `geodiag train` (kind "train"), `geodiag analyze gid|id` (kind "analyze") or
    `geodiag sweep` (kind "sweep"). Booleans become `--x` or `--no-x`; None and empty values are left out."""
    if kind not in COMMANDS:
        raise GeodiagError(f"Can only launch {', '.join(COMMANDS)}, not {kind!r}.")
    args = [sys.executable, "-m", "geodiag", kind]
    if kind == "analyze":
        if analysis not in ("gid", "id"):
            raise GeodiagError("Choose the analysis to run: gid or id.")
        args.append(analysis)
    for name, value in values.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            args.append(flag(name) if value else "--no-" + flag(name)[2:])
        elif isinstance(value, list | tuple):
            args += [flag(name), ",".join(str(v) for v in value)]
        else:
            args += [flag(name), str(value)]
    return args + ["--no-progress"]


def spawn(args: list[str], log_dir: str | Path) -> Launched:
    """Start a geodiag command in its own process group; stdout and stderr go to a log file."""
    if args[:3] != [sys.executable, "-m", "geodiag"] or args[3] not in COMMANDS:
        raise GeodiagError("Only the geodiag trainer, analyses and sweeps can be launched from the dashboard.")
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"launch-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    return Launched(proc.pid, args, str(log), time.time())


def finished(pid: int) -> int | None:
    """The exit code of a process this server started (reaping it), or None while it runs."""
    proc = _CHILDREN.get(pid)
    return proc.poll() if proc is not None else None


def reap() -> None:
    """Collect every child this server started that has ended, so none lingers as a zombie."""
    for proc in list(_CHILDREN.values()):
        proc.poll()


def cancel(pid: int | None, *, group: bool = True) -> None:
    """SIGTERM to the run's process group (`group`) or to the process alone (a sweep, which stops its own cells),
    after checking that the PID is still a geodiag process."""
    if not pid:
        raise GeodiagError("This run has no recorded process id, so it cannot be cancelled from here.")
    pid = int(pid)
    if not _is_geodiag(pid):
        raise GeodiagError(f"Process {pid} is no longer a geodiag run (it ended); reload the page.")
    try:
        os.killpg(os.getpgid(pid), signal.SIGTERM) if group else os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise GeodiagError(f"Process {pid} has already ended; reload the page.") from None
    except PermissionError:
        raise GeodiagError(f"Not allowed to stop process {pid}: it belongs to another user.") from None


def plan(args: list[str], timeout_s: float = 600) -> dict:
    """`geodiag sweep ... --plan --json` for a sweep's argument list (from `command("sweep", ...)`): its cells,
    sizes and estimated time, or the command's own one-sentence refusal as a GeodiagError."""
    if args[:4] != [sys.executable, "-m", "geodiag", "sweep"]:
        raise GeodiagError("Only a geodiag sweep has a plan.")
    try:
        done = subprocess.run([*args, "--plan", "--json"], capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise GeodiagError(f"Planning the sweep took longer than {timeout_s:.0f} s; try again.") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise GeodiagError(lines[-1].removeprefix("geodiag: error: "))
    return json.loads(done.stdout.strip().splitlines()[-1])


def resume(config: dict, log_dir: str | Path) -> Launched:
    """Rerun a recorded sweep from its spec file (finished cells are skipped)."""
    args = config.get("resume")
    if not args or args[0] != "sweep" or not Path(args[1]).is_file():
        raise GeodiagError("This sweep cannot be resumed from here: its spec file is gone; rerun `geodiag sweep` "
                           "with its options.")
    return spawn([sys.executable, "-m", "geodiag", *args, "--no-progress"], log_dir)


def _is_geodiag(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"geodiag" in b" ".join(cmdline) and b"streamlit" not in b" ".join(cmdline)


def tail(path: str, lines: int = 6) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "\n").strip().splitlines()[-lines:])


_CHILDREN: dict[int, subprocess.Popen] = {}


def progress(kind: str, method: str, config: dict, loss: pd.DataFrame, sweep: pd.DataFrame) -> tuple[float, str]:
    """How far a run is (0..1) and a caption in its unit: training steps from `loss/lm`, or an analysis's
    batches (GID) or points (ID) from `analysis/progress`. Both frames are tidy metric rows of the run."""
    if kind == "analysis":
        if sweep.empty:
            return 0.0, "starting the sweep..."
        last = sweep.loc[sweep["step"].idxmax()]
        if last["value"] >= 1.0:
            return 1.0, "sweep done; computing the statistics and allocations..."
        # stores written before the options were renamed call them batches and tokens
        total, unit = ((config.get("gid_batches", config.get("batches")), "batches") if method == "gid" else
                       (config.get("id_tokens", config.get("tokens")), "points"))
        return float(last["value"]), f"{int(last['step'])} / {total} {unit}"
    total = int(config.get("steps") or 0)
    done = int(loss["step"].max()) if not loss.empty else 0
    return (min(1.0, done / total), f"step {done} / {total}") if total else (0.0, "starting...")
