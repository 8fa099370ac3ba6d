"""Training and evaluation data: seeded reasoning-gym tasks (offline, with their own scorers), local
JSONL/CSV files, or a `datasets` name when online.

This package is torch-free, so the dashboard can list the tasks; the two modules that make tensors are
imported by path: `geodiag.data.tokenise` (chat prompts, answer-only labels, batches) and
`geodiag.data.evaluate` (greedy answers, accuracy).
"""

from geodiag.data.files import exact_match, load_file, load_hf_dataset, normalise
from geodiag.data.load import load_data
from geodiag.data.tasks import EASY, load_task, task_names
from geodiag.data.types import Example, TaskData
from geodiag.names import DEFAULT_TASK

__all__ = ["DEFAULT_TASK", "EASY", "Example", "TaskData", "exact_match", "load_data", "load_file", "load_hf_dataset",
           "load_task", "normalise", "task_names"]
