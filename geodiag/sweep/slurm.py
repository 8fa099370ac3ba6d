"""`geodiag sweep --emit slurm DIR`: the sweep as Slurm job scripts, not a scheduler of our own. A job runs the
shared analyses; an array job, after it, runs one cell per task into the one store on the shared filesystem
(the store takes concurrent writers: each appends to its own spool files). Rerunning `submit.sh` resubmits
only what the store does not already hold as finished, since every task skips a finished cell."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import yaml

from geodiag.errors import GeodiagError
from geodiag.sweep.spec import SweepSpec

HEADER = """#!/bin/bash
# {what} of geodiag sweep {id}. Written by `geodiag sweep --emit slurm`; add your cluster's #SBATCH lines
# (partition, account, time, GPUs) here. Every task writes into {store}: keep it on a shared filesystem.
#SBATCH --job-name={job}
#SBATCH --output={dir}/logs/%x-%A_%a.out
#SBATCH --cpus-per-task=2
set -euo pipefail
"""


def emit(spec: SweepSpec, directory: str | Path, n_cells: int, analyses: bool, n_select: int = 0) -> list[Path]:
    """Write sweep.yaml, analyses.sbatch (if the sweep has allocation-driven methods), select.sbatch (an array of
    the n_select learning-rate selection cells, if it selects), cells.sbatch (an array of the other cells, which
    read the chosen rates from the store) and submit.sh, each job after the one before; return their paths."""
    out = Path(directory).resolve()
    if out.exists() and not out.is_dir():
        raise GeodiagError(f"--emit slurm writes a folder of scripts, and {directory} is a file; give a folder "
                           "(it is created if missing).")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    store = str(Path(spec.store).resolve())
    mapping = {**spec.to_mapping(), "store": store}
    (out / "sweep.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    geodiag = f"{shlex.quote(sys.executable)} -m geodiag sweep {shlex.quote(str(out / 'sweep.yaml'))}"
    fill = {"id": spec.id, "store": store, "dir": out}
    jobs = []  # (script, what, array range or None, command), in submission order
    if analyses:
        jobs.append(("analyses.sbatch", "The shared GID/ID analyses", None, f"{geodiag} --analyses-only --no-progress"))
    task = f"{geodiag} --cell \"$SLURM_ARRAY_TASK_ID\" --no-progress"
    if n_select:
        jobs.append(("select.sbatch", "The learning-rate selection cells, one per array task",
                     f"0-{n_select - 1}", task))
    if n_cells > n_select:
        jobs.append(("cells.sbatch", "One cell per array task" + (" at the chosen rates" if n_select else ""),
                     f"{n_select}-{n_cells - 1}", task))
    submit = ("#!/bin/bash\n# Submit the sweep: each job once the one before it succeeded (analyses, selection, "
              "cells).\nset -euo pipefail\n" + f"cd {shlex.quote(str(out))}\n")
    paths, previous = [out / "sweep.yaml"], None
    for script, what, array, command in jobs:
        text = HEADER.format(what=what, job=f"{spec.id}-{script.split('.')[0]}", **fill)
        (out / script).write_text(text + (f"#SBATCH --array={array}\n" if array else "") + command + "\n")
        paths.append(out / script)
        after = f"--dependency=afterok:\"${previous}\" " if previous else ""
        previous = script.split(".")[0]
        submit += f"{previous}=$(sbatch --parsable {after}{script})\n"
    (out / "submit.sh").write_text(submit)
    (out / "submit.sh").chmod(0o755)
    return [*paths, out / "submit.sh"]
