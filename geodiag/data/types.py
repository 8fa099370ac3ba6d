"""What a dataset is to geodiag: examples (a prompt and its answer) in train and held-out splits, with the
scorer that says how right a generated answer is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str
    entry: dict | None = field(default=None, compare=False)  # the task's own record, for its scorer


@dataclass
class TaskData:
    name: str
    train: list[Example]
    eval: list[Example]
    score: Callable[[str, Example], float]  # prediction text, example -> score in [0, 1]
