"""What a dataset is to geodiag: examples (a prompt and its answer) in train, dev and test splits, with the
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
    """`eval` is the test split; `dev` the split a sweep selects learning rates on. No prompt is in two splits,
    and item k of a split is the same item whatever the other splits' sizes (its stable id in the store)."""

    name: str
    train: list[Example]
    eval: list[Example]
    score: Callable[[str, Example], float]  # prediction text, example -> score in [0, 1]
    dev: list[Example] = field(default_factory=list)

    def split(self, name: str) -> list[Example]:
        return {"test": self.eval, "dev": self.dev, "train": self.train}[name]


def disjoint(streams: list[list[Example]], sizes: list[int]) -> list[list[Example]]:
    """The first sizes[k] distinct prompts of stream k that no earlier split holds: held-out splits come first, so
    a test item never moves when the dev or train sizes change."""
    seen: set[str] = set()
    out = []
    for stream, size in zip(streams, sizes, strict=True):
        split = []
        for ex in stream:
            if len(split) == size:
                break
            if ex.prompt not in seen:
                seen.add(ex.prompt)
                split.append(ex)
        out.append(split)
    return out
