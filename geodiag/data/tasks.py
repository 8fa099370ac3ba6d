"""Seeded reasoning-gym tasks: offline question/answer generators with their own scorers."""

from __future__ import annotations

import importlib.metadata

from geodiag.cache import read_json, write_json
from geodiag.data.types import Example, TaskData
from geodiag.errors import GeodiagError

# Difficulty a 135M model can learn on a CPU in a few hundred steps; override with --task-option.
EASY = {
    "basic_arithmetic": dict(min_terms=2, max_terms=2, min_digits=1, max_digits=2, operators=("+", "-"),
                             allow_parentheses=False, allow_negation=False),
    "chain_sum": dict(min_terms=2, max_terms=3, min_digits=1, max_digits=2),
}


def task_names() -> list[str]:
    """Every reasoning-gym task this install can generate, for pickers (the Launch page). Importing
    reasoning-gym takes about a second, so the list is cached per reasoning-gym version."""
    key = f"reasoning-gym-{importlib.metadata.version('reasoning-gym')}-tasks.json"
    names = read_json(key)
    if not isinstance(names, list):
        from reasoning_gym.factory import DATASETS

        names = sorted(DATASETS)
        write_json(key, names)
    return names


def load_task(name: str, *, n_train: int = 2000, n_eval: int = 64, seed: int = 0,
              options: dict | None = None) -> TaskData:
    """Seeded reasoning-gym train and eval splits with no question in both."""
    import reasoning_gym

    kwargs = {**EASY.get(name, {}), **(options or {})}
    try:
        train_ds = reasoning_gym.create_dataset(name, size=n_train, seed=seed, **kwargs)
        eval_ds = reasoning_gym.create_dataset(name, size=4 * n_eval, seed=seed + 100_003, **kwargs)
    except (KeyError, ValueError, TypeError) as e:
        raise GeodiagError(f"Could not build the reasoning-gym task '{name}' ({e}); check the task name and "
                           "its --task-option values.") from None
    train = [Example(x["question"], str(x["answer"]), x) for x in train_ds]
    seen = {ex.prompt for ex in train}
    held_out = [Example(x["question"], str(x["answer"]), x) for x in eval_ds if x["question"] not in seen]
    if not train or not held_out:
        raise GeodiagError(f"The task '{name}' produced no {'training' if not train else 'held-out'} items; "
                           "raise its size or difficulty.")

    def score(prediction: str, ex: Example) -> float:
        return float(train_ds.score_answer(prediction.strip(), ex.entry) or 0.0)

    return TaskData(name, train, held_out[:n_eval], score)
