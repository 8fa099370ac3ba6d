"""Accuracy on held-out items: greedy answers scored by the task's own scorer, item by item."""

from __future__ import annotations

import torch

from geodiag.data.tokenise import prompt_text
from geodiag.data.types import Example, TaskData
from geodiag.names import EVAL_ACCURACY, EVAL_SCORE


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
                            padding=True, add_special_tokens=False).to(next(model.parameters()).device)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            out += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def item_scores(model, tokenizer, data: TaskData, split: str = "test", **kw) -> list[float]:
    """The task scorer's score of each item of a split, in the split's order (1.0: exact match; some
    reasoning-gym scorers give partial credit, e.g. for a near-miss number)."""
    examples = data.split(split)
    answers = generate_answers(model, tokenizer, examples, **kw)
    return [data.score(a, ex) for a, ex in zip(answers, examples, strict=True)]


def summary(scores: list[float]) -> tuple[float, float]:
    """(exact-match accuracy, mean score) of a split's item scores."""
    return sum(s >= 1.0 for s in scores) / len(scores), sum(scores) / len(scores)


def evaluate(model, tokenizer, data: TaskData, **kw) -> dict[str, float]:
    """Exact-match accuracy (items the task's own scorer gives full marks) and the mean score on the test split."""
    accuracy, score = summary(item_scores(model, tokenizer, data, "test", **kw))
    return {EVAL_ACCURACY: accuracy, EVAL_SCORE: score}
