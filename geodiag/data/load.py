"""One entry for training data: a local file, a `datasets` name, or a reasoning-gym task."""

from __future__ import annotations

from pathlib import Path

from geodiag.data.files import load_file, load_hf_dataset
from geodiag.data.tasks import load_task
from geodiag.data.types import TaskData
from geodiag.names import DEFAULT_TASK


def load_data(task: str | None = DEFAULT_TASK, dataset: str | None = None, *, n_train: int = 2000,
              n_eval: int = 64, seed: int = 0, options: dict | None = None, n_dev: int = 0) -> TaskData:
    """Train, dev and test splits drawn from the data seed `seed` (not the training seed: every run with this
    data seed sees the same dev and test items)."""
    if dataset:
        local = Path(dataset).exists() or dataset.endswith((".jsonl", ".json", ".csv"))
        return load_file(dataset, n_eval=n_eval, seed=seed, n_dev=n_dev) if local else load_hf_dataset(
            dataset, n_eval=n_eval, seed=seed)
    return load_task(task or DEFAULT_TASK, n_train=n_train, n_eval=n_eval, seed=seed, options=options, n_dev=n_dev)
