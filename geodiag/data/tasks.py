"""Seeded reasoning-gym tasks: offline question/answer generators with their own scorers."""

from __future__ import annotations

import importlib.metadata

from geodiag.cache import read_json, write_json
from geodiag.data.types import Example, TaskData, disjoint
from geodiag.errors import GeodiagError

# Difficulty a 135M model can learn on a CPU in a few hundred steps; override with --task-option.
EASY = {
    "basic_arithmetic": dict(min_terms=2, max_terms=2, min_digits=1, max_digits=2, operators=("+", "-"),
                             allow_parentheses=False, allow_negation=False),
    "chain_sum": dict(min_terms=2, max_terms=3, min_digits=1, max_digits=2),
}
# each split is its own seeded stream of the task (reasoning-gym's item i depends only on seed + i)
TEST_OFFSET, DEV_OFFSET = 100_003, 200_003
DRAWS = 8  # held-out items drawn per item asked for, before concluding the task cannot supply them disjointly


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


def load_task(name: str, *, n_train: int = 2000, n_eval: int = 64, seed: int = 0, options: dict | None = None,
              n_dev: int = 0) -> TaskData:
    """Train, dev and test splits of a reasoning-gym task drawn from the data seed `seed`: test first, then dev,
    then train, no prompt in two splits. Test item k is the k-th distinct prompt of the test stream, so it is the
    same item for every run with this data seed, whatever its training seed or split sizes."""
    import reasoning_gym

    kwargs = {**EASY.get(name, {}), **(options or {})}
    try:
        train_ds = reasoning_gym.create_dataset(name, size=n_train, seed=seed, **kwargs)
        streams = [reasoning_gym.create_dataset(name, size=DRAWS * n + 16, seed=seed + offset, **kwargs)
                   for n, offset in ((n_eval, TEST_OFFSET), (n_dev, DEV_OFFSET))]
    except (KeyError, ValueError, TypeError) as e:
        raise GeodiagError(f"Could not build the reasoning-gym task '{name}' ({e}); check the task name and "
                           "its --task-option values.") from None
    test, dev = disjoint([_examples(streams[0]), _examples(streams[1])], [n_eval, n_dev])
    if len(test) < n_eval or len(dev) < n_dev:
        raise GeodiagError(f"The task '{name}' supplied {len(test)} test and {len(dev)} dev items with distinct "
                           f"prompts, fewer than the {n_eval} and {n_dev} asked for; lower --eval-size or --dev-size, "
                           "or make the task larger with --task-option.")
    held_out = {e.prompt for e in test + dev}
    train = [ex for ex in _examples(train_ds) if ex.prompt not in held_out]
    if not train:
        raise GeodiagError(f"The task '{name}' produced no training items outside its dev and test splits; raise "
                           "--train-size or make the task larger with --task-option.")

    def score(prediction: str, ex: Example) -> float:
        return float(train_ds.score_answer(prediction.strip(), ex.entry) or 0.0)

    return TaskData(name, train, test, score, dev)


def _examples(dataset) -> list[Example]:
    return [Example(x["question"], str(x["answer"]), x) for x in dataset]
