"""Training and evaluation data: seeded reasoning-gym tasks (offline, with their own scorers), local
JSONL/CSV files, or a `datasets` name when online. Chat-formatted prompts, loss on the answer tokens."""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from geodiag.errors import GeodiagError

DEFAULT_TASK = "basic_arithmetic"
INSTRUCTION = "Answer with only the final answer."
# Difficulty a 135M model can learn on a CPU in a few hundred steps; override with --task-option.
EASY = {
    "basic_arithmetic": dict(min_terms=2, max_terms=2, min_digits=1, max_digits=2, operators=("+", "-"),
                             allow_parentheses=False, allow_negation=False),
    "chain_sum": dict(min_terms=2, max_terms=3, min_digits=1, max_digits=2),
}
_FIELDS = (("prompt", "response"), ("question", "answer"), ("instruction", "output"), ("input", "output"))


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


def load_data(task: str | None = DEFAULT_TASK, dataset: str | None = None, *, n_train: int = 2000,
              n_eval: int = 64, seed: int = 0, options: dict | None = None) -> TaskData:
    if dataset:
        return load_file(dataset, n_eval=n_eval, seed=seed) if Path(dataset).exists() or dataset.endswith(
            (".jsonl", ".json", ".csv")) else load_hf_dataset(dataset, n_eval=n_eval, seed=seed)
    return load_task(task or DEFAULT_TASK, n_train=n_train, n_eval=n_eval, seed=seed, options=options)


def task_names() -> list[str]:
    """Every reasoning-gym task this install can generate, for pickers (the Launch page)."""
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


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


def load_file(path: str | Path, *, n_eval: int = 64, seed: int = 0) -> TaskData:
    """JSONL or CSV with prompt/response fields (or question/answer, instruction/output)."""
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
    random.Random(seed).shuffle(examples)
    n_eval = min(n_eval, max(1, len(examples) // 5)) if len(examples) > 1 else 0
    return TaskData(p.stem, examples[n_eval:] or examples, examples[:n_eval] or examples, exact_match)


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
    random.Random(seed).shuffle(examples)
    return TaskData(name, examples[n_eval:], examples[:n_eval], exact_match)


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


# --- tokenisation -----------------------------------------------------------------------------------

def prompt_text(tokenizer, prompt: str) -> str:
    """The chat-formatted prompt ending where the assistant's answer starts."""
    content = f"{prompt} {INSTRUCTION}"
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                             add_generation_prompt=True)
    return f"Question: {content}\nAnswer: "


def encode(tokenizer, ex: Example, max_length: int) -> dict[str, list[int]]:
    """input_ids and labels with the prompt masked (-100): the loss is on the answer and its end token."""
    prompt = tokenizer(prompt_text(tokenizer, ex.prompt), add_special_tokens=False)["input_ids"]
    answer = tokenizer(ex.answer + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    answer = answer[: max_length - 1]
    prompt = prompt[-(max_length - len(answer)):]  # keep the end of a long prompt, next to the answer
    return {"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer}


def collate(items: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded (B, T) input_ids, attention_mask and labels."""
    T = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), T), pad_id, dtype=torch.long)
    labels = torch.full((len(items), T), -100, dtype=torch.long)
    mask = torch.zeros((len(items), T), dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        ids[i, :n] = torch.tensor(it["input_ids"])
        labels[i, :n] = torch.tensor(it["labels"])
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batch_stream(encoded: list[dict], batch_size: int, pad_id: int, *, seed: int = 0, rank: int = 0,
                 world: int = 1) -> Iterator[dict[str, torch.Tensor]]:
    """Endless shuffled batches; epoch e uses seed + e, and rank r takes every world-th batch."""
    if not encoded:
        raise GeodiagError("The training set is empty; nothing to train on.")
    epoch, k = 0, 0
    while True:
        order = list(range(len(encoded)))
        random.Random(seed + epoch).shuffle(order)
        for start in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            if k % world == rank:
                yield collate([encoded[i] for i in order[start : start + batch_size]], pad_id)
            k += 1
        epoch += 1


@torch.no_grad()
def generate_answers(model, tokenizer, examples: list[Example], *, batch_size: int = 16,
                     max_new_tokens: int = 16) -> list[str]:
    """Greedy answers, left-padded batches."""
    was_training = model.training
    model.eval()
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    out = []
    try:
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            enc = tokenizer([prompt_text(tokenizer, ex.prompt) for ex in chunk], return_tensors="pt",
                            padding=True, add_special_tokens=False)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            out += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def evaluate(model, tokenizer, data: TaskData, **kw) -> dict[str, float]:
    """Exact-match accuracy (items the task's own scorer gives full marks) and the mean score, which
    includes the partial credit some reasoning-gym scorers give (e.g. a near-miss number)."""
    answers = generate_answers(model, tokenizer, data.eval, **kw)
    scores = [data.score(a, ex) for a, ex in zip(answers, data.eval, strict=True)]
    return {"eval/accuracy": sum(s >= 1.0 for s in scores) / len(scores), "eval/score": sum(scores) / len(scores)}
