"""From examples to model inputs: chat-formatted prompts, the loss masked to the answer, padded batches."""

from __future__ import annotations

import random
from collections.abc import Iterator

import torch

from geodiag.data.types import Example
from geodiag.errors import GeodiagError

INSTRUCTION = "Answer with only the final answer."


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


def text_windows(tokenizer, text: str, *, n: int, max_length: int, batch_size: int, what: str = "the text"
                 ) -> list[dict[str, torch.Tensor]]:
    """Up to n consecutive windows of max_length tokens of plain text (no chat template), every token labelled,
    in batches of batch_size; fewer tokens than one batch of full windows is a sentence."""
    need = n * max_length
    ids: list[int] = []
    for start in range(0, len(text), 8 * need):  # tokenise only as much of a long text as the windows take
        ids += tokenizer(text[start: start + 8 * need], add_special_tokens=False)["input_ids"]
        if len(ids) >= need:
            break
    if len(ids) < batch_size * max_length:
        raise GeodiagError(f"{what} has {len(ids):,} tokens, fewer than one batch ({batch_size} x {max_length}); "
                           "give a longer text, or lower --batch-size or --max-length.")
    windows = [ids[k: k + max_length] for k in range(0, min(len(ids), need) - max_length + 1, max_length)]
    out = []
    for k in range(0, len(windows), batch_size):
        x = torch.tensor(windows[k: k + batch_size])  # (b, max_length)
        out.append({"input_ids": x, "attention_mask": torch.ones_like(x), "labels": x.clone()})
    return out
