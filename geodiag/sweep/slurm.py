"""`geodiag sweep --emit slurm DIR`: the sweep as Slurm job scripts, not a scheduler of our own. A job runs the
shared analyses; an array job, after it, runs one cell per task into the one store on the shared filesystem
(the store takes concurrent writers: each appends to its own spool files). Rerunning `submit.sh` resubmits
only what the store does not already hold as finished, since every task skips a finished cell."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import yaml

from geodiag.sweep.spec import SweepSpec

HEADER = """#!/bin/bash
# {what} of geodiag sweep {id}. Written by `geodiag sweep --emit slurm`; add your cluster's #SBATCH lines
# (partition, account, time, GPUs) here. Every task writes into {store}: keep it on a shared filesystem.
#SBATCH --job-name={job}
#SBATCH --output={dir}/logs/%x-%A_%a.out
#SBATCH --cpus-per-task=2
set -euo pipefail
"""


def emit(spec: SweepSpec, directory: str | Path, n_cells: int, analyses: bool) -> list[Path]:
    """Write sweep.yaml, cells.sbatch (an array of n_cells), analyses.sbatch (if the sweep has allocation-driven
    methods) and submit.sh; return their paths."""
    out = Path(directory).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    store = str(Path(spec.store).resolve())
    mapping = {**spec.to_mapping(), "store": store}
    (out / "sweep.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    geodiag = f"{shlex.quote(sys.executable)} -m geodiag sweep {shlex.quote(str(out / 'sweep.yaml'))}"
    fill = {"id": spec.id, "store": store, "dir": out}
    cells = HEADER.format(what="One cell per array task", job=f"{spec.id}-cells", **fill)
    cells += f"#SBATCH --array=0-{n_cells - 1}\n{geodiag} --cell \"$SLURM_ARRAY_TASK_ID\" --no-progress\n"
    paths = [out / "sweep.yaml", out / "cells.sbatch"]
    (out / "cells.sbatch").write_text(cells)
    submit = ("#!/bin/bash\n# Submit the sweep: the shared analyses first, then the cells once they succeeded.\n"
              "set -euo pipefail\n")
    submit += f"cd {shlex.quote(str(out))}\n"
    if analyses:
        (out / "analyses.sbatch").write_text(HEADER.format(what="The shared GID/ID analyses", job=f"{spec.id}-analyses",
                                                           **fill) + f"{geodiag} --analyses-only --no-progress\n")
        paths.append(out / "analyses.sbatch")
        submit += "first=$(sbatch --parsable analyses.sbatch)\nsbatch --dependency=afterok:\"$first\" cells.sbatch\n"
    else:
        submit += "sbatch cells.sbatch\n"
    (out / "submit.sh").write_text(submit)
    (out / "submit.sh").chmod(0o755)
    return [*paths, out / "submit.sh"]
