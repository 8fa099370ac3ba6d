"""The base model's evaluation ("before training"), computed once and reused by every run that would compute the
same numbers.

Step 0 of a run is the base model before any adapter is attached: its greedy score on each dev and test item, its
held-out loss on both splits, and its loss on the forgetting text. Every cell of a sweep shares the model and the
data seed, so every cell would spend the same minutes (7.5 of a 35-minute SmolLM2 run on a 2-core CPU) computing
the same numbers. They are cached under GEODIAG_CACHE by a key that covers everything the numbers depend on: the
weights themselves (hashed, so a path that now holds other weights misses), their dtype and device, the
tokenised items and their reference answers, the generation length, the forgetting windows, the library versions
and the source of the code that computes them. A hit is the same numbers, not an approximation; the run's config
says whether it was one (`before`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from torch import nn

from geodiag.cache import read_json, write_json
from geodiag.data import TaskData
from geodiag.data import evaluate as _evaluate
from geodiag.data import tokenise as _tokenise
from geodiag.data.evaluate import item_scores
from geodiag.data.tokenise import prompt_text
from geodiag.train import loss as _loss
from geodiag.train.loss import text_loss

Batch = dict[str, torch.Tensor]


@dataclass
class BaseEvaluation:
    scores: dict[str, list[float]]  # split -> each item's score, in the split's order
    losses: dict[str, float]  # split -> held-out loss (splits with labelled batches only)
    forget: float | None  # loss on the forgetting text, None when forgetting is off


def base_evaluation(
    model: nn.Module,
    tok,
    data: TaskData,
    batches: dict[str, list[Batch]],
    forget: list[Batch] | None,
    *,
    max_new_tokens: int,
) -> tuple[BaseEvaluation, dict]:
    """The base model's step-0 numbers and what the run's config says about them ({"key", "reused"}). Call it
    before any adapter is attached. Random state is left as it was, so training is the same on a hit or a miss."""
    key = _key(model, tok, data, batches, forget, max_new_tokens)
    name = f"base-eval/{key}.json"
    cached = read_json(name)
    if cached is not None:
        return BaseEvaluation(**cached), {"key": key[:16], "reused": True}
    with torch.random.fork_rng(devices=[]):
        result = BaseEvaluation(
            scores={
                s: item_scores(model, tok, data, s, max_new_tokens=max_new_tokens)
                for s in ("test", "dev")
                if data.split(s)
            },
            losses={s: text_loss(model, b) for s, b in batches.items() if b},
            forget=text_loss(model, forget) if forget else None,
        )
    write_json(name, asdict(result))
    return result, {"key": key[:16], "reused": False}


def _key(
    model: nn.Module,
    tok,
    data: TaskData,
    batches: dict[str, list[Batch]],
    forget: list[Batch] | None,
    max_new_tokens: int,
) -> str:
    h = hashlib.sha256()
    for name, p in model.state_dict().items():  # the weights themselves: a path may hold other weights next time
        h.update(f"{name}:{p.dtype}:{tuple(p.shape)}:{p.device.type}".encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    items = {
        s: [(prompt_text(tok, ex.prompt), ex.answer, repr(ex.entry)) for ex in data.split(s)] for s in ("test", "dev")
    }
    h.update(
        json.dumps(
            {
                "task": data.name,
                "items": items,
                "max_new_tokens": max_new_tokens,
                "versions": [torch.__version__, transformers.__version__],
            },
            sort_keys=True,
        ).encode()
    )
    for b in [*batches.get("test", []), *batches.get("dev", []), *(forget or [])]:
        for k in sorted(b):
            h.update(k.encode() + b[k].cpu().numpy().tobytes())
    for file in (_evaluate.__file__, _tokenise.__file__, _loss.__file__, __file__):  # a change to how the numbers
        h.update(Path(file).read_bytes())  # are computed misses
    return h.hexdigest()
