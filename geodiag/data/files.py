"""Datasets from files (JSONL/CSV with prompt/response fields) or, when online, a `datasets` name; scored
by normalised exact match."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

from geodiag.data.types import Example, TaskData, disjoint
from geodiag.errors import GeodiagError

_FIELDS = (("prompt", "response"), ("question", "answer"), ("instruction", "output"), ("input", "output"))


def load_file(path: str | Path, *, n_eval: int = 64, seed: int = 0, n_dev: int = 0) -> TaskData:
    """JSONL or CSV with prompt/response fields (or question/answer, instruction/output), shuffled by the data
    seed into test, dev and train splits with no prompt in two; in a small file the held-out splits shrink to
    take at most a fifth of its distinct prompts together."""
    p = Path(path)
    if not p.exists():
        raise GeodiagError(f"There is no dataset file at {p}; give a JSONL or CSV file with prompt and "
                           "response fields.")
    try:
        rows = _read_rows(p)
    except (ValueError, csv.Error) as e:
        raise GeodiagError(f"Could not read {p} as {'CSV' if p.suffix == '.csv' else 'JSON lines'}: {e}.") from None
    examples = [ex for ex in (_example(r) for r in rows) if ex is not None]
    if not examples:
        raise GeodiagError(f"The dataset {p} has no usable rows; each needs a prompt and a response field "
                           f"(or {', '.join('/'.join(f) for f in _FIELDS[1:])}).")
    return _split(p.stem, examples, n_eval, n_dev, seed)


def load_hf_dataset(name: str, *, n_eval: int = 64, seed: int = 0) -> TaskData:
    try:
        import datasets
    except ImportError:
        raise GeodiagError(f"'{name}' is not a local file, and loading Hugging Face datasets needs the "
                           "`datasets` package (pip install datasets) and a network connection.") from None
    try:
        ds = datasets.load_dataset(name, split="train")
    except Exception as e:  # noqa: BLE001 - any hub/network failure gets one sentence
        raise GeodiagError(f"Could not load the dataset '{name}' ({str(e).splitlines()[0]}); offline, use a "
                           "local JSONL/CSV file or a reasoning-gym --task.") from None
    examples = [ex for ex in (_example(dict(r)) for r in ds) if ex is not None]
    if not examples:
        raise GeodiagError(f"The dataset '{name}' has no rows with prompt/response fields.")
    return _split(name, examples, n_eval, 0, seed)


def _split(name: str, examples: list[Example], n_eval: int, n_dev: int, seed: int) -> TaskData:
    """Shuffled by the data seed; test and dev take distinct prompts first, train keeps every other row."""
    random.Random(seed).shuffle(examples)
    distinct = len({ex.prompt for ex in examples})
    n_eval = min(n_eval, max(1, distinct // 5)) if distinct > 1 else 0
    n_dev = min(n_dev, max(0, distinct // 5 - n_eval))  # the held-out splits take at most a fifth together
    test, dev = disjoint([examples, examples], [n_eval, n_dev])
    held_out = {ex.prompt for ex in test + dev}
    train = [ex for ex in examples if ex.prompt not in held_out]
    return TaskData(name, train or examples, test or examples, exact_match, dev)


def _read_rows(p: Path) -> list[dict]:
    if p.suffix.lower() == ".csv":
        with open(p, newline="") as f:
            return list(csv.DictReader(f))
    text = p.read_text()
    if p.suffix.lower() == ".json" and text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _example(row: dict) -> Example | None:
    for q, a in _FIELDS:
        if row.get(q) not in (None, "") and row.get(a) not in (None, ""):
            return Example(str(row[q]), str(row[a]))
    return None


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".")


def exact_match(prediction: str, ex: Example) -> float:
    return float(normalise(prediction) == normalise(ex.answer))
